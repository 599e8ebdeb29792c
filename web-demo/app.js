// The tiernet web demo: a wasm light client in this tab follows the local
// devnet (see README.md). Plain ES module, no build step.
//
// Query parameters:
//   transport=websocket|webrtc|all   which bootstrap addresses to dial (default all)
//   forger=0                         leave out the dishonest forger node
//   log=info|debug|warn              the client's log level (browser console)
//   persist=0                        keep no trust in IndexedDB (every load is a cold start)

const LOG_LIMIT = 200; // entries shown in the event log
const EVENT_LIMIT = 1000; // entries kept in window.tiernetDemo.events
const LOOKUP_EVERY_MS = 3000;

// What tests (and curious people) can read.
const demo = {
  started: false,
  error: null,
  head: null,
  firstHeadMs: null,
  // The height of the saved trust this load started from (a warm start), or null.
  resumedFrom: null,
  // The height whose trust was last written to IndexedDB.
  savedHeight: null,
  peers: [],
  events: [],
  rejected: [],
};
window.tiernetDemo = demo;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- helpers

function shortId(id) {
  if (!id) return '—';
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}

function shortHash(hash) {
  if (!hash) return '—';
  return hash.length > 20 ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : hash;
}

// Long hex strings (hashes, roots) in a reason, shortened for display.
function shortenHex(text) {
  return String(text || '').replace(/\b[0-9a-f]{24,}\b/g, (h) => shortHash(h));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function errorText(err) {
  if (err === undefined || err === null) return 'unknown error';
  if (typeof err === 'string') return err;
  const kind = err.kind ? `${err.kind}: ` : '';
  const message = err.message || String(err);
  return message.startsWith(kind) ? message : kind + message;
}

// A multiaddr without its certhash and /p2p/ parts, for display.
function shortAddr(addr) {
  return String(addr || '')
    .replace(/\/certhash\/[^/]+/g, '')
    .replace(/\/p2p\/[^/]+/g, '');
}

function peerIdOf(addr) {
  const m = /\/p2p\/([^/]+)/.exec(addr);
  return m ? m[1] : '';
}

function timeOf(ms) {
  try {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  } catch {
    return String(ms);
  }
}

// ---------------------------------------------------------------- status, errors, progress

const STATUS_CLASSES = ['pill-wait', 'pill-ok', 'pill-bad', 'pill-busy'];

function setStatus(text, kind = 'wait') {
  const node = $('status');
  node.textContent = text;
  node.classList.remove(...STATUS_CLASSES);
  node.classList.add(`pill-${kind}`);
}

function showError(title, text) {
  demo.error = `${title}: ${text}`;
  $('error-title').textContent = title;
  $('error-text').textContent = text;
  $('error').hidden = false;
}

// A fatal error: the banner, the status, a red progress bar, and peers that
// were never reached marked failed.
function fail(title, text, status) {
  showError(title, text);
  setStatus(status, 'bad');
  $('progress').classList.remove('busy');
  $('progress').classList.add('failed');
  setProgress(1, title);
  for (const r of rows.values()) {
    if (r.state === 'dialing') {
      r.state = 'failed';
      r.reason = status;
    }
  }
  renderPeers();
}

function clearError() {
  demo.error = null;
  $('error').hidden = true;
}

const STAGES = { connecting: 15, verifying: 55, following: 100 };
const STAGE_LABELS = {
  connecting: 'connecting to peers',
  verifying: 'verifying chain proof',
  following: 'following the chain',
};

function setProgress(fraction, label, count = '') {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  $('progress-bar').style.width = `${pct}%`;
  $('progress').setAttribute('aria-valuenow', String(pct));
  if (label !== undefined) $('progress-label').textContent = label;
  $('progress-count').textContent = count;
}

let stage = null;
function setStage(name) {
  stage = name;
  const order = Object.keys(STAGES);
  const at = order.indexOf(name);
  for (const li of $('stages').children) {
    const i = order.indexOf(li.dataset.stage);
    li.classList.toggle('done', i < at || (name === 'following' && i === at));
    li.classList.toggle('active', i === at && name !== 'following');
  }
  $('progress').classList.toggle('busy', name !== 'following');
  setProgress(STAGES[name] / 100, STAGE_LABELS[name]);
}

// ---------------------------------------------------------------- event log

function logEntry(type, text, cls = '') {
  const short = shortenHex(text);
  const li = el(
    'li',
    { class: `entry ${cls}`.trim(), 'data-type': type },
    el('span', { class: 'time', text: timeOf(Date.now()) }),
    el('span', { class: 'type', text: type }),
    el('span', { class: 'text', text: short, title: short !== text ? text : undefined }),
  );
  const log = $('log');
  log.prepend(li);
  while (log.children.length > LOG_LIMIT) log.lastElementChild.remove();
}

function note(text, cls = 'ev-note') {
  logEntry('demo', text, cls);
}

// ---------------------------------------------------------------- peers table

// peerId -> { peerId, name, state, transports: Set, address, reason }
const rows = new Map();
const names = new Map();

function row(peerId) {
  let r = rows.get(peerId);
  if (!r) {
    r = { peerId, name: names.get(peerId) || '', state: 'dialing', transports: new Set(), dialing: [], address: '', reason: '' };
    rows.set(peerId, r);
  }
  return r;
}

function transportOf(addr) {
  if (!addr) return '';
  if (addr.includes('/webrtc-direct')) return 'webrtc-direct';
  if (addr.includes('/ws')) return 'websocket';
  if (addr.includes('/tcp/')) return 'tcp';
  return 'other';
}

function renderPeers() {
  const body = $('peers-body');
  body.replaceChildren();
  const sorted = [...rows.values()].sort((x, y) => (x.name || `~${x.peerId}`).localeCompare(y.name || `~${y.peerId}`));
  for (const r of sorted) {
    body.append(
      el(
        'tr',
        { class: `peer state-${r.state}`, 'data-peer-id': r.peerId, title: r.address || r.peerId },
        el('td', {}, el('code', { text: shortId(r.peerId), title: r.peerId })),
        el('td', { text: r.name || '—' }),
        el('td', {}, el('span', { class: `badge badge-${r.state}`, text: r.state })),
        r.transports.size
          ? el('td', { text: [...r.transports].join(', ') })
          : el('td', { class: 'muted', text: r.state === 'dialing' && r.dialing.length ? r.dialing.join(', ') : '—' }),
      ),
    );
    // The reason (rejection, dial failure) on a row of its own, full width.
    if (r.reason) {
      body.append(
        el(
          'tr',
          { class: `reason-row state-${r.state}`, 'data-reason-for': r.peerId },
          el('td', { colspan: '4', class: 'reason', text: shortenHex(r.reason), title: r.reason }),
        ),
      );
    }
  }
  const connected = sorted.filter((r) => r.state === 'connected').length;
  const rejected = sorted.filter((r) => r.state === 'rejected').length;
  $('peer-summary').textContent = `${connected} connected${rejected ? `, ${rejected} rejected` : ''}`;
}

// The rejected peers, pinned above the event log so they do not scroll away.
function renderRejections() {
  const box = $('rejections');
  const latest = new Map();
  for (const r of demo.rejected) latest.set(r.peerId, r.reason);
  box.hidden = latest.size === 0;
  box.replaceChildren(
    ...[...latest].map(([peerId, reason]) =>
      el(
        'div',
        { class: 'rejection', 'data-peer-id': peerId, title: reason },
        el('strong', { text: `✖ ${label(peerId)} rejected` }),
        ` — ${shortenHex(reason) || 'no reason given'}`,
      ),
    ),
  );
}

function noteRejected(peerId, reason) {
  if (!demo.rejected.some((x) => x.peerId === peerId && x.reason === reason)) {
    demo.rejected.push({ peerId, reason });
    renderRejections();
  }
}

// Merges the client's own view (client.peers()) into the table. A peer that
// was caught sending bad data stays "rejected" here even while its
// connection stays open: that is what a person wants to see.
function mergePeers(list) {
  demo.peers = list;
  for (const p of list) {
    const r = row(p.peerId);
    if (p.state === 'connected') {
      if (!r.caught) r.state = 'connected';
    } else if (p.state === 'rejected') {
      r.caught = true;
      r.state = 'rejected';
      if (p.reason) noteRejected(p.peerId, p.reason);
    } else if (p.state === 'disconnected' && r.state !== 'rejected' && r.state !== 'failed') {
      r.state = 'disconnected';
    }
    // The transports of the open connections.
    r.transports = new Set(p.transports || []);
    if (p.address) r.address = p.address;
    if (p.reason) r.reason = p.reason;
    else if (!r.caught && r.state !== 'failed') r.reason = '';
  }
  renderPeers();
}

// ---------------------------------------------------------------- head

function renderHead() {
  const head = demo.head;
  if (!head) return;
  $('proof-note').hidden = false;
  $('proof-pending').hidden = true;
  $('head-height').textContent = String(head.height);
  $('head-hash').textContent = shortHash(head.hash);
  $('head-hash').title = head.hash;
  $('head-root').textContent = shortHash(head.stateRoot);
  $('head-root').title = head.stateRoot;
  $('head-time').textContent = head.timeMs ? timeOf(head.timeMs) : '—';
  renderAge();
}

function renderAge() {
  const head = demo.head;
  if (!head) return;
  const secs = Math.max(0, Math.floor((Date.now() - head.verifiedAtMs) / 1000));
  $('head-age').textContent = `${secs} s ago`;
  $('head-age').classList.toggle('stale', secs >= 10);
}

function onHead(head) {
  if (!head) return;
  if (demo.firstHeadMs === null) demo.firstHeadMs = performance.now();
  if (!demo.head || head.height >= demo.head.height) {
    const grew = demo.head && head.height > demo.head.height;
    demo.head = head;
    renderHead();
    if (grew) {
      const node = $('head-height');
      node.classList.remove('flash');
      void node.offsetWidth; // restart the animation
      node.classList.add('flash');
    }
  }
}

// ---------------------------------------------------------------- client events

function pushEvent(ev) {
  demo.events.push(ev);
  if (demo.events.length > EVENT_LIMIT) demo.events.splice(0, demo.events.length - EVENT_LIMIT);
}

function onEvent(ev) {
  try {
    handleEvent(ev);
  } catch (err) {
    console.error('tiernet demo: event handler failed', err, ev);
  }
}

function handleEvent(ev) {
  if (!ev || typeof ev !== 'object') return;
  pushEvent(ev);
  switch (ev.type) {
    case 'headVerified': {
      const h = ev.head || {};
      onHead(h);
      logEntry('headVerified', `height ${h.height} · hash ${(h.hash || '').slice(0, 10)} · root ${(h.stateRoot || '').slice(0, 10)}`, 'ev-head');
      break;
    }
    case 'peerConnected': {
      const r = row(ev.peerId);
      if (!r.caught) {
        r.state = 'connected';
        r.reason = '';
      }
      if (ev.transport) r.transports.add(ev.transport);
      if (ev.address) r.address = ev.address;
      if (stage === 'connecting') setStage('verifying');
      logEntry('peerConnected', `${label(ev.peerId)} over ${ev.transport || '?'} ${shortAddr(ev.address)}`.trim(), 'ev-connected');
      renderPeers();
      break;
    }
    case 'peerDisconnected': {
      const r = row(ev.peerId);
      if (r.state !== 'rejected') r.state = 'disconnected';
      r.transports = new Set();
      logEntry('peerDisconnected', label(ev.peerId), 'ev-disconnected');
      renderPeers();
      break;
    }
    case 'peerRejected': {
      const r = row(ev.peerId);
      r.state = 'rejected';
      r.caught = true;
      r.reason = ev.reason || '';
      noteRejected(ev.peerId, ev.reason || '');
      logEntry('peerRejected', `✖ ${label(ev.peerId)} sent data that failed verification: ${ev.reason || '(no reason)'}`, 'rejected ev-rejected');
      renderPeers();
      break;
    }
    case 'dialFailed': {
      if (ev.peerId) {
        const r = row(ev.peerId);
        if (r.state !== 'connected' && r.state !== 'rejected') {
          r.state = 'failed';
          r.reason = ev.reason || '';
        }
        renderPeers();
      }
      logEntry('dialFailed', `${ev.peerId ? label(ev.peerId) : 'a dial'}: ${ev.reason || ''}`, 'ev-failed');
      break;
    }
    case 'trustSaved': {
      // Every head is saved: shown in the header, not in the log.
      demo.savedHeight = ev.height;
      break;
    }
    case 'syncProgress': {
      onSyncProgress(ev);
      logEntry('syncProgress', `${ev.what} ${ev.done}/${ev.total}`, 'ev-sync');
      break;
    }
    default:
      logEntry(ev.type || 'event', JSON.stringify(ev));
  }
}

function label(peerId) {
  const name = names.get(peerId);
  return name ? `${name} (${shortId(peerId)})` : shortId(peerId);
}

let snapshotRunning = false;
function onSyncProgress(ev) {
  const total = Number(ev.total) || 0;
  const done = Number(ev.done) || 0;
  const fraction = total > 0 ? done / total : 0;
  const what = ev.what || 'sync';
  if (snapshotRunning) {
    setProgress(fraction, `snapshot: verifying ${what}`, `${done} / ${total}`);
  } else if (stage !== 'following') {
    $('progress-count').textContent = `${what} ${done} / ${total}`;
  }
}

// ---------------------------------------------------------------- devnet.json

function parseParams() {
  const q = new URLSearchParams(location.search);
  let transport = (q.get('transport') || 'all').toLowerCase();
  if (transport === 'ws') transport = 'websocket';
  if (transport === 'webrtc-direct') transport = 'webrtc';
  if (!['websocket', 'webrtc', 'all'].includes(transport)) transport = 'all';
  const forger = !['0', 'false', 'no', 'off'].includes((q.get('forger') || '1').toLowerCase());
  const logLevel = q.get('log') || undefined;
  const persist = !['0', 'false', 'no', 'off'].includes((q.get('persist') || '1').toLowerCase());
  return { transport, forger, logLevel, persist };
}

async function loadDevnet() {
  for (;;) {
    let res;
    try {
      res = await fetch('/devnet.json', { cache: 'no-store' });
    } catch (err) {
      showError('Cannot reach the demo server', `${errorText(err)}\nIs web-demo/serve.mjs (make demo) still running? Retrying every 2 s.`);
      setStatus('no server', 'bad');
      await sleep(2000);
      continue;
    }
    if (res.ok) {
      try {
        const json = await res.json();
        clearError();
        return json;
      } catch (err) {
        showError('devnet.json is not valid JSON', errorText(err));
        setStatus('bad devnet.json', 'bad');
        throw err;
      }
    }
    const text = (await res.text().catch(() => '')).trim();
    showError(
      res.status === 503 ? 'The devnet is not running yet' : `GET /devnet.json failed (${res.status})`,
      `${text || res.statusText}\nRetrying every 2 s.`,
    );
    setStatus('waiting for devnet', 'bad');
    await sleep(2000);
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function pickBootstrap(devnet, { transport, forger }) {
  const wantWs = transport === 'websocket' || transport === 'all';
  const wantRtc = transport === 'webrtc' || transport === 'all';
  const isWs = (a) => /\/(ws|wss)(\/|$)/.test(a) && !a.includes('/webrtc');
  const isRtc = (a) => a.includes('/webrtc-direct');
  const addrs = [];
  if (wantWs) addrs.push(...(devnet.websocket || []));
  if (wantRtc) addrs.push(...(devnet.webrtc_direct || []));
  if (forger && devnet.forger) {
    for (const a of devnet.forger.addrs || []) {
      if ((wantWs && isWs(a)) || (wantRtc && isRtc(a))) addrs.push(a);
    }
  }
  return [...new Set(addrs)];
}

// ---------------------------------------------------------------- lookup

let client = null;
let lookupSeq = 0;

function renderLookup(content, cls = '') {
  const node = $('lookup-result');
  node.className = `lookup-result ${cls}`.trim();
  node.replaceChildren(...(Array.isArray(content) ? content : [content]));
}

async function lookup(zsi) {
  zsi = (zsi || '').trim();
  $('lookup-input').value = zsi;
  if (!client) {
    renderLookup('The light client has not started yet.', 'error');
    return;
  }
  const seq = ++lookupSeq;
  renderLookup(`Looking up ${shortHash(zsi)} …`, 'muted');
  try {
    const info = await client.lookupIdentity(zsi);
    if (seq !== lookupSeq) return; // a newer lookup was started meanwhile
    if (info === undefined || info === null) {
      const h = safeHead();
      renderLookup(
        [
          el('div', { class: 'absent', text: 'not registered (proven absent)' }),
          el('div', {
            class: 'muted small',
            text: h ? `proven absent at height ${h.height} against state root ${shortHash(h.stateRoot)}` : '',
          }),
        ],
        'ok',
      );
    } else {
      const name = zsiNames.get(info.zsiId) || '';
      renderLookup(
        [
          el(
            'div',
            { class: 'tier-line' },
            el('span', { class: `tier tier-${info.tier}`, text: info.tier }),
            el('span', { class: 'muted', text: name }),
            el('code', { class: 'muted', text: shortHash(info.zsiId), title: info.zsiId }),
            info.slashed ? el('span', { class: 'badge badge-rejected', text: 'slashed' }) : null,
          ),
          el(
            'dl',
            { class: 'kv facts' },
            el('dt', { text: 'score' }),
            el('dd', { text: String(info.score) }),
            el('dt', { text: 'uptime' }),
            el('dd', { text: `${info.uptimeMinutes} min` }),
            el('dt', { text: 'participation' }),
            el('dd', { text: String(info.participation) }),
            el('dt', { text: 'slashed' }),
            el('dd', { text: info.slashed ? 'yes' : 'no' }),
          ),
          el('div', {
            class: 'proven',
            text: `✔ proven at height ${info.height} against state root ${shortHash(info.stateRoot)}`,
            title: info.stateRoot,
          }),
        ],
        'ok',
      );
    }
  } catch (err) {
    if (seq === lookupSeq) renderLookup(el('span', { text: `Error: ${errorText(err)}` }), 'error');
  }
}

function safeHead() {
  try {
    return client ? client.head() : demo.head;
  } catch {
    return demo.head;
  }
}

const zsiNames = new Map();

function setupLookup(devnet) {
  const validators = (devnet.nodes || []).filter((n) => n.zsi_id);
  for (const n of validators) zsiNames.set(n.zsi_id, n.name);
  if (validators[0]) $('lookup-input').value = validators[0].zsi_id;
  const list = $('zsi-list');
  list.replaceChildren(
    ...validators.map((n) =>
      el(
        'button',
        { type: 'button', class: 'zsi', title: n.zsi_id, onclick: () => lookup(n.zsi_id) },
        el('span', { class: 'zsi-name', text: n.name }),
        el('code', { text: shortHash(n.zsi_id) }),
      ),
    ),
    el('button', { type: 'button', class: 'zsi', title: 'an id nobody registered', onclick: () => lookup('0'.repeat(64)) }, el('span', { class: 'zsi-name', text: 'unregistered' }), el('code', { text: '000000…' })),
  );
  $('lookup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    lookup($('lookup-input').value);
  });
}

// ---------------------------------------------------------------- background work

function startTimers(validator0) {
  setInterval(() => {
    if (!client || !demo.started) return;
    try {
      mergePeers(client.peers() || []);
      const h = client.head();
      if (h) onHead(h);
    } catch (err) {
      console.warn('tiernet demo: peers()/head() failed', err);
    }
  }, 1000);

  // Rotating questions over the peers: this is how a forging peer is caught.
  let busy = false;
  setInterval(async () => {
    if (!client || !demo.started || busy || !validator0) return;
    busy = true;
    try {
      await client.lookupIdentity(validator0);
    } catch (err) {
      note(`background lookup of validator-0: ${errorText(err)}`, 'ev-note ev-warn');
    } finally {
      busy = false;
    }
  }, LOOKUP_EVERY_MS);
}

function setupSnapshot() {
  const button = $('snapshot-button');
  button.addEventListener('click', async () => {
    if (!client || snapshotRunning) return;
    snapshotRunning = true;
    button.disabled = true;
    $('snapshot-result').textContent = '';
    $('progress').classList.add('busy');
    setProgress(0, 'snapshot: requesting manifest');
    note('downloading a snapshot; every chunk is checked against the verified state root');
    try {
      const r = await client.syncSnapshot();
      setProgress(1, 'snapshot verified', `${r.chunks} chunks`);
      const text = `✔ snapshot at height ${r.height}: ${r.chunks} chunks, ${r.entries} entries, all verified`;
      $('snapshot-result').textContent = text;
      $('snapshot-result').className = 'ok';
      note(text, 'ev-note ev-ok');
    } catch (err) {
      const text = `snapshot failed: ${errorText(err)}`;
      $('snapshot-result').textContent = text;
      $('snapshot-result').className = 'error';
      note(text, 'ev-note ev-warn');
      setProgress(1, 'following the chain');
    } finally {
      snapshotRunning = false;
      button.disabled = false;
      $('progress').classList.remove('busy');
      setTimeout(() => {
        if (!snapshotRunning) setStage('following');
      }, 4000);
    }
  });
}

// ---------------------------------------------------------------- main

async function main() {
  $('retry').addEventListener('click', () => location.reload());
  setInterval(renderAge, 1000);
  const params = parseParams();
  $('transport-label').textContent =
    `transport: ${params.transport === 'all' ? 'websocket + webrtc-direct' : params.transport === 'webrtc' ? 'webrtc-direct' : 'websocket'}` +
    (params.forger ? ' · forger included' : ' · honest peers only');
  setStatus('loading devnet.json', 'wait');
  setProgress(0.02, 'loading devnet.json');

  const devnet = await loadDevnet();
  for (const n of devnet.nodes || []) names.set(n.peer_id, n.name);
  if (devnet.forger && devnet.forger.peer_id) names.set(devnet.forger.peer_id, devnet.forger.name || 'forger');
  setupLookup(devnet);
  setupSnapshot();

  const bootstrap = pickBootstrap(devnet, params);
  // Before any event the transports column says what we are dialing.
  for (const a of bootstrap) {
    const id = peerIdOf(a);
    if (!id) continue;
    const r = row(id);
    const t = transportOf(a);
    if (!r.dialing.includes(t)) r.dialing.push(t);
  }
  renderPeers();
  if (!bootstrap.length) {
    fail('No bootstrap addresses', `devnet.json has no ${params.transport} addresses for this page to dial.`, 'no peers');
    return;
  }
  let genesis = devnet.genesis;
  if (typeof genesis !== 'string') {
    if (genesis && typeof genesis === 'object') {
      genesis = JSON.stringify(genesis);
    } else {
      // An older devnet.json without the genesis: the server also serves the
      // devnet's genesis.json.
      const res = await fetch('/genesis.json', { cache: 'no-store' }).catch(() => null);
      if (!res || !res.ok) {
        fail(
          'devnet.json has no genesis',
          'Its "genesis" field is missing and /genesis.json is not there either: restart the devnet with a current tiernet-node (make demo).',
          'bad devnet.json',
        );
        return;
      }
      genesis = await res.text();
    }
  }

  setStatus('loading wasm', 'busy');
  setProgress(0.05, 'loading the wasm light client');
  let pkg;
  try {
    // The package's main module: events as an EventTarget, trust kept in IndexedDB.
    pkg = await import('/pkg/index.js');
    await pkg.load();
  } catch (err) {
    fail(
      'Cannot load the light client (wasm)',
      `${errorText(err)}\n/pkg/index.js, /pkg/tiernet_wasm.js and /pkg/tiernet_wasm_bg.wasm come from bindings-wasm/pkg: build them with scripts/wasm-pkg (make demo does).`,
      'wasm not loaded',
    );
    return;
  }
  try {
    $('version').textContent = `@tiernet/light-client ${pkg.version ? pkg.version() : ''}`;
  } catch {
    /* version is cosmetic */
  }

  try {
    client = await pkg.createLightClient({
      networkId: devnet.network_id,
      bootstrap,
      genesis,
      persist: params.persist,
      ...(params.logLevel ? { logLevel: params.logLevel } : {}),
    });
  } catch (err) {
    fail('The light client rejected its configuration', errorText(err), 'bad configuration');
    return;
  }
  client.addEventListener('event', (e) => onEvent(e.detail));
  window.tiernetClient = client; // for poking at it from the console
  note(`dialing ${bootstrap.length} address${bootstrap.length === 1 ? '' : 'es'} (${params.transport})`);
  setStage('connecting');
  setStatus('connecting', 'busy');

  let head;
  try {
    head = await client.start();
  } catch (err) {
    note(`start failed: ${errorText(err)}`, 'ev-note ev-warn');
    try {
      mergePeers(client.peers() || []);
    } catch {
      /* nothing more to show */
    }
    fail('The light client could not start', errorText(err), 'start failed');
    return;
  }
  onHead(head);
  demo.resumedFrom = client.resumedFrom() ?? null;
  demo.started = true;
  setStage('following');
  setStatus('verified · following', 'ok');
  $('snapshot-button').disabled = false;
  if (demo.resumedFrom !== null) {
    note(`warm start: trust saved at height ${demo.resumedFrom} (IndexedDB), chain proof from there to ${head.height}`, 'ev-note ev-ok');
  } else {
    note(`chain proof verified up to height ${head.height}`, 'ev-note ev-ok');
  }
  try {
    mergePeers(client.peers() || []);
  } catch {
    /* the timer tries again */
  }
  const validator0 = (devnet.nodes || []).find((n) => n.zsi_id)?.zsi_id;
  startTimers(validator0);
}

main().catch((err) => {
  console.error(err);
  fail('The demo failed', errorText(err), 'failed');
});
