// Stock: every warehouse x item with on hand, in transit, minimum and target drawn as a bar coloured by status; the
// stock card of a line; forms for each movement a logistician records. A refusal for want of stock says what is
// available.
import * as api from './api.js';
import { h, clear, table, form, levelBar, badge, n, day, when, field, datalist, exportLinks } from './ui.js';

const statuses = ['below_minimum', 'below_target', 'ok', 'above_target'];

export function mount(ctx) {
  const params = ctx.params;
  const r = ctx.response;
  const filters = [
    field({ name: 'warehouse', label: 'Warehouse', list: 'dl-warehouses', value: params.get('warehouse') || '' }),
    field({ name: 'status', label: 'Status', type: 'select', options: statuses, value: params.get('status') || '', blank: 'all' }),
    field({ name: 'country', label: 'Country', value: params.get('country') || '', max: 3, placeholder: 'e.g. PHL' }),
  ];
  const list = h('div');
  const card = h('section', { class: 'panel', 'aria-labelledby': 'h-card', hidden: true });
  const transfers = h('div');
  ctx.root.append(h('h1', null, 'Stock'));
  let forms = null;
  if (ctx.canWrite) {
    forms = h('div', { class: 'forms' });
    ctx.root.append(h('section', { 'aria-labelledby': 'h-record' }, h('h2', { id: 'h-record', class: 'visually-hidden' }, 'Record a movement'), forms));
  }
  ctx.root.append(
    h('section', { class: 'panel', 'aria-labelledby': 'h-lines' }, h('h2', { id: 'h-lines' }, 'On hand and in transit'),
      h('div', { class: 'filters' }, filters), list),
    card,
    h('section', { class: 'panel', 'aria-labelledby': 'h-transit' }, h('h2', { id: 'h-transit' }, 'Transfers in transit'), transfers));
  for (const f of filters) f.querySelector('input, select').addEventListener('change', () => update());
  let selected = params.get('card') ? params.get('card').split(':') : null;
  const respond = r && r.status === 'open' ? r.id : '';

  if (forms) {
    const stockDone = verb => a => `${verb}. ${a.warehouse} ${a.item}: ${a.on_hand} on hand now.`;
    const common = [
      { name: 'warehouse', label: 'Warehouse', required: true, list: 'dl-warehouses' },
      { name: 'item', label: 'Item', required: true, list: 'dl-items' },
    ];
    const qty = { name: 'quantity', label: 'Quantity', type: 'number', required: true, min: 1, reset: true };
    const at = { name: 'occurred_at', label: 'When (blank: now)', type: 'datetime' };
    Promise.all([
      api.enumOf('POST', '/v1/stock/receipts', 'source'),
      api.enumOf('POST', '/v1/stock/adjustments', 'reason'),
    ]).then(([sources, reasons]) => {
      forms.append(
        form({ testid: 'dispatch-form', title: 'Dispatch', submit: { label: 'Dispatch', testid: 'dispatch-submit' },
          fields: [...common, qty, { name: 'destination', label: 'Destination', required: true },
            { name: 'response', label: 'Response', value: respond, list: 'dl-responses' },
            { name: 'reference', label: 'Waybill or reference' }, { name: 'transport', label: 'Transport' }, at],
          path: () => '/v1/stock/dispatches', done: stockDone('Dispatched'), after: () => update(), explain: explainStock }),
        form({ testid: 'receipt-form', title: 'Receipt', submit: { label: 'Receive', testid: 'receipt-submit' },
          fields: [...common, qty, { name: 'source', label: 'Source', type: 'select', options: sources, required: true, value: sources[0] },
            { name: 'donor', label: 'Donor' }, { name: 'reference', label: 'Reference' }, { name: 'expiry', label: 'Expiry', type: 'date' }, at],
          path: () => '/v1/stock/receipts', done: stockDone('Received'), after: () => update() }),
        form({ testid: 'transfer-form', title: 'Transfer to another warehouse', submit: { label: 'Send', testid: 'transfer-submit' },
          fields: [{ name: 'from', label: 'From', required: true, list: 'dl-warehouses' }, { name: 'to', label: 'To', required: true, list: 'dl-warehouses' },
            { name: 'item', label: 'Item', required: true, list: 'dl-items' }, qty,
            { name: 'response', label: 'Response', value: respond, list: 'dl-responses' },
            { name: 'reference', label: 'Waybill' }, { name: 'transport', label: 'Transport' }, at],
          path: () => '/v1/stock/transfers', done: a => `Sent: transfer ${a.id}, now in transit.`, after: () => update(), explain: explainStock }),
        form({ testid: 'transfer-receipt-form', title: 'Receive a transfer', submit: { label: 'Receive', testid: 'transfer-receipt-submit' },
          intro: 'A final receipt short of what was sent records the rest as lost in transit.',
          fields: [{ name: 'id', label: 'Transfer', required: true, list: 'dl-transfers' }, qty,
            { name: 'final', label: 'Final receipt (nothing more will arrive)', type: 'check' }, at],
          path: b => `/v1/stock/transfers/${api.seg(b.id || '')}/receive`, body: b => { const { id, ...rest } = b; return rest; },
          done: a => `Received on transfer ${a.id}: ${a.status}.`, after: () => update() }),
        form({ testid: 'adjustment-form', title: 'Adjustment', submit: { label: 'Adjust', testid: 'adjustment-submit' },
          fields: [...common, { name: 'delta', label: 'Change (negative for a loss)', type: 'number', required: true, reset: true },
            { name: 'reason', label: 'Reason', type: 'select', options: reasons, required: true, value: reasons[0] },
            { name: 'note', label: 'Note' }, at],
          path: () => '/v1/stock/adjustments', done: stockDone('Adjusted'), after: () => update(), explain: explainStock }),
        form({ testid: 'count-form', title: 'Physical count', submit: { label: 'Record count', testid: 'count-submit' },
          intro: 'The difference from what the system holds becomes the movement.',
          fields: [...common, { name: 'counted', label: 'Counted', type: 'number', required: true, min: 0, reset: true }, at],
          path: () => '/v1/stock/counts', done: stockDone('Counted'), after: () => update() }),
        form({ testid: 'reversal-form', title: 'Reverse a movement', submit: { label: 'Reverse', testid: 'reversal-submit' },
          intro: 'Undo a receipt, dispatch, adjustment or count entered by mistake (pick it on a stock card). The original stays on the card.',
          fields: [{ name: 'id', label: 'Movement id', required: true }, { name: 'reason', label: 'Reason', required: true, reset: true }],
          path: b => `/v1/stock/movements/${api.seg(b.id || '')}/reverse`, body: b => ({ reason: b.reason }),
          done: a => `Reversed. ${a.warehouse || ''} ${a.item || ''} ${a.on_hand !== undefined ? a.on_hand + ' on hand now.' : ''}`,
          after: () => update(), explain: explainStock }));
    });
  }

  async function update() {
    const q = Object.fromEntries(filters.map(f => { const c = f.querySelector('input, select'); return [c.name, c.value.trim()]; }));
    const [rows, warehouses, items, moving] = await Promise.all([
      api.all(`/v1/stock${api.query(q)}`),  // (exported below with the same filters)
      api.all('/v1/warehouses'),
      api.all('/v1/items'),
      api.all('/v1/stock/transfers?status=in_transit'),
    ]);
    datalist('dl-warehouses', warehouses.map(w => [w.code, `${w.name} (${w.country})`]));
    datalist('dl-items', items.map(i => [i.code, `${i.name} (${i.unit})`]));
    datalist('dl-transfers', moving.map(t => [t.id, `${t.from} → ${t.to}: ${t.quantity - t.received} ${t.item}`]));
    datalist('dl-responses', ctx.responses.filter(x => x.status === 'open').map(x => [x.id, x.name]));
    clear(list, table([
      { label: 'Warehouse', cell: x => [x.warehouse_name, ' ', h('span', { class: 'mono muted' }, x.warehouse)] },
      { label: 'Item', cell: x => [x.item_name, ' ', h('span', { class: 'muted' }, `(${x.unit})`)] },
      { label: 'On hand', num: true, cell: x => h('span', { testid: 'on-hand' }, n(x.on_hand)) },
      { label: 'In transit in / out', num: true, cell: x => `${n(x.in_transit_in)} / ${n(x.in_transit_out)}` },
      { label: 'Min / target', num: true, cell: x => `${n(x.minimum)} / ${n(x.target)}` },
      { label: 'Level', cell: x => levelBar(x) },
      { label: 'Status', cell: x => badge(x.status) },
      { label: 'Card', cell: x => h('button', { type: 'button', class: 'small quiet', 'aria-label': `Stock card of ${x.item} at ${x.warehouse}`,
        onclick: () => { selected = [x.warehouse, x.item]; showCard(); } }, 'Card') },
    ], rows, { rowAttrs: x => ({ testid: 'stock-row', 'data-warehouse': x.warehouse, 'data-item': x.item, 'data-status': x.status,
      class: selected && selected[0] === x.warehouse && selected[1] === x.item ? 'selected' : null }), empty: 'No stock line matches.' }),
      exportLinks(`/v1/stock${api.query(q)}`, 'these lines'));
    clear(transfers, table([
      { label: 'Transfer', cell: t => h('span', { class: 'mono' }, t.id) },
      { label: 'From → to', cell: t => `${t.from} → ${t.to}` },
      { label: 'Item', cell: t => t.item },
      { label: 'Sent / received', num: true, cell: t => `${n(t.quantity)} / ${n(t.received)}` },
      { label: 'Sent', cell: t => day(t.sent_at) },
      { label: 'Response', cell: t => t.response || '–' },
    ], moving, { rowAttrs: t => ({ testid: 'transfer-row', 'data-id': t.id }), empty: 'Nothing in transit.' }),
      exportLinks('/v1/stock/transfers?status=in_transit', 'transfers in transit'));
    if (selected) await showCard();
  }

  async function showCard() {
    const [w, i] = selected;
    const rows = await api.all(`/v1/stock/ledger${api.query({ warehouse: w, item: i })}`);
    card.hidden = false;
    clear(card, h('h2', { id: 'h-card', tabindex: '-1' }, `Stock card: ${i} at ${w}`),
      table([
        { label: 'When', cell: m => when(m.occurred_at) },
        { label: 'Movement', cell: m => [m.movement.replaceAll('_', ' '), m.reversed_by ? [' ', badge('reversed', 'status-requested')] : null] },
        { label: 'Quantity', num: true, cell: m => (m.quantity > 0 ? '+' : '') + n(m.quantity) },
        { label: 'Balance', num: true, cell: m => n(m.balance) },
        { label: 'Counterpart / reason', cell: m => [m.counterpart, m.reason, m.lost ? `lost ${m.lost}` : null].filter(Boolean).join(' · ') || '–' },
        { label: 'Reference', cell: m => m.reference || '–' },
        { label: 'Response', cell: m => m.response || '–' },
        { label: 'By', cell: m => m.actor },
        ...(ctx.canWrite ? [{ label: 'Correct', cell: m => (m.reversed_by || m.reverses || !['receipt', 'dispatch', 'adjustment', 'count'].includes(m.movement)) ? '–'
          : h('button', { type: 'button', class: 'small quiet', 'aria-label': `Reverse movement ${m.id}`, onclick: () => {
            const f = document.querySelector('[data-testid="reversal-form"]');
            f.elements.id.value = m.id; f.scrollIntoView({ block: 'center' }); f.elements.reason.focus();
          } }, 'Reverse') }] : []),
      ], rows, { rowAttrs: m => ({ testid: 'ledger-row', 'data-id': m.id, 'data-movement': m.movement }), empty: 'No movement yet.' }),
      exportLinks(`/v1/stock/ledger${api.query({ warehouse: w, item: i })}`, 'this stock card'));
    for (const tr of list.querySelectorAll('[data-testid="stock-row"]')) tr.classList.toggle('selected', tr.dataset.warehouse === w && tr.dataset.item === i);
  }
  return { update };
}

/// What is available, when the refusal is for want of stock (the API says it in `available`).
async function explainStock(err) {
  if (err.type !== 'insufficient-stock') return null;
  return h('strong', { testid: 'available' }, `${err.problem.available} available.`);
}
