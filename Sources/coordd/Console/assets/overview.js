// Overview of a response: the five figures a coordinator is asked for first (each counted by the API itself),
// open alerts, NFIs dispatched by item, and people deployed and units dispatched per day.
import * as api from './api.js';
import { h, clear, table, dayChart, n, day, badge, exportLinks } from './ui.js';

const kpis = [
  ['deployed', 'Surge deployed now', 'surge', '&status=deployed'],
  ['arriving', 'Arriving in 14 days', 'surge', '&status=confirmed'],
  ['unfilled', 'Requested, unfilled', 'surge', '&status=requested'],
  ['below-minimum', 'Stock lines below minimum', 'stock', '&status=below_minimum'],
  ['overdue-tasks', 'Overdue tasks', 'tasks', '&overdue=true'],
];

export function mount(ctx) {
  const r = ctx.response;
  if (!r) { ctx.root.append(h('p', { class: 'panel empty' }, 'No response has been declared yet.')); return {}; }
  const tiles = {};
  const kpiBox = h('div', { class: 'kpis' }, kpis.map(([id, label, page, extra]) => {
    tiles[id] = h('span', { class: 'n', testid: `kpi-${id}` }, '…');
    return h('a', { class: 'kpi', href: `/console/${page}?response=${encodeURIComponent(r.id)}${extra}`,
      onclick: e => { e.preventDefault(); ctx.navigate(page, extra); } }, tiles[id], h('span', { class: 'l' }, label));
  }));
  const head = h('div', { class: 'muted' });
  const alerts = h('div');
  const dispatched = h('div');
  const people = h('div');
  const flows = h('div');
  ctx.root.append(
    h('h1', null, r.name),
    head,
    kpiBox,
    h('div', { class: 'grid two' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-people' }, h('h2', { id: 'h-people' }, 'Surge deployed per day'), people),
      h('section', { class: 'panel', 'aria-labelledby': 'h-flows' }, h('h2', { id: 'h-flows' }, 'Units dispatched per day'), flows),
      h('section', { class: 'panel', 'aria-labelledby': 'h-alerts' }, h('h2', { id: 'h-alerts' }, 'Open alerts'), alerts),
      h('section', { class: 'panel', 'aria-labelledby': 'h-nfi' }, h('h2', { id: 'h-nfi' }, 'NFIs dispatched by item'), dispatched)));

  async function update() {
    const id = encodeURIComponent(r.id);
    const country = encodeURIComponent(r.country);
    const [summary, deployed, arriving, requested, below, overdue, allDeployments, dispatches, alertRows, warehouses] = await Promise.all([
      api.get(`/v1/responses/${id}`),
      api.all(`/v1/deployments?response=${id}&status=deployed`),
      api.all(`/v1/deployments?response=${id}&arriving_within_days=14`),
      api.all(`/v1/deployments?response=${id}&status=requested`),
      api.all(`/v1/stock?status=below_minimum&country=${country}`),
      api.all(`/v1/tasks?response=${id}&overdue=true`),
      api.all(`/v1/deployments?response=${id}`),
      api.all(`/v1/stock/ledger?response=${id}&movement=dispatch`),
      api.all('/v1/alerts'),
      api.all(`/v1/warehouses?country=${country}`),
    ]);
    tiles.deployed.textContent = n(deployed.length);
    tiles.arriving.textContent = n(arriving.length);
    tiles.unfilled.textContent = n(requested.length);
    tiles['below-minimum'].textContent = n(below.length);
    tiles['overdue-tasks'].textContent = n(overdue.length);
    clear(head, `${summary.hazard} · ${summary.country} · `, badge(summary.severity, `status-${summary.severity === 'red' ? 'blocked' : 'requested'}`),
      ` · phase ${summary.phase} · ${summary.status} · declared ${day(summary.declared_at)}`, summary.glide ? ` · GLIDE ${summary.glide}` : '');

    // Alerts of this response, and stock alerts of warehouses in its country.
    const local = new Set(warehouses.map(w => w.code));
    const mine = alertRows.filter(a => a.response === r.id || (a.response === null && local.has(String(a.subject).split(':')[0])));
    clear(alerts, table([
      { label: 'Alert', cell: a => badge(a.kind.replace(/^[a-z]+\./, ''), a.kind.startsWith('stock') ? 'status-below_minimum' : 'status-requested') },
      { label: 'Subject', cell: a => h('span', { class: 'mono' }, a.subject) },
      { label: 'Detail', cell: a => a.detail },
    ], mine, { rowAttrs: a => ({ testid: 'alert-row', 'data-kind': a.kind, 'data-id': a.id }), empty: 'No open alert.' }),
      exportLinks('/v1/alerts', 'all open alerts'));

    clear(dispatched, table([
      { label: 'Item', cell: x => x.item_name },
      { label: 'Quantity', num: true, cell: x => n(x.quantity) },
      { label: 'Unit', cell: x => x.unit },
      { label: 'Dispatches', num: true, cell: x => n(x.dispatches) },
    ], summary.dispatched_by_item, { empty: 'Nothing dispatched yet.' }),
      exportLinks(`/v1/stock/ledger?response=${id}&movement=dispatch`, 'the dispatches'));

    const first = day(summary.declared_at);
    const last = summary.closed_at ? day(summary.closed_at) : new Date().toISOString().slice(0, 10);
    clear(people, dayChart(perDay(first, last, d => allDeployments.filter(x => onMission(x, d)).length), { label: 'People deployed', unit: 'people' }));
    const byDay = new Map();
    for (const m of dispatches) if (!m.reversed_by) byDay.set(day(m.occurred_at), (byDay.get(day(m.occurred_at)) || 0) - m.quantity);
    clear(flows, dayChart(perDay(first, last, d => byDay.get(d) || 0), { label: 'Units dispatched', unit: 'units', alt: true }));
  }
  return { update };
}

/// On mission on a day: arrived on or before it, and not completed before it.
function onMission(d, date) {
  if (!d.arrived_at || day(d.arrived_at) > date) return false;
  if (d.completed_at) return day(d.completed_at) >= date;
  return d.status === 'deployed';
}

function perDay(first, last, value) {
  const out = [];
  const t = new Date(first + 'T00:00:00Z');
  const end = new Date(last + 'T00:00:00Z');
  for (let i = 0; t <= end && i < 400; i++, t.setUTCDate(t.getUTCDate() + 1)) {
    const d = t.toISOString().slice(0, 10);
    out.push({ day: d, value: value(d) });
  }
  return out;
}
