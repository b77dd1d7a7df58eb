// Replay: the response's timeline (occurred and recorded times, who recorded it, what it corrects), its state as of
// any moment by occurred or recorded time, and the after-action review figures, with their exports.
import * as api from './api.js';
import { h, clear, table, field, badge, n, when } from './ui.js';

export function mount(ctx) {
  const r = ctx.response;
  if (!r) { ctx.root.append(h('p', { class: 'panel empty' }, 'No response has been declared yet.')); return {}; }
  const id = api.seg(r.id);
  const asof = h('input', { id: 'asof', type: 'datetime-local', testid: 'asof-input', name: 'as_of', step: 60 });
  const basis = h('select', { id: 'basis', testid: 'basis-select', name: 'basis' },
    h('option', { value: 'occurred' }, 'when it happened (occurred)'), h('option', { value: 'recorded' }, 'when coord learnt it (recorded)'));
  // The slider runs hour by hour from the declaration to now (or the close); it sets the as-of field.
  const first = Date.parse(r.declared_at), last = r.closed_at ? Date.parse(r.closed_at) : Date.now();
  const hours = Math.max(1, Math.ceil((last - first) / 3600000));
  const slider = h('input', { id: 'asof-slider', type: 'range', min: 0, max: hours, step: 1, value: hours, testid: 'asof-slider',
    'aria-describedby': 'asof-slider-hint' });
  const sliderHint = h('span', { class: 'hint', id: 'asof-slider-hint' }, 'now');
  const stateBox = h('div');
  const timeline = h('div');
  const review = h('div');
  const tf = {
    type: field({ name: 'type', label: 'Event type', placeholder: 'e.g. stock.dispatched' }),
    cluster: field({ name: 'cluster', label: 'Cluster' }),
    warehouse: field({ name: 'warehouse', label: 'Warehouse' }),
    from: field({ name: 'from', label: 'From', type: 'date' }),
    to: field({ name: 'to', label: 'To', type: 'date' }),
  };
  const exports = h('p', { class: 'hint' }, 'Exports: ',
    h('a', { href: `/v1/responses/${id}/timeline?format=csv` }, 'timeline CSV'), ' · ',
    h('a', { href: `/v1/responses/${id}/timeline?format=hxl` }, 'timeline HXL'), ' · ',
    h('a', { href: `/v1/responses/${id}/review?format=md` }, 'review (Markdown)'), ' · ',
    h('a', { href: `/v1/responses/${id}/review?format=csv` }, 'review CSV'));
  ctx.root.append(h('h1', null, `Replay · ${r.name}`),
    h('section', { class: 'panel', 'aria-labelledby': 'h-state' }, h('h2', { id: 'h-state' }, 'State as of a moment'),
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'asof' }, 'As of (your time zone; blank: now)'), asof),
        h('div', { class: 'field' }, h('label', { for: 'basis' }, 'By'), basis)),
      h('div', { class: 'field' }, h('label', { for: 'asof-slider' }, 'Moment, from the declaration to now'), slider, sliderHint),
      stateBox),
    h('div', { class: 'grid two' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-review' }, h('h2', { id: 'h-review' }, 'After-action review'), review, exports),
      h('section', { class: 'panel', 'aria-labelledby': 'h-tl' }, h('h2', { id: 'h-tl' }, 'Timeline'),
        h('div', { class: 'filters' }, Object.values(tf)), timeline)));
  const local = t => { const d = new Date(t), p = x => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; };
  let slid = null;
  slider.addEventListener('input', () => {
    const v = Number(slider.value);
    asof.value = v >= hours ? '' : local(first + v * 3600000);
    sliderHint.textContent = asof.value ? asof.value.replace('T', ' ') : 'now';
    clearTimeout(slid);
    slid = setTimeout(() => showState(), 200);
  });
  asof.addEventListener('change', () => {
    const t = asof.value ? Date.parse(asof.value) : last;
    slider.value = String(Math.round((t - first) / 3600000));
    sliderHint.textContent = asof.value ? asof.value.replace('T', ' ') : 'now';
    showState();
  });
  basis.addEventListener('change', () => showState());
  for (const f of Object.values(tf)) f.querySelector('input').addEventListener('change', () => showTimeline());

  async function showState() {
    const q = { basis: basis.value, as_of: asof.value ? new Date(asof.value).toISOString().replace('.000Z', 'Z') : '' };
    const s = await api.get(`/v1/responses/${id}/state${api.query(q)}`);
    const count = (rows, key) => Object.entries(rows.reduce((a, x) => ({ ...a, [x[key]]: (a[x[key]] || 0) + 1 }), {}));
    clear(stateBox,
      h('p', { class: 'muted', testid: 'state-summary' }, `${s.moment.now ? 'Now' : 'As of ' + (s.moment.as_of || asof.value)}: ${s.events_applied} events applied. `,
        s.response ? ['Response ', badge(s.response.status), ' severity ', s.response.severity, ', phase ', s.response.phase] : 'The response was not declared yet.'),
      h('div', { class: 'grid three' },
        h('div', null, h('h3', null, 'Deployments'), table([{ label: 'Status', cell: x => x[0] }, { label: 'Count', num: true, cell: x => n(x[1]) }], count(s.deployments, 'status'), { cards: false })),
        h('div', null, h('h3', null, 'Tasks'), table([{ label: 'Status', cell: x => x[0] }, { label: 'Count', num: true, cell: x => n(x[1]) }], count(s.tasks, 'status'), { cards: false })),
        h('div', null, h('h3', null, 'Stock lines'), table([{ label: 'Status', cell: x => x[0] }, { label: 'Count', num: true, cell: x => n(x[1]) }], count(s.stock, 'status'), { cards: false }))),
      h('details', null, h('summary', null, `Stock lines as of then (${s.stock.length})`),
        table([
          { label: 'Warehouse', cell: x => x.warehouse }, { label: 'Item', cell: x => x.item },
          { label: 'On hand', num: true, cell: x => n(x.on_hand) }, { label: 'Status', cell: x => badge(x.status) },
        ], s.stock, { rowAttrs: x => ({ testid: 'state-stock-row', 'data-warehouse': x.warehouse, 'data-item': x.item }) })));
  }

  async function showTimeline() {
    const q = Object.fromEntries(Object.entries(tf).map(([k, f]) => [k, f.querySelector('input').value.trim()]));
    const t = await api.get(`/v1/responses/${id}/timeline${api.query(q)}`);
    clear(timeline, h('p', { class: 'hint' }, `${t.items.length} events`), table([
      { label: 'Position', num: true, cell: e => n(e.position) },
      { label: 'Occurred', cell: e => when(e.occurred_at) },
      { label: 'Recorded', cell: e => when(e.recorded_at) },
      { label: 'What', cell: e => [e.text, e.corrects ? [' ', badge(`corrects ${e.corrects}`, 'status-requested')] : null] },
      { label: 'By', cell: e => e.actor },
    ], t.items, { rowAttrs: e => ({ testid: 'timeline-row', 'data-position': e.position, 'data-type': e.type }) }));
  }

  async function showReview() {
    const v = await api.get(`/v1/responses/${id}/review`);
    const figures = [
      ['Hours to first surge request', v.hours_to_first_surge_request],
      ['Hours to first arrival', v.hours_to_first_arrival],
      ['Hours to first NFI dispatch', v.hours_to_first_nfi_dispatch],
      ['Request to arrival, median hours', v.request_to_arrival_hours && v.request_to_arrival_hours.median],
      ['Request to arrival, longest hours', v.request_to_arrival_hours && v.request_to_arrival_hours.max],
      ['Unfilled profile-days', v.unfilled_profile_days],
      ['Stock lines that went below minimum', (v.days_below_minimum || []).length],
      ['Units lost in transit', Object.values(v.losses_in_transit || {}).reduce((a, b) => a + b, 0)],
    ];
    clear(review, h('dl', { class: 'figures', testid: 'review-figures' }, figures.map(([k, x]) => [h('dt', null, k), h('dd', null, n(x))])),
      h('h3', null, 'Tasks by cluster'),
      table([
        { label: 'Cluster', cell: x => x.cluster }, { label: 'Completed', num: true, cell: x => n(x.completed) },
        { label: 'Median hours', num: true, cell: x => n(x.median_completion_hours) }, { label: 'Overdue', num: true, cell: x => n(x.overdue) },
      ], v.tasks_by_cluster || [], { cards: false }));
  }

  return { update: () => Promise.all([showState(), showTimeline(), showReview()]) };
}
