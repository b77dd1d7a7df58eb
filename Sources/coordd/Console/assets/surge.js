// Surge: deployments of the response by status, each with the lifecycle steps it can take next; a request form that
// finds roster members by profile and availability for the dates; refusals show the deployment they conflict with.
import * as api from './api.js';
import { h, clear, table, form, dialogAction, badge, n, day, field, exportLinks } from './ui.js';

const statuses = ['requested', 'confirmed', 'deployed', 'completed', 'cancelled'];

// The step each status allows, with the inputs it needs (API paths /v1/deployments/{id}/<step>).
const steps = {
  requested: [['confirm', 'Confirm', []], ['cancel', 'Cancel', [{ name: 'reason', label: 'Reason', required: true }]]],
  confirmed: [['arrive', 'Arrived', []], ['cancel', 'Cancel', [{ name: 'reason', label: 'Reason', required: true }]]],
  deployed: [['extend', 'Extend', [{ name: 'end', label: 'New end date', type: 'date', required: true }]], ['complete', 'Complete', []]],
  completed: [],
  cancelled: [],
};
const when = { name: 'occurred_at', label: 'When it happened (blank: now)', type: 'datetime' };

export function mount(ctx) {
  const r = ctx.response;
  if (!r) { ctx.root.append(h('p', { class: 'panel empty' }, 'No response has been declared yet.')); return {}; }
  const wanted = ctx.params.get('status') || '';
  const filter = field({ name: 'status', label: 'Status', type: 'select', options: statuses, value: wanted, blank: 'all' });
  const list = h('div');
  const counts = h('p', { class: 'muted' });
  ctx.root.append(h('h1', null, `Surge · ${r.name}`));
  let requestForm = null;
  if (ctx.canWrite) {
    requestForm = h('div');
    ctx.root.append(h('section', { class: 'panel', 'aria-labelledby': 'h-req' }, h('h2', { id: 'h-req' }, 'Request a deployment'), requestForm));
    buildRequest(requestForm, r, () => update());
  }
  ctx.root.append(h('section', { class: 'panel', 'aria-labelledby': 'h-deps' }, h('h2', { id: 'h-deps' }, 'Deployments'),
    h('div', { class: 'filters' }, filter), counts, list));
  filter.querySelector('select').addEventListener('change', () => update());

  async function update() {
    const status = filter.querySelector('select').value;
    const listPath = `/v1/deployments${api.query({ response: r.id, status })}`;
    const rows = await api.all(listPath);
    const byStatus = statuses.map(s => `${rows.filter(x => x.status === s).length} ${s}`).join(' · ');
    counts.textContent = status ? `${rows.length} ${status}` : byStatus;
    const order = d => statuses.indexOf(d.status);
    rows.sort((a, b) => order(a) - order(b) || a.start.localeCompare(b.start));
    clear(list, table([
      { label: 'Deployment', cell: d => h('span', { class: 'mono' }, d.id) },
      { label: 'Person', cell: d => [d.person_name || '', ' ', h('span', { class: 'mono muted' }, d.person)] },
      { label: 'Profile', cell: d => `${d.profile}${d.cluster ? ' · ' + d.cluster : ''}` },
      { label: 'Dates', cell: d => `${d.start} → ${d.end}` },
      { label: 'Duty station', cell: d => d.duty_station || '–' },
      { label: 'Status', cell: d => [badge(d.status), d.overdue_end ? [' ', badge('past its end', 'status-blocked')] : null] },
      { label: 'Arrived', cell: d => day(d.arrived_at) },
      ...(ctx.canWrite ? [{ label: 'Actions', cell: d => h('div', { class: 'actions' }, steps[d.status].map(([step, label, fields]) =>
        h('button', { type: 'button', class: 'small quiet', 'data-action': step, 'aria-label': `${label} ${d.id}`, onclick: () => act(d, step, label, fields) }, label))) }] : []),
    ], rows, { rowAttrs: d => ({ testid: 'deployment-row', 'data-id': d.id, 'data-status': d.status }), empty: 'No deployment.' }),
      exportLinks(listPath, 'these deployments'));
  }

  function act(d, step, label, fields) {
    dialogAction({
      testid: 'deployment-action-form', title: `${label} ${d.id}`, fields: [...fields, when],
      submit: { label }, path: () => `/v1/deployments/${api.seg(d.id)}/${step}`,
      done: a => `${d.id} is now ${a.status || step}.`,
    }, () => update());
  }
  return { update };
}

/// The request form: profile and dates first, then the people free for the whole period, then the rest.
function buildRequest(box, r, changed) {
  const people = h('div', { class: 'field' });
  const found = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });
  const personSelect = h('select', { id: 'req-person', name: 'person', required: true }, h('option', { value: '' }, 'Find people first'));
  clear(people, h('label', { for: 'req-person' }, 'Person *'), personSelect, found);
  api.enumOf('POST', '/v1/deployments', 'profile').then(async profiles => {
    const clusters = await api.enumOf('POST', '/v1/deployments', 'cluster');
    const fields = [
      { name: 'profile', label: 'Profile', type: 'select', options: profiles, required: true },
      { name: 'start', label: 'Start', type: 'date', required: true },
      { name: 'end', label: 'End', type: 'date', required: true },
      { type: 'custom', node: h('button', { type: 'button', class: 'quiet', onclick: () => find() }, 'Find available people') },
      { type: 'custom', node: people },
      { name: 'cluster', label: 'Cluster', type: 'select', options: clusters },
      { name: 'duty_station', label: 'Duty station' },
    ];
    const f = form({
      testid: 'deployment-form', title: 'New request', fields, submit: { label: 'Request', testid: 'deployment-submit' },
      intro: 'Choose a profile and dates, find who is free for the whole period, then request.',
      path: () => '/v1/deployments',
      transform: (body, el) => ({ ...body, person: el.elements.person.value || undefined, response: r.id }),
      done: a => `Requested: ${a.id} (${a.status || 'requested'}).`,
      explain: explainConflict,
      after: () => changed(),
    });
    box.append(f);
    async function find() {
      const profile = f.elements.profile.value, from = f.elements.start.value, to = f.elements.end.value;
      if (!profile || !from || !to) { found.textContent = 'Choose a profile, a start and an end first.'; return; }
      found.textContent = 'Searching…';
      try {
        const rows = await api.all(`/v1/people${api.query({ profile, available_from: from, available_to: to })}`);
        // Free people first; those booked or unavailable stay choosable (plans change), marked with what is in the way.
        const free = rows.filter(p => p.available), busy = rows.filter(p => !p.available);
        clear(personSelect, rows.length ? null : h('option', { value: '' }, 'Nobody on the roster has this profile'),
          free.length ? h('optgroup', { label: 'Free for the whole period' }, free.map(p => h('option', { value: p.id }, `${p.name || p.id} · ${p.id} · ${p.home_country || ''}`))) : null,
          busy.length ? h('optgroup', { label: 'Booked or unavailable' }, busy.map(p => h('option', { value: p.id },
            `${p.name || p.id} · ${p.id} · in the way: ${(p.conflicts || []).join(', ') || 'unavailable'}`))) : null);
        found.textContent = `${free.length} with ${profile} free from ${from} to ${to}` + (busy.length ? `; ${busy.length} booked or unavailable` : '') + '.';
      } catch (err) { found.textContent = err.message; }
    }
  });
}

/// A refusal that names a conflicting deployment: show that deployment, so the coordinator sees what is in the way.
async function explainConflict(err) {
  const id = err.problem && err.problem.conflicting;
  if (!id) return null;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) return h('span', { testid: 'conflict' }, `In the way: ${id}.`);
  const d = await api.get(`/v1/deployments/${api.seg(id)}`);
  return h('span', { testid: 'conflict' }, `Conflicting: ${d.id}, ${d.profile} for ${d.response}, ${d.start} → ${d.end}, ${d.status}.`);
}
