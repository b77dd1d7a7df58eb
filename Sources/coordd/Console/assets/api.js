// The console's one door to coord's API: same-origin requests carried by the session cookie (HttpOnly: this script
// never sees it), the session's CSRF value on every write, a fresh Idempotency-Key per submitted form (a retry of the
// same submit is applied once), and problems (RFC 9457) turned into a Refusal the page can show.

let csrf = null;
let signedOut = () => {};

export function setSession(session) { csrf = session ? session.csrf : null; }
export function onSignedOut(handler) { signedOut = handler; }

export class Refusal extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `the server answered ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  get type() { return (this.problem.type || '').split('/').pop(); }
}

async function answer(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch { body = { detail: text.slice(0, 200) }; }
  }
  if (!response.ok) {
    if (response.status === 401) signedOut();
    throw new Refusal(response.status, body);
  }
  return body;
}

export async function get(path) {
  let response;
  try {
    response = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch {
    throw new Refusal(0, { detail: 'coord cannot be reached; check the connection' });
  }
  return answer(response);
}

/// Every row of a list, following its cursor (`next`).
export async function all(path, limit = 1000) {
  const sep = path.includes('?') ? '&' : '?';
  let rows = [];
  let page = await get(`${path}${sep}limit=${limit}`);
  for (;;) {
    rows = rows.concat(page.items);
    if (!page.next) return rows;
    page = await get(`${path}${sep}limit=${limit}&next=${encodeURIComponent(page.next)}`);
  }
}

/// A random key (crypto.randomUUID needs a secure context; an office network may serve plain HTTP).
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'console-' + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

export async function send(method, path, body, key) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf) headers['X-CSRF-Token'] = csrf;
  if (key) headers['Idempotency-Key'] = key;
  let response;
  try {
    response = await fetch(path, { method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new Refusal(0, { detail: 'coord cannot be reached; nothing was recorded by this attempt, submit again to retry' });
  }
  return answer(response);
}

export const post = (path, body, key) => send('POST', path, body, key);

/// Query text from an object, leaving out empty values.
export function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? '?' + parts.join('&') : '';
}

export const seg = encodeURIComponent;

// What the forms and the feed need to know of the API (`/console/assets/schema.json`, derived by coordd from the
// command schemas it validates with): the enums of command bodies, so a select offers exactly what the server
// takes, and the live feed's event names.
let schema = null;
export async function consoleSchema() {
  if (!schema) schema = get('/console/assets/schema.json');
  return schema;
}

export async function enumOf(method, path, field) {
  const doc = await consoleSchema();
  const fields = doc.enums[`${method} ${path}`] || {};
  return fields[field] || [];
}
