// Small progressive enhancements; every page works without them.
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
});
