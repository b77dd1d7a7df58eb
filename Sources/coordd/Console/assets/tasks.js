// Tasks: the response's cluster tasks on a board by status (columns) and cluster (lanes in each column), filtered by cluster, priority and overdue; each card
// with the steps its status allows; a form to create one.
import * as api from './api.js';
import { h, clear, form, dialogAction, badge, n, day, today, field, exportLinks } from './ui.js';

const columns = ['open', 'in_progress', 'blocked', 'completed', 'verified', 'cancelled'];
const when = { name: 'occurred_at', label: 'When it happened (blank: now)', type: 'datetime' };
const steps = {
  open: [['assign', 'Assign', [{ name: 'assignee', label: 'Assignee', required: true }]], ['start', 'Start', []], ['block', 'Block', [{ name: 'reason', label: 'Reason', required: true }]], ['cancel', 'Cancel', []]],
  in_progress: [['assign', 'Assign', [{ name: 'assignee', label: 'Assignee', required: true }]], ['block', 'Block', [{ name: 'reason', label: 'Reason', required: true }]], ['complete', 'Complete', []], ['cancel', 'Cancel', []]],
  blocked: [['start', 'Resume', []], ['cancel', 'Cancel', []]],
  completed: [['verify', 'Verify', []], ['reopen', 'Reopen', []]],
  verified: [['reopen', 'Reopen', []]],
  cancelled: [['reopen', 'Reopen', []]],
};

export function mount(ctx) {
  const r = ctx.response;
  if (!r) { ctx.root.append(h('p', { class: 'panel empty' }, 'No response has been declared yet.')); return {}; }
  const board = h('div', { class: 'board' });
  const exported = h('div');
  const filterBox = h('div', { class: 'filters' });
  const filters = {};
  ctx.root.append(h('h1', null, `Tasks · ${r.name}`));
  const createBox = ctx.canWrite ? h('section', { class: 'panel', 'aria-labelledby': 'h-new' }, h('h2', { id: 'h-new' }, 'New task')) : null;
  if (createBox) ctx.root.append(createBox);
  ctx.root.append(h('section', { 'aria-labelledby': 'h-board' }, h('h2', { id: 'h-board', class: 'visually-hidden' }, 'Task board'), filterBox, exported, board));

  let priorities = [];
  Promise.all([api.enumOf('POST', '/v1/tasks', 'cluster'), api.enumOf('POST', '/v1/tasks', 'priority')]).then(([clusters, prios]) => {
    priorities = prios;
    const p = ctx.params;
    filters.cluster = field({ name: 'cluster', label: 'Cluster', type: 'select', options: clusters, value: p.get('cluster') || '', blank: 'all' });
    filters.priority = field({ name: 'priority', label: 'Priority', type: 'select', options: priorities, value: p.get('priority') || '', blank: 'all' });
    filters.overdue = field({ name: 'overdue', label: 'Overdue only', type: 'check', value: p.get('overdue') === 'true' });
    clear(filterBox, Object.values(filters));
    for (const f of Object.values(filters)) f.querySelector('input, select').addEventListener('change', () => update());
    if (createBox) createBox.append(form({
      testid: 'task-form', title: 'Create', submit: { label: 'Create task', testid: 'task-submit' },
      fields: [
        { name: 'cluster', label: 'Cluster', type: 'select', options: clusters, required: true },
        { name: 'title', label: 'Title', required: true, reset: true },
        { name: 'priority', label: 'Priority', type: 'select', options: priorities, required: true, value: 'normal' },
        { name: 'due', label: 'Due', type: 'date' },
        { name: 'pcode', label: 'Area (P-code)', list: 'dl-areas' },
        { name: 'lead_org', label: 'Lead organisation' },
        { name: 'assignee', label: 'Assignee' },
        { name: 'description', label: 'Description', type: 'textarea', reset: true },
      ],
      transform: b => ({ ...b, response: r.id }), path: () => '/v1/tasks',
      done: a => `Created ${a.id}.`, after: () => update(),
    }));
    update();
  });

  async function update() {
    if (!filters.cluster) return;
    const q = {
      response: r.id, cluster: filters.cluster.querySelector('select').value, priority: filters.priority.querySelector('select').value,
      overdue: filters.overdue.querySelector('input').checked ? 'true' : '',
    };
    const rows = await api.all(`/v1/tasks${api.query(q)}`);
    clear(exported, exportLinks(`/v1/tasks${api.query(q)}`, 'these tasks'));
    const rank = { urgent: 0, high: 1, normal: 2, low: 3 };
    rows.sort((a, b) => rank[a.priority] - rank[b.priority] || String(a.due || '9').localeCompare(String(b.due || '9')));
    const now = today();
    clear(board, columns.map(c => {
      const mine = rows.filter(t => t.status === c);
      return h('section', { class: 'column', 'aria-label': `${c.replace('_', ' ')}: ${mine.length}` },
        h('h2', null, h('span', null, c.replace('_', ' ')), h('span', { class: 'badge' }, n(mine.length))),
        mine.length ? byCluster(mine).map(([cluster, cards]) => [h('h3', { class: 'lane' }, cluster), cards.map(t => card(t, now))])
          : h('p', { class: 'empty' }, 'None'));
    }));
  }

  function card(t, now) {
    const late = t.due && t.due < now && !['completed', 'verified', 'cancelled'].includes(t.status);
    return h('article', { class: 'task' + (late ? ' overdue' : ''), testid: 'task-card', 'data-id': t.id, 'data-status': t.status },
      h('div', { class: 'meta' }, h('span', { class: 'mono' }, t.id), badge(t.priority, `priority-${t.priority}`), h('span', null, t.cluster)),
      h('h3', null, t.title),
      h('div', { class: 'meta' },
        h('span', null, `due ${day(t.due)}${late ? ' (overdue)' : ''}`),
        t.assignee ? h('span', null, `assignee ${t.assignee}`) : null,
        t.lead_org ? h('span', null, `lead ${t.lead_org}`) : null,
        t.pcode ? h('span', null, t.pcode) : null,
        t.comments ? h('span', null, `${t.comments} comments`) : null),
      t.blocked_reason && t.status === 'blocked' ? h('p', { class: 'hint' }, `Blocked: ${t.blocked_reason}`) : null,
      ctx.canWrite ? h('div', { class: 'actions' }, [...steps[t.status], ['comments', 'Comment', [{ name: 'text', label: 'Comment', type: 'textarea', required: true }]],
        ['amend', 'Correct', [
          { name: 'title', label: 'Title', value: t.title }, { name: 'priority', label: 'Priority', type: 'select', options: priorities, value: t.priority },
          { name: 'due', label: 'Due', type: 'date', value: t.due || '' }, { name: 'lead_org', label: 'Lead organisation', value: t.lead_org || '' },
          { name: 'pcode', label: 'Area (P-code)', value: t.pcode || '' }, { name: 'reason', label: 'Reason for the correction', required: true }]]]
        .map(([step, label, fields]) => h('button', { type: 'button', class: 'small quiet', 'data-action': step, 'aria-label': `${label} ${t.id}`,
          onclick: () => dialogAction({ testid: 'task-action-form', title: `${label}: ${t.id}`, fields: step === 'comments' ? fields : [...fields, when],
            submit: { label }, path: () => `/v1/tasks/${api.seg(t.id)}/${step}`, done: () => `${label}: done.`,
            transform: step === 'amend' ? b => changedOnly(b, t) : undefined }, () => update()) }, label))) : null);
  }
  return { update };
}

/// A column's cards in one lane per cluster (clusters in name order), each lane urgent first.
function byCluster(cards) {
  const lanes = new Map();
  for (const t of cards) lanes.set(t.cluster, [...(lanes.get(t.cluster) || []), t]);
  return [...lanes.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

/// A correction sends only what changed (and why): an unchanged field is not a correction.
function changedOnly(body, task) {
  const out = { reason: body.reason };
  for (const [k, v] of Object.entries(body)) if (k !== 'reason' && v !== (task[k] ?? '')) out[k] = v;
  return out;
}
