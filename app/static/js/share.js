// Share panel: show the "Copy link" button and copy the campaign's address. Without this script the
// address stays a read-only field anyone can select and copy.
(() => {
  document.querySelectorAll('button[data-copy-from]').forEach((button) => {
    const field = document.getElementById(button.dataset.copyFrom);
    if (!field) return;
    const status = button.closest('.share-panel')?.querySelector('.share-status');
    const say = (text) => { if (status) status.textContent = text; };
    button.hidden = false;
    button.addEventListener('click', async () => {
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(field.value);
        } else {
          field.select();
          if (!document.execCommand('copy')) throw new Error('copy refused');
        }
        say(button.dataset.copied);
      } catch (error) {
        field.focus();
        field.select();
        say(button.dataset.failed);
      }
    });
  });
  // A click in the field selects the whole address, ready to copy.
  document.querySelectorAll('.share-panel input[readonly]').forEach((field) => {
    field.addEventListener('focus', () => field.select());
  });
})();
