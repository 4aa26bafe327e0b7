// Live countdown on campaign pages: updates "time to go" from the deadline every second.
(() => {
  const el = document.querySelector('.time-left[data-deadline]');
  if (!el) return;
  const deadline = Date.parse(el.dataset.deadline);
  if (Number.isNaN(deadline)) return;
  const pad = (n) => String(n).padStart(2, '0');
  const tick = () => {
    const left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
    const d = Math.floor(left / 86400);
    const h = Math.floor((left % 86400) / 3600);
    const m = Math.floor((left % 3600) / 60);
    const s = left % 60;
    const [du, hu, mu] = (el.dataset.units || 'd,h,m').split(',');
    el.textContent = d > 0 ? `${d}${du} ${pad(h)}${hu} ${pad(m)}${mu}` : `${pad(h)}:${pad(m)}:${pad(s)}`;
    if (left > 0) setTimeout(tick, 1000);
  };
  tick();
})();
