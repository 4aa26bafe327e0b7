// The card form: our server makes a SetupIntent, Stripe.js confirms it (with 3-D Secure when the
// bank asks), then our server reads the result back from Stripe. The card number never reaches us.
(() => {
  const keyHolder = document.querySelector('[data-stripe-key]');
  if (!keyHolder || typeof Stripe === 'undefined') return;
  // Stripe.js speaks the page's language where it can ("zh-Hans" is its "zh").
  const lang = document.documentElement.lang || 'en';
  const stripe = Stripe(keyHolder.dataset.stripeKey, { locale: lang.startsWith('zh') ? 'zh' : lang.split('-')[0] });
  const mount = document.getElementById('card-element');
  let card = null;
  if (mount) {
    card = stripe.elements().create('card', { hidePostalCode: false });
    card.mount('#card-element');
  }
  const cardErrors = document.getElementById('card-errors');
  const confirmForm = document.getElementById('confirm-form');
  // A bank's refusal in the backer's language, by Stripe's code (our server's words); anything else
  // (an incomplete number, say) as Stripe.js wrote it.
  const declines = JSON.parse((cardErrors && cardErrors.dataset.declines) || '{}');
  const refusal = (error) => declines[error.decline_code] || declines[error.code]
    || (error.type === 'card_error' && declines.card_declined) || error.message || String(error);

  const showErrors = (form, errors) => {
    form.querySelectorAll('[data-errors-for]').forEach((el) => { el.textContent = ''; });
    form.querySelectorAll('.is-invalid').forEach((el) => el.classList.remove('is-invalid'));
    form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    const general = document.getElementById('form-errors');
    if (general) { general.textContent = ''; general.classList.add('d-none'); }
    Object.entries(errors || {}).forEach(([name, messages]) => {
      const slot = form.querySelector(`[data-errors-for="${name}"]`);
      const input = form.querySelector(`[name="${name}"]`);
      if (input && input.type !== 'radio') input.classList.add('is-invalid');
      // Said to screen readers too, on the field (every button of a group) whose errors the slot holds.
      if (slot) form.querySelectorAll(`[name="${name}"]`).forEach((el) => el.setAttribute('aria-invalid', 'true'));
      if (slot) slot.textContent = messages.join(' ');
      else if (general) { general.textContent += messages.join(' '); general.classList.remove('d-none'); }
    });
  };

  const setBusy = (button, busy, label) => {
    if (!button) return;
    if (busy) { button.dataset.label = button.textContent; button.textContent = label || '…'; }
    else if (button.dataset.label) { button.textContent = button.dataset.label; }
    button.disabled = busy;
  };

  // Start a setup on our server, confirm it with Stripe.js, then post the result to our server.
  const saveCard = async (form, url, body) => {
    const button = form.querySelector('[type="submit"]');
    setBusy(button, true, form.dataset.busy);
    cardErrors.textContent = '';
    try {
      const response = await fetch(url, { method: 'POST', body, headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      const data = await response.json().catch(() => ({ errors: { _: [response.statusText] } }));
      if (!response.ok) { showErrors(form, data.errors); setBusy(button, false); return; }
      showErrors(form, {});
      const result = await stripe.confirmCardSetup(data.client_secret, { payment_method: { card } });
      if (result.error) { cardErrors.textContent = refusal(result.error); setBusy(button, false); return; }
      confirmForm.action = data.confirm_url;
      confirmForm.querySelector('[name="setup_intent"]').value = result.setupIntent.id;
      confirmForm.submit();
    } catch (error) {
      cardErrors.textContent = String(error.message || error);
      setBusy(button, false);
    }
  };

  const pledgeForm = document.getElementById('pledge-form');
  if (pledgeForm) {
    pledgeForm.addEventListener('submit', (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      saveCard(pledgeForm, pledgeForm.action, new FormData(pledgeForm));
    }, true);
  }

  // The bank asked the backer to authenticate a charge that failed: Stripe.js opens the bank's check,
  // then the form posts to our server, which reads the charge from Stripe (never the browser's word).
  const authForm = document.getElementById('authenticate-form');
  if (authForm) {
    const authErrors = document.getElementById('authenticate-errors');
    authForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      const button = authForm.querySelector('[type="submit"]');
      setBusy(button, true, authForm.dataset.busy);
      if (authErrors) authErrors.textContent = '';
      try {
        const method = authForm.dataset.paymentMethod;
        const result = await stripe.confirmCardPayment(authForm.dataset.clientSecret, method ? { payment_method: method } : undefined);
        if (result.error) {
          if (authErrors) authErrors.textContent = refusal(result.error);
          setBusy(button, false);
          return;
        }
        authForm.submit();
      } catch (error) {
        if (authErrors) authErrors.textContent = String(error.message || error);
        setBusy(button, false);
      }
    }, true);
  }

  const cardForm = document.getElementById('card-form');
  if (cardForm) {
    cardForm.addEventListener('submit', (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      saveCard(cardForm, cardForm.action, new FormData(cardForm));
    }, true);
  }
})();
