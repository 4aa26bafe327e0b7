// Small progressive enhancements; every page works without them.

// The browser's time zone, so that the server shows dates and deadlines in it from the next page on
// (members can also choose one on their profile). Without it, times are shown in UTC.
(() => {
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && /^[A-Za-z0-9_+\-/]{1,64}$/.test(tz) && !document.cookie.split('; ').includes(`tz=${tz}`)) {
      // Secure wherever the site is served over HTTPS (production), so the cookie never travels in clear.
      const secure = location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = `tz=${tz}; path=/; max-age=31536000; SameSite=Lax${secure}`;
    }
  } catch (error) { /* no Intl: UTC it is */ }
})();

document.addEventListener('DOMContentLoaded', () => {
  // Ask before a destructive button submits its form.
  document.querySelectorAll('[data-confirm]').forEach((button) => {
    button.addEventListener('click', (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  // A form submits once: a double click must not send it twice.
  document.querySelectorAll('form[method="post"]').forEach((form) => {
    form.addEventListener('submit', () => {
      if (form.dataset.submitting) return;
      form.dataset.submitting = '1';
      setTimeout(() => form.querySelectorAll('[type="submit"]').forEach((b) => { b.disabled = true; }), 0);
    });
  });
  // A form with unsaved changes warns before the page is left (issue 18): typing the risk a moderator
  // asked for and following a link must not lose it. Submitting the form is not leaving it. A change
  // is a field that differs from what the page came with (its default), so what was typed before this
  // script ran counts too.
  const changed = (field) => {
    if (field.type === 'hidden' || field.type === 'submit' || field.type === 'button') return false;
    if (field.type === 'checkbox' || field.type === 'radio') return field.checked !== field.defaultChecked;
    if (field.tagName === 'SELECT') {
      if (field.multiple) return Array.from(field.options).some((option) => option.selected !== option.defaultSelected);
      const initial = Array.from(field.options).findIndex((option) => option.defaultSelected);
      return field.selectedIndex !== Math.max(initial, 0);  // none marked: the browser shows the first
    }
    return 'defaultValue' in field && field.value !== field.defaultValue;
  };
  document.querySelectorAll('form[data-warn-unsaved]').forEach((form) => {
    let submitting = false;
    form.addEventListener('submit', () => { submitting = true; });
    window.addEventListener('beforeunload', (event) => {
      if (submitting || !Array.from(form.elements).some(changed)) return;
      event.preventDefault();
      event.returnValue = '';
    });
  });
});
