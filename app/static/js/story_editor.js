// The story editor (campaigns/_story_editor.html): a live preview rendered by the server, with the
// same sanitiser as the campaign page, and pictures uploaded into the story. Without this script the
// field is a plain tall textarea and the form works as before.
(() => {
  const editor = document.querySelector('.story-editor');
  if (!editor) return;
  const input = editor.querySelector('textarea');
  const pane = editor.querySelector('.story-preview');
  const previewStatus = editor.querySelector('#story-preview-status');
  if (!input || !pane || !input.form) return;
  const tokenField = input.form.querySelector('input[name="csrf_token"]');
  const token = tokenField ? tokenField.value : '';
  const msg = editor.dataset;
  const DELAY_MS = 500;

  const say = (element, text) => { if (element) element.textContent = text || ''; };

  // A POST with the page's CSRF token (in the form data and the header); the answer's JSON, if any.
  async function post(url, body, signal) {
    if (token) body.append('csrf_token', token);
    const response = await fetch(url, {
      method: 'POST', body, credentials: 'same-origin', signal,
      headers: { Accept: 'application/json', 'X-CSRFToken': token },
    });
    let data = {};
    try { data = await response.json(); } catch (error) { /* an error page, not JSON */ }
    return { response, data };
  }

  // --- live preview ---------------------------------------------------------------------------
  let timer = null;
  let pending = null;
  let shown = input.value;

  async function refresh() {
    const text = input.value;
    if (text === shown) return;
    if (pending) pending.abort();
    const controller = new AbortController();
    pending = controller;
    const body = new FormData();
    body.append('text', text);
    try {
      const { response, data } = await post(msg.previewUrl, body, controller.signal);
      if (controller !== pending) return; // a newer request is on its way
      if (response.ok && typeof data.html === 'string') {
        pane.innerHTML = data.html; // sanitised by the server's render_markdown, as on the page
        shown = text;
        say(previewStatus, '');
      } else {
        say(previewStatus, data.error || msg.msgPreviewFailed);
      }
    } catch (error) {
      if (error.name !== 'AbortError') say(previewStatus, msg.msgPreviewFailed);
    } finally {
      if (controller === pending) pending = null;
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, DELAY_MS);
  });

  // --- pictures -------------------------------------------------------------------------------
  const tools = editor.querySelector('.story-pictures');
  if (!tools || !msg.uploadUrl) return;
  const file = tools.querySelector('#story-image-file');
  const alt = tools.querySelector('#story-image-alt');
  const button = tools.querySelector('.story-image-insert');
  const status = tools.querySelector('#story-image-status');
  tools.hidden = false;

  // Markdown's image text ends at "]": keep the description's brackets and backslashes as text.
  const altText = (value) => value.replace(/\s+/g, ' ').trim().replace(/([\\[\]])/g, '\\$1');

  function insert(markdown) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    const before = input.value.slice(0, start);
    const after = input.value.slice(end);
    // On a paragraph of its own, so that it is not glued to the words around it.
    const lead = before === '' || before.endsWith('\n\n') ? '' : (before.endsWith('\n') ? '\n' : '\n\n');
    const tail = after === '' || after.startsWith('\n\n') ? '' : (after.startsWith('\n') ? '\n' : '\n\n');
    input.setRangeText(lead + markdown + tail, start, end, 'end');
    input.dispatchEvent(new Event('input', { bubbles: true })); // preview, and "unsaved changes"
  }

  async function upload() {
    const chosen = file.files && file.files[0];
    if (!chosen) { say(status, msg.msgChooseFile); file.focus(); return; }
    const description = altText(alt.value);
    if (!description) { say(status, msg.msgAltNeeded); alt.focus(); return; }
    button.disabled = true;
    say(status, msg.msgUploading);
    const body = new FormData();
    body.append('image', chosen);
    try {
      const { response, data } = await post(msg.uploadUrl, body);
      if (response.status === 201 && typeof data.url === 'string') {
        insert(`![${description}](${data.url})`);
        file.value = '';
        alt.value = '';
        say(status, msg.msgInserted);
        input.focus();
      } else {
        say(status, data.error || msg.msgUploadFailed);
      }
    } catch (error) {
      say(status, msg.msgUploadFailed);
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener('click', upload);
  // Enter in the description would send the whole campaign form: it uploads the picture instead.
  alt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); upload(); }
  });
})();
