// The console's shell: sign-in, the session, navigation between pages without reloads, the response shown, and one
// live feed (Server-Sent Events, authenticated by the session cookie) that makes the page shown refresh its data.
import * as api from './api.js';
import { h, clear, field, refusalText, announce } from './ui.js';
import * as overview from './overview.js';
import * as surge from './surge.js';
import * as stock from './stock.js';
import * as tasks from './tasks.js';
import * as replay from './replay.js';

const pages = { overview, surge, stock, tasks, replay };
const titles = { overview: 'Overview', surge: 'Surge', stock: 'Stock', tasks: 'Tasks', replay: 'Replay' };

const main = document.getElementById('main');
const bar = document.getElementById('bar');
const select = document.getElementById('response-select');
const liveStatus = document.getElementById('live-status');

const state = { session: null, responses: [], page: null, mounted: null, feed: null, refreshing: null, pending: 0 };

function pageOf(location) {
  const name = location.pathname.replace(/^\/console\/?/, '').split('/')[0];
  return pages[name] ? name : 'overview';
}

function responseOf(location) {
  const wanted = new URLSearchParams(location.search).get('response');
  if (wanted && state.responses.some(r => r.id === wanted)) return wanted;
  const open = state.responses.find(r => r.status === 'open');
  return (open || state.responses[0] || {}).id || null;
}

function href(page, response) {
  return `/console/${page}` + (response ? `?response=${encodeURIComponent(response)}` : '');
}

function showSignIn(message, refused = true) {
  state.session = null;
  api.setSession(null);
  stopFeed();
  bar.hidden = true;
  document.title = 'Sign in · coord';
  const token = h('input', { id: 'signin-token', name: 'token', type: 'password', testid: 'signin-token', required: true,
    autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': 'signin-hint' });
  const result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', testid: 'form-result' }, message || '');
  if (message) result.className = refused ? 'result refused' : 'result ok';
  const submit = h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in');
  const form = h('form', { novalidate: true, 'aria-label': 'Sign in' },
    h('div', { class: 'field' }, h('label', { for: 'signin-token' }, 'Access token'), token,
      h('span', { class: 'hint', id: 'signin-hint' }, 'From your coord administrator (coordctl tokens create). It is exchanged for a session; the console does not keep it.')),
    submit, result);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const session = await api.post('/v1/session', { token: token.value.trim() });
      token.value = '';
      await start(session);
    } catch (err) {
      result.className = 'result refused';
      result.textContent = err.status === 401 ? 'That token is not valid (unknown, mistyped or revoked).' : refusalText(err);
      token.focus();
    } finally { submit.disabled = false; }
  });
  clear(main, h('section', { class: 'panel signin' }, h('h1', null, 'coord console'),
    h('p', { class: 'muted' }, 'Emergency response coordination: surge, stock, cluster tasks.'), form));
  token.focus();
}

async function start(session) {
  state.session = session;
  api.setSession(session);
  api.onSignedOut(() => { if (state.session) showSignIn('Your session has ended; sign in again.'); });
  state.responses = await api.all('/v1/responses');
  clear(select, state.responses.map(r => h('option', { value: r.id }, `${r.id} · ${r.name}${r.status === 'closed' ? ' (closed)' : ''}`)));
  document.getElementById('who').textContent = `${session.subject} (${session.role})`;
  bar.hidden = false;
  if (location.pathname === '/' || location.pathname === '/console/' || location.pathname.startsWith('/console/signin')) {
    history.replaceState(null, '', href('overview', responseOf(location)));
  }
  await startFeed();
  await show();
}

/// Draws the page the address names: mounts its module once, then asks it for its data.
async function show() {
  const page = pageOf(location);
  const response = responseOf(location);
  select.value = response || '';
  for (const a of document.querySelectorAll('#nav a')) {
    a.href = href(a.dataset.page, response);
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const r = state.responses.find(x => x.id === response) || null;
  document.title = `${titles[page]}${r ? ' · ' + r.id : ''} · coord`;
  const root = h('div', { class: 'page', 'data-page': page });
  clear(main, root);
  const ctx = {
    root, response: r, responses: state.responses, session: state.session,
    canWrite: state.session.role === 'operator' || state.session.role === 'admin',
    params: new URLSearchParams(location.search),
    navigate: (p, extra) => go(href(p, response) + (extra || '')),
  };
  state.page = page;
  try {
    state.mounted = pages[page].mount(ctx) || {};
    await refresh();
  } catch (err) {
    if (err instanceof api.Refusal) clear(root, h('p', { class: 'panel result refused' }, refusalText(err)));
    else throw err;
  }
}

async function refresh() {
  if (!state.mounted || !state.mounted.update) return;
  const mounted = state.mounted;
  try { await mounted.update(); } catch (err) {
    if (!(err instanceof api.Refusal)) throw err;
    announce(refusalText(err));
  }
}

function go(url) {
  history.pushState(null, '', url);
  show();
  main.focus();
}

// ---- The live feed -------------------------------------------------------------------------------------------
// One EventSource for the session. It starts at the lowest projection checkpoint, so every event the read models
// have not all applied yet still arrives (and refreshes the page once they have). EventSource reconnects by itself
// with Last-Event-ID after a shutdown, an outage or a dropped network, with nothing skipped or repeated.

function stopFeed() {
  if (state.feed) { state.feed.close(); state.feed = null; }
  liveStatus.textContent = 'offline';
  liveStatus.classList.remove('on');
}

async function startFeed() {
  stopFeed();
  const [doc, projections] = await Promise.all([api.consoleSchema(), api.get('/v1/projections')]);
  const types = doc.event_types || [];
  const after = Math.min(...projections.items.map(p => p.checkpoint));
  const feed = new EventSource(`/v1/events/live?after=${Number.isFinite(after) ? after : 0}`);
  state.feed = feed;
  liveStatus.textContent = 'connecting';
  feed.onopen = () => { liveStatus.textContent = 'live'; liveStatus.classList.add('on'); };
  feed.onerror = async () => {
    liveStatus.classList.remove('on');
    liveStatus.textContent = feed.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting';
    if (feed.readyState === EventSource.CLOSED && state.feed === feed) {
      // Closed for good: the session ended (401) or the server refused. Ask which; try again if it was not the session.
      try { await api.get('/v1/session'); setTimeout(() => { if (state.feed === feed) startFeed(); }, 3000); } catch { /* signed out */ }
    }
  };
  const onEvent = e => { state.pending = Math.max(state.pending, Number(e.lastEventId) || 0); scheduleRefresh(); };
  for (const t of types) feed.addEventListener(t, onEvent);
  // Alerts raised or cleared (no id: they follow the events already counted): the page shows the new list.
  feed.addEventListener('alert', () => scheduleRefresh());
  for (const t of ['shutdown', 'unavailable']) feed.addEventListener(t, () => { liveStatus.classList.remove('on'); liveStatus.textContent = 'reconnecting'; });
}

/// Refreshes once the read models have applied the newest event seen (their checkpoints), a few events at a time.
function scheduleRefresh() {
  if (state.refreshing) return;
  state.refreshing = (async () => {
    await new Promise(r => setTimeout(r, 250));
    for (let i = 0; i < 20; i++) {
      const target = state.pending;
      try {
        const p = await api.get('/v1/projections');
        if (Math.min(...p.items.map(x => x.checkpoint)) >= target) break;
      } catch { break; }
      await new Promise(r => setTimeout(r, 150));
    }
    state.refreshing = null;
    await refresh();
  })();
}

// ---- Wiring ----------------------------------------------------------------------------------------------------

select.addEventListener('change', () => go(href(pageOf(location), select.value)));
document.getElementById('nav').addEventListener('click', e => {
  const a = e.target.closest('a[data-page]');
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(a.href);
});
window.addEventListener('popstate', () => { if (state.session) show(); });
document.getElementById('signout').addEventListener('click', async () => {
  try { await api.send('DELETE', '/v1/session'); } catch { /* signing out anyway */ }
  history.replaceState(null, '', '/console/');
  showSignIn('Signed out.', false);
});

(async () => {
  try {
    await start(await api.get('/v1/session'));
  } catch (err) {
    if (err instanceof api.Refusal && err.status !== 401) showSignIn(refusalText(err));
    else if (!state.session) showSignIn();
  }
})();

