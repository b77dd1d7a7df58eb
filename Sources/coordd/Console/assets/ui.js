// DOM helpers shared by the pages: element building without innerHTML (text is always text), labelled form fields,
// forms that post to the API and say what happened, tables that become cards on a phone, SVG charts and level bars.
import * as api from './api.js';

const SVG = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function apply(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'testid') node.setAttribute('data-testid', v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  return node;
}

export function h(tag, attrs, ...children) {
  return append(apply(document.createElement(tag), attrs), children);
}

export function s(tag, attrs, ...children) {
  return append(apply(document.createElementNS(SVG, tag), attrs), children);
}

export function clear(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/// Numbers as plain digits (the test hooks rely on it); null as an en dash.
export const n = v => (v === null || v === undefined ? '–' : String(v));
export const day = t => (t ? String(t).slice(0, 10) : '–');
export const when = t => (t ? String(t).slice(0, 16).replace('T', ' ') : '–');
export const today = () => new Date().toISOString().slice(0, 10);

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || 'status-' + text}` }, String(text).replaceAll('_', ' '));
}

export function announce(text) {
  const el = document.getElementById('announce');
  if (el) { el.textContent = ''; setTimeout(() => { el.textContent = text; }, 30); }
}

/// A table: columns are {label, cell(row) → node|text, num?}; rowAttrs(row) gives the row's attributes (hooks).
export function table(columns, rows, { rowAttrs, caption, empty = 'Nothing to show.', cards = true } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: cards ? 'cards' : null },
      caption ? h('caption', null, caption) : null,
      h('thead', null, h('tr', null, columns.map(c => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', null, rows.map(r => h('tr', rowAttrs ? rowAttrs(r) : null,
        columns.map(c => h('td', { class: c.num ? 'num' : null, 'data-label': c.label, testid: c.testid || null }, c.cell(r))))))));
}

let fieldSerial = 0;

/// One labelled field. spec: {name, label, type: text|number|date|datetime|select|check|textarea, options,
/// required, value, hint, list (a datalist id), min, placeholder}.
export function field(spec) {
  const id = `f${++fieldSerial}-${spec.name}`;
  const hintId = spec.hint ? id + '-hint' : null;
  let control;
  const common = { id, name: spec.name, required: spec.required || null, 'aria-describedby': hintId };
  if (spec.type === 'select') {
    control = h('select', common,
      spec.required ? null : h('option', { value: '' }, spec.blank || '—'),
      (spec.options || []).map(o => {
        const [value, label] = Array.isArray(o) ? o : [o, String(o).replaceAll('_', ' ')];
        return h('option', { value, selected: String(spec.value ?? '') === String(value) || null }, label);
      }));
  } else if (spec.type === 'textarea') {
    control = h('textarea', { ...common, rows: 2, maxlength: spec.max || 2000 }, spec.value || '');
  } else if (spec.type === 'check') {
    control = h('input', { ...common, type: 'checkbox', checked: spec.value || null });
    return h('div', { class: 'field check' }, control, h('label', { for: id }, spec.label));
  } else {
    const type = { number: 'number', date: 'date', datetime: 'datetime-local' }[spec.type] || 'text';
    control = h('input', {
      ...common, type, value: spec.value ?? null, list: spec.list || null, min: spec.min ?? null,
      inputmode: spec.type === 'number' ? 'numeric' : null, step: spec.type === 'number' ? 1 : null,
      placeholder: spec.placeholder || null, autocomplete: 'off', maxlength: type === 'text' ? (spec.max || 200) : null,
    });
  }
  return h('div', { class: 'field' }, h('label', { for: id }, spec.label, spec.required ? h('span', { 'aria-hidden': 'true' }, ' *') : null),
    control, spec.hint ? h('span', { class: 'hint', id: hintId }, spec.hint) : null);
}

/// The body of a form: empty optional fields left out, numbers as integers, checkboxes as booleans, datetime-local
/// values as the instant they name in the browser's time zone.
export function values(form, fields) {
  const body = {};
  for (const f of fields) {
    const el = form.elements.namedItem(f.name);  // (elements['item'] is the collection's own item() method)
    if (!el) continue;
    if (f.type === 'check') { if (el.checked) body[f.name] = true; continue; }
    const v = el.value.trim();
    if (v === '') continue;
    if (f.type === 'number') body[f.name] = /^-?\d+$/.test(v) ? Number(v) : v;
    else if (f.type === 'datetime') body[f.name] = new Date(v).toISOString().replace('.000Z', 'Z');
    else if (f.type === 'list') body[f.name] = v.split(',').map(x => x.trim()).filter(Boolean);
    else body[f.name] = v;
  }
  return body;
}

/// What a refusal says, in words: the API's detail, each field's complaint, and what a page adds (`explain`).
export function refusalText(err) {
  const p = err.problem || {};
  const parts = [err.status ? `Refused: ${p.detail || err.message}` : err.message];
  for (const e of p.errors || []) parts.push(`${e.field}: ${e.message}`);
  return parts.join('. ');
}

/// A form that posts to the API. spec: {testid, title, fields, submit: {label, testid}, path(body) → string,
/// method?, transform(body)?, done(answer, body) → text, explain(err, body)? → Promise<node|text|null>, after()?}.
/// Each submit carries its own Idempotency-Key, kept across retries of the same values.
export function form(spec) {
  const result = h('div', { class: 'result', testid: 'form-result', role: 'status', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', testid: spec.submit.testid || null }, spec.submit.label);
  const el = h('form', { class: 'card', testid: spec.testid, novalidate: true, 'aria-label': spec.title },
    h('h3', null, spec.title), spec.intro ? h('p', { class: 'hint' }, spec.intro) : null,
    spec.fields.map(f => (f.type === 'custom' ? f.node : field(f))), button, result);
  let last = { text: null, key: null };
  el.addEventListener('submit', async event => {
    event.preventDefault();
    let body = values(el, spec.fields.filter(f => f.type !== 'custom'));
    if (spec.transform) body = spec.transform(body, el);
    const text = JSON.stringify(body);
    const key = text === last.text ? last.key : api.newKey();
    last = { text, key };
    button.disabled = true;
    result.className = 'result';
    result.textContent = 'Sending…';
    try {
      const answer = await api.send(spec.method || 'POST', spec.path(body), spec.body ? spec.body(body) : body, key);
      last = { text: null, key: null };
      result.className = 'result ok';
      clear(result, spec.done ? spec.done(answer, body) : 'Recorded.');
      if (spec.reset !== false) for (const f of spec.fields) if (f.reset && el.elements.namedItem(f.name)) el.elements.namedItem(f.name).value = '';
      if (spec.after) await spec.after(answer, body);
    } catch (err) {
      if (!(err instanceof api.Refusal)) throw err;
      if (err.status >= 400 && err.status < 500) last = { text: null, key: null };
      result.className = 'result refused';
      clear(result, refusalText(err));
      if (spec.explain) {
        const more = await spec.explain(err, body).catch(() => null);
        if (more) append(result, [' ', more]);
      }
    } finally {
      button.disabled = false;
      announce(result.textContent);
    }
  });
  return el;
}

/// An action on one row that needs a few inputs (a reason, a new end date): a dialog with its own form.
export function dialogAction(spec, onDone) {
  const dlg = h('dialog', { 'aria-label': spec.title });
  const f = form({ ...spec, after: async (a, b) => { dlg.close(); dlg.remove(); if (onDone) await onDone(a, b); } });
  const cancel = h('button', { type: 'button', class: 'quiet', onclick: () => { dlg.close(); dlg.remove(); } }, 'Close');
  f.insertBefore(cancel, f.querySelector('[data-testid="form-result"]'));
  dlg.append(f);
  document.body.append(dlg);
  dlg.showModal();
  const first = f.querySelector('input, select, textarea');
  if (first) first.focus();
}

/// A bar chart of values by day (SVG drawn here). series: [{day, value}], sorted.
export function dayChart(series, { label, unit, alt }) {
  const W = 640, H = 180, L = 40, B = 26, T = 10;
  const max = Math.max(1, ...series.map(p => p.value));
  const step = series.length ? (W - L - 6) / series.length : 1;
  const y = v => T + (H - T - B) * (1 - v / max);
  const total = series.reduce((a, p) => a + p.value, 0);
  const peak = series.reduce((a, p) => (p.value > a.value ? p : a), { value: 0, day: '' });
  const summary = series.length
    ? `${label}: ${series.length} days from ${series[0].day} to ${series[series.length - 1].day}; highest ${peak.value} ${unit} on ${peak.day}`
    : `${label}: no data`;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary },
    s('title', null, summary),
    [0, 0.5, 1].map(f => [s('line', { class: 'grid-line', x1: L, x2: W, y1: y(max * f), y2: y(max * f) }),
      s('text', { x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end' }, String(Math.round(max * f)))]),
    series.map((p, i) => s('rect', { class: alt ? 'bar alt' : 'bar', x: L + i * step + 0.5, width: Math.max(1, step - 1), y: y(p.value), height: Math.max(0, H - B - y(p.value)) },
      s('title', null, `${p.day}: ${p.value} ${unit}`))),
    s('line', { class: 'axis', x1: L, x2: W, y1: H - B, y2: H - B }),
    series.length ? [s('text', { x: L, y: H - 8 }, series[0].day), s('text', { x: W, y: H - 8, 'text-anchor': 'end' }, series[series.length - 1].day)] : null);
  return h('figure', { class: 'chart-figure' }, svg, h('figcaption', { class: 'hint' }, `${summary}; ${total} ${unit} in all.`));
}

/// On hand against minimum and target, with what is in transit in dashed: one line of a stock table.
export function levelBar(row) {
  const top = Math.max(row.target || 0, row.on_hand + (row.in_transit_in || 0), row.minimum || 0, 1) * 1.1;
  const x = v => (200 * v) / top;
  return s('svg', { class: 'level', viewBox: '0 0 200 18', role: 'img',
    'aria-label': `${row.on_hand} on hand, minimum ${n(row.minimum)}, target ${n(row.target)}` },
    s('rect', { class: 'track', x: 0, y: 3, width: 200, height: 12, rx: 2 }),
    s('rect', { class: `fill ${row.status}`, x: 0, y: 3, width: x(row.on_hand), height: 12, rx: 2 }),
    row.in_transit_in ? s('rect', { class: 'transit', x: x(row.on_hand), y: 4, width: x(row.in_transit_in), height: 10 }) : null,
    row.minimum ? s('line', { class: 'mark', x1: x(row.minimum), x2: x(row.minimum), y1: 0, y2: 18 }, s('title', null, `minimum ${row.minimum}`)) : null,
    row.target ? s('line', { class: 'mark', x1: x(row.target), x2: x(row.target), y1: 0, y2: 18, 'stroke-dasharray': '2 2' }, s('title', null, `target ${row.target}`)) : null);
}

/// Links to a list's CSV and HXL exports with the filters shown (without a limit they stream every row).
export function exportLinks(path, what) {
  const sep = path.includes('?') ? '&' : '?';
  return h('p', { class: 'hint exports' }, `Export ${what}: `,
    h('a', { href: `${path}${sep}format=csv`, download: '', testid: 'export-csv' }, 'CSV'), ' · ',
    h('a', { href: `${path}${sep}format=hxl`, download: '', testid: 'export-hxl' }, 'HXL'));
}

/// A datalist for inputs that take a code (warehouse, item, person): typing stays possible, suggestions help.
export function datalist(id, entries) {
  let list = document.getElementById(id);
  if (!list) { list = h('datalist', { id }); document.body.append(list); }
  clear(list, entries.map(([value, label]) => h('option', { value }, label)));
  return list;
}
