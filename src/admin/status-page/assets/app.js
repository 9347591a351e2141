// @ts-check
// bulb's status page. Polls GET /status once a second (paused while the tab is hidden), keeps a chart ring per
// backend fed by the points the server sends since the last poll, and drains or undrains through the admin API.
// No framework and no build step: the server sends this file as it is.

const TOKEN_KEY = 'bulb.adminToken';
const POLL_MS = 1000;
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const tokenRequired = document.body.dataset['tokenRequired'] === 'true';

/** @type {Map<string, number[]>} requests per second per backend id, oldest first */
const charts = new Map();
let epoch = 0;
let since = 0;
let chartLength = 180;
/** @type {any} the last /status document */
let last = null;
let sortKey = 'id';
let sortDir = 1;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
let stopped = false;
/** One poll at a time, so `since` always follows the last answer; a poll asked for meanwhile runs right after. */
let polling = false;
let again = false;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string} path @param {RequestInit} [init] */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set('authorization', `Bearer ${t}`);
  return fetch(path, { ...init, headers, cache: 'no-store' });
}

/** Stops polling and asks for the token. @param {string} message */
function askForToken(message) {
  stopped = true;
  clearTimeout(timer);
  $('token-message').textContent = message;
  $('token-message').className = message.startsWith('Wrong') ? 'bad' : '';
  $('token-form').hidden = false;
  /** @type {HTMLInputElement} */ ($('token')).focus();
}

/** @param {string | null} text */
function banner(text) {
  const b = $('banner');
  b.hidden = text === null;
  b.textContent = text ?? '';
}

async function poll() {
  if (polling) {
    again = true;
    return;
  }
  clearTimeout(timer);
  if (stopped || document.hidden) return;
  polling = true;
  try {
    const res = await api(`/status?epoch=${epoch}&since=${since}`);
    if (res.status === 401) {
      askForToken(token() ? 'Wrong admin token: bulb refused it. Enter the token bulb was started with.' : 'This bulb needs its admin token.');
      return;
    }
    if (!res.ok) throw new Error(`bulb answered ${res.status}`);
    const status = await res.json();
    banner(null);
    update(status);
  } catch (err) {
    banner(`Cannot reach bulb: ${err instanceof Error ? err.message : String(err)}. Retrying…`);
  } finally {
    polling = false;
  }
  if (again) {
    again = false;
    return poll();
  }
  if (!stopped && !document.hidden) timer = setTimeout(poll, POLL_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void poll();
});

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = '';
  $('token-form').hidden = true;
  stopped = false;
  void poll();
});

$('filter').addEventListener('input', () => last && renderBackends(last));

for (const th of document.querySelectorAll('#backends th[data-sort]')) {
  th.querySelector('button')?.addEventListener('click', () => {
    const key = /** @type {HTMLElement} */ (th).dataset['sort'] ?? 'id';
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    for (const other of document.querySelectorAll('#backends th[data-sort]')) other.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
    if (last) renderBackends(last);
  });
}

/** @param {any} s */
function update(s) {
  if (s.sampling.epoch !== epoch) {
    // bulb restarted its sampling (or bulb itself restarted): the old points do not line up with the new ones.
    charts.clear();
    epoch = s.sampling.epoch;
  }
  since = s.sampling.seq;
  chartLength = s.sampling.length;
  const present = new Set();
  for (const b of s.backends) {
    present.add(b.id);
    const ring = charts.get(b.id) ?? [];
    ring.push(...b.history);
    if (ring.length > chartLength) ring.splice(0, ring.length - chartLength);
    charts.set(b.id, ring);
  }
  for (const id of charts.keys()) if (!present.has(id)) charts.delete(id);
  last = s;
  renderSummary(s);
  renderWorkers(s);
  renderSources(s);
  renderBackends(s);
  $('updated').textContent = `Updated ${new Date(s.now).toLocaleTimeString()}`;
}

/** @param {HTMLElement} el @param {string} text @param {string} [cls] */
function set(el, text, cls) {
  el.textContent = text;
  if (cls !== undefined) el.className = cls;
}

/** @param {any} s */
function renderSummary(s) {
  set($('s-ready'), s.ready ? 'ready' : s.shuttingDown ? 'shutting down' : s.synced ? 'not ready' : 'syncing', s.ready ? 'good' : 'bad');
  set($('s-panic'), s.panic ? 'PANIC: routing to all' : 'off', s.panic ? 'bad' : 'good');
  set($('s-routable'), `${s.routable} of ${s.backendCount}`, s.routable > 0 ? '' : 'bad');
  set($('s-strategy'), s.strategy ?? '—');
  set($('s-uptime'), duration(s.uptimeSeconds));
  set($('s-version'), s.version);
  $('backend-count').textContent = `(${s.backendCount})`;
}

/** @param {any} s */
function renderWorkers(s) {
  const section = $('workers-section');
  section.hidden = !Array.isArray(s.workers);
  if (section.hidden) return;
  const rows = s.workers.map((/** @type {any} */ w) => {
    const lag = w.eventLoopLagMs ? `${ms(w.eventLoopLagMs.mean)} / ${ms(w.eventLoopLagMs.p99)} / ${ms(w.eventLoopLagMs.max)}` : '…';
    return tr([td(w.id), td(String(w.pid)), td(count(w.requests), 'num'), td(w.connections === undefined ? '—' : count(w.connections), 'num'), td(lag, 'num')]);
  });
  /** @type {HTMLTableElement} */ ($('workers')).tBodies[0]?.replaceChildren(...rows);
}

/** @param {string} name */
function sourceKind(name) {
  if (name.startsWith('dir:')) return 'directory';
  if (name.startsWith('dns:')) return 'DNS';
  if (name === 'static') return 'static (--backend)';
  return '';
}

/** @param {any} s */
function renderSources(s) {
  const now = Date.parse(s.now);
  const rows = s.sources.map((/** @type {any} */ src) => {
    const problems = document.createElement('td');
    const list = document.createElement('ul');
    list.className = 'problems';
    if (src.error) list.append(li(`${src.error} (last good backends kept)`, 'bad'));
    for (const p of src.rejected) list.append(li(`${p.path}${p.pointer ? ` ${p.pointer}` : ''}: ${p.message}`, 'bad'));
    if (list.childElementCount === 0) list.append(li('none', 'muted'));
    problems.append(list);
    const sync = src.lastSyncAt ? `${new Date(src.lastSyncAt).toLocaleTimeString()} (${duration((now - Date.parse(src.lastSyncAt)) / 1000)} ago)` : 'never';
    const row = tr([td(src.name), td(sourceKind(src.name)), td(String(src.backends), 'num'), td(sync, src.lastSyncAt ? '' : 'bad'), problems]);
    row.dataset['source'] = src.name;
    return row;
  });
  /** @type {HTMLTableElement} */ ($('sources')).tBodies[0]?.replaceChildren(...rows);
}

/** @param {any} b */
function stateText(b) {
  if (b.state === 'draining') return 'draining';
  if (b.adminDrained) return 'drained by operator';
  return 'active';
}

/** @param {any} b */
function healthText(b) {
  if (!b.health) return 'healthy';
  if (b.health.reason === 'ejected') return b.health.until ? `ejected until ${new Date(b.health.until).toLocaleTimeString()}` : 'ejected';
  return 'failing checks';
}

/** @type {Record<string, (b: any) => string | number>} */
const SORT_KEYS = {
  id: (b) => b.id,
  origin: (b) => `${b.source} ${b.origin}`,
  state: stateText,
  health: healthText,
  weight: (b) => b.effectiveWeight,
  inflight: (b) => b.activeRequests,
  rps: (b) => b.rate?.rps ?? -1,
  errors: (b) => b.rate?.errorRate ?? -1,
  latency: (b) => b.latencyMs,
  lastError: (b) => b.lastError ?? '',
};

/** @type {Map<string, HTMLTableRowElement>} kept across polls, so focus and text selection survive updates */
const rows = new Map();

/** @param {any} s */
function renderBackends(s) {
  const filter = /** @type {HTMLInputElement} */ ($('filter')).value.trim().toLowerCase();
  const key = SORT_KEYS[sortKey] ?? SORT_KEYS['id'];
  const shown = s.backends
    .filter((/** @type {any} */ b) => !filter || [b.id, b.url, b.source, b.origin, stateText(b), healthText(b)].some((v) => String(v).toLowerCase().includes(filter)))
    .sort((/** @type {any} */ a, /** @type {any} */ b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * sortDir;
    });
  const present = new Set(s.backends.map((/** @type {any} */ b) => b.id));
  for (const id of rows.keys()) if (!present.has(id)) rows.delete(id);
  const body = /** @type {HTMLTableElement} */ ($('backends')).tBodies[0];
  body?.replaceChildren(...shown.map((/** @type {any} */ b) => backendRow(b)));
  $('no-backends').hidden = shown.length > 0;
  $('no-backends').textContent = s.backends.length === 0 ? 'No backends.' : 'No backend matches the filter.';
}

/** @param {any} b */
function backendRow(b) {
  let row = rows.get(b.id);
  if (!row) {
    row = document.createElement('tr');
    row.dataset['backend'] = b.id;
    for (let i = 0; i < 12; i++) row.append(document.createElement('td'));
    const button = document.createElement('button');
    button.type = 'button';
    button.addEventListener('click', () => void toggleDrain(b.id, button));
    row.cells[11]?.append(button);
    rows.set(b.id, row);
  }
  const c = row.cells;
  const idCell = /** @type {HTMLTableCellElement} */ (c[0]);
  idCell.replaceChildren(strong(b.id), small(b.url));
  c[1]?.replaceChildren(document.createTextNode(b.source), small(b.origin));
  const state = stateText(b);
  setCell(c[2], state, state === 'active' ? 'good' : 'warn');
  setCell(c[3], healthText(b), b.healthy ? 'good' : 'bad');
  setCell(c[4], b.effectiveWeight === b.weight ? String(b.weight) : `${b.effectiveWeight} of ${b.weight} (slow start)`, 'num');
  setCell(c[5], count(b.activeRequests), 'num');
  setCell(c[6], b.rate ? rate(b.rate.rps) : '…', 'num');
  setCell(c[7], b.rate && b.rate.errorRate !== null ? percent(b.rate.errorRate) : '—', b.rate?.errorRate > 0 ? 'num bad' : 'num');
  setCell(c[8], `${ms(b.latencyMs)}`, 'num');
  c[9]?.replaceChildren(sparkline(charts.get(b.id) ?? [], chartLength));
  setCell(c[10], b.lastError ?? '—', b.lastError ? 'error' : 'muted');
  const button = /** @type {HTMLButtonElement} */ (c[11]?.firstElementChild);
  const drained = b.adminDrained;
  if (!button.disabled) button.textContent = drained ? 'Undrain' : 'Drain';
  button.dataset['action'] = drained ? 'undrain' : 'drain';
  button.setAttribute('aria-label', `${drained ? 'Undrain' : 'Drain'} ${b.id}`);
  row.className = b.routable ? '' : 'out';
  return row;
}

/** @param {string} id @param {HTMLButtonElement} button */
async function toggleDrain(id, button) {
  const action = button.dataset['action'] ?? 'drain';
  button.disabled = true;
  try {
    const res = await api(`/backends/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
    if (res.status === 401) {
      askForToken(token() ? 'Wrong admin token: bulb refused it. Enter the token bulb was started with.' : 'This bulb needs its admin token.');
      return;
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      banner(`Could not ${action} ${id}: ${body.error ?? `bulb answered ${res.status}`}`);
      return;
    }
    banner(null);
  } catch (err) {
    banner(`Could not ${action} ${id}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    button.disabled = false;
  }
  await poll();
}

const SVG = 'http://www.w3.org/2000/svg';
/** Requests per second as a line, scaled to its own peak. @param {number[]} points @param {number} length */
function sparkline(points, length) {
  const w = 120;
  const h = 28;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const peak = Math.max(1, ...points);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = points.length ? `requests per second, last ${duration(points.length)}: now ${rate(points[points.length - 1] ?? 0)}, peak ${rate(peak)}` : 'no samples yet';
  svg.append(title);
  const axis = document.createElementNS(SVG, 'line');
  for (const [k, v] of [['x1', 0], ['x2', w], ['y1', h - 0.5], ['y2', h - 0.5]]) axis.setAttribute(String(k), String(v));
  axis.setAttribute('class', 'axis');
  svg.append(axis);
  if (points.length > 1) {
    const step = w / Math.max(1, length - 1);
    const x0 = w - (points.length - 1) * step;
    const coords = points.map((p, i) => `${(x0 + i * step).toFixed(1)},${(h - 1 - (p / peak) * (h - 2)).toFixed(1)}`);
    const area = document.createElementNS(SVG, 'polygon');
    area.setAttribute('points', `${x0.toFixed(1)},${h} ${coords.join(' ')} ${w},${h}`);
    area.setAttribute('class', 'area');
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', coords.join(' '));
    line.setAttribute('class', 'line');
    svg.append(area, line);
  }
  return svg;
}

/** @param {Element | undefined} cell @param {string} text @param {string} cls */
function setCell(cell, text, cls) {
  if (!cell) return;
  if (cell.textContent !== text) cell.textContent = text;
  cell.className = cls;
}
/** @param {Node[]} cells */
function tr(cells) {
  const row = document.createElement('tr');
  row.append(...cells);
  return row;
}
/** @param {string} text @param {string} [cls] */
function td(text, cls) {
  const cell = document.createElement('td');
  cell.textContent = text;
  if (cls) cell.className = cls;
  return cell;
}
/** @param {string} text @param {string} [cls] */
function li(text, cls) {
  const item = document.createElement('li');
  item.textContent = text;
  if (cls) item.className = cls;
  return item;
}
/** @param {string} text */
function strong(text) {
  const el = document.createElement('strong');
  el.textContent = text;
  return el;
}
/** @param {string} text */
function small(text) {
  const el = document.createElement('small');
  el.textContent = text;
  return el;
}
/** @param {number} n */
const count = (n) => n.toLocaleString('en-US');
/** @param {number} n */
const rate = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2));
/** @param {number} n */
const percent = (n) => `${(n * 100).toFixed(n >= 0.1 ? 0 : 1)}%`;
/** @param {number} n */
const ms = (n) => `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`;
/** @param {number} seconds */
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

if (tokenRequired && !token()) askForToken('This bulb needs its admin token.');
else void poll();
