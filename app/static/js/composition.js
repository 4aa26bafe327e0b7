// The pledge's live summary (SPEC §12): reward + add-ons + shipping + bonus, added up in minor units
// from the offer the server wrote into the page, with the same rules as app/pledges/composition.py.
// The total shown is posted with the form; the server adds it up again and refuses any other.
(() => {
  const data = document.getElementById('pledge-offer');
  if (!data) return;
  const offer = JSON.parse(data.textContent);
  const form = data.closest('form');
  const lang = document.documentElement.lang || 'en';
  const scale = 10 ** offer.exponent;
  const format = new Intl.NumberFormat(lang, {
    style: 'currency', currency: offer.currency,
    minimumFractionDigits: offer.exponent, maximumFractionDigits: offer.exponent,
  });
  const money = (minor) => format.format(minor / scale);
  // Amounts as the page's language writes them: "1,250.50", or "1 250,50" in French.
  const commaDecimal = lang.startsWith('fr');
  const toMinor = (text) => {
    const bare = String(text || '').replace(/[\s\u00a0\u202f]/g, '');
    if (!bare) return 0;
    const number = Number(commaDecimal ? bare.replace(',', '.') : bare.replace(/,/g, ''));
    return Number.isFinite(number) && number >= 0 ? Math.round(number * scale) : NaN;
  };
  const label = (key, values) => Object.entries(values || {})
    .reduce((text, [name, value]) => text.replace(`%(${name})s`, value).replace(`%(${name})d`, value), offer.labels[key]);
  // What shipping an item (a tier or an add-on) to `country` costs: its own row, else the rest of the world.
  const cost = (item, country) => {
    if (country in item.to) return item.to[country];
    return 'ZZ' in item.to ? item.to.ZZ : null;
  };

  const field = (name) => form.querySelector(`[name="${name}"]`);
  const country = field('country');
  const total = field('total');
  const lines = document.getElementById('summary-lines');
  const totalCell = document.getElementById('summary-total');

  const update = () => {
    const checked = form.querySelector('input[name="tier"]:checked');
    const tierId = checked ? checked.value : '';
    const tier = offer.tiers[tierId] || null;
    form.querySelectorAll('[data-show-for="reward"]').forEach((el) => el.classList.toggle('d-none', !tier));
    form.querySelectorAll('[data-show-for="no-reward"]').forEach((el) => el.classList.toggle('d-none', !!tier));
    const rows = [];
    let sum = 0;
    let complete = true;
    const add = (text, minor) => { rows.push([text, minor]); sum += minor; };

    if (tier) add(tier.title, tier.amount);
    else {
      const amount = toMinor(field('amount') && field('amount').value);
      if (Number.isNaN(amount)) complete = false;
      add(offer.labels.none, amount || 0);
    }
    // Add-ons: only those offered with the chosen reward can be set.
    const chosen = [];
    form.querySelectorAll('[data-addon]').forEach((card) => {
      const addon = offer.addons[card.dataset.addon];
      const input = card.querySelector('input');
      if (!addon || !input) return;
      const offered = addon.tiers === null || addon.tiers.includes(Number(tierId));
      card.classList.toggle('d-none', !offered);
      input.disabled = !offered;
      if (!offered) return;
      const text = input.value.trim();
      if (text && !/^\d{1,4}$/.test(text)) { complete = false; return; }
      const quantity = Number(text || 0);
      if (quantity > 0) {
        chosen.push([addon, quantity]);
        add(label('addon', { title: addon.title, num: quantity }), addon.amount * quantity);
      }
    });
    // The destination: asked only when something ships; only where everything chosen ships.
    const shipping = [tier && tier.ships ? [tier, 1, 'pledge'] : null,
      ...chosen.filter(([addon]) => addon.ships).map(([addon, quantity]) => [addon, quantity, addon.per])].filter(Boolean);
    form.querySelectorAll('[data-show-for="ships"]').forEach((el) => el.classList.toggle('d-none', !shipping.length));
    if (country) {
      country.disabled = !shipping.length;
      Array.from(country.options).forEach((option) => {
        option.disabled = !!option.value && shipping.some(([item]) => cost(item, option.value) === null);
      });
      if (country.selectedOptions[0] && country.selectedOptions[0].disabled) country.value = '';
    }
    if (shipping.length) {
      const where = country && country.value;
      if (where) {
        const fee = shipping.reduce((acc, [item, quantity, per]) => acc + cost(item, where) * (per === 'unit' ? quantity : 1), 0);
        add(label('shipping', { country: country.selectedOptions[0].textContent }), fee);
      } else {
        rows.push([offer.labels.choose_country, null]);
        complete = false;
      }
    }
    if (tier) {
      const bonus = toMinor(field('bonus') && field('bonus').value);
      if (Number.isNaN(bonus)) complete = false;
      else if (bonus > 0) add(offer.labels.bonus, bonus);
    }

    lines.replaceChildren(...rows.map(([text, minor]) => {
      const row = document.createElement('tr');
      const head = document.createElement('th');
      head.scope = 'row';
      head.className = 'fw-normal';
      head.textContent = text;
      const cell = document.createElement('td');
      cell.className = 'text-end';
      cell.textContent = minor === null ? '—' : money(minor);
      row.append(head, cell);
      return row;
    }));
    totalCell.textContent = complete ? money(sum) : '—';
    totalCell.dataset.minor = complete ? String(sum) : '';
    total.value = complete ? String(sum) : '';
  };

  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
})();
