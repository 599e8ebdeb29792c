// @tiernet/light-client in a Web Worker: the wasm light client runs here,
// off the page's main thread; `createLightClient({ worker: true })` talks to
// it through messages (see `WorkerLightClient` in index.js).
//
// Protocol (every message is a plain object):
//   page → worker  { type: 'create', options, rtcPort }        build the client
//                  { type: 'call', id, method, args }           a long call
//                  { type: 'abort', id }                        abort call `id`
//   worker → page  { type: 'created', state } | { type: 'failed', error }
//                  { type: 'event', event, state }              every event, with the state after it
//                  { type: 'chunk', id, chunk }                 syncSnapshot's onChunk
//                  { type: 'result', id, value, state } | { type: 'error', id, error }
// `state` = { head, status, peers, checkpoint, resumedFrom, trustKey }: what
// the page's synchronous getters return.
//
// WebSocket works in workers. Chromium's and Safari's workers have no
// RTCPeerConnection: there WebRTC goes through the page, which sends
// `rtcPort` (a MessagePort to `servePageRtc`, see rtc-bridge.js). With
// neither, WebRTC-direct bootstrap addresses are left out (with a warning).

import { createLightClient } from './index.js';
import { installWorkerRtc } from './rtc-bridge.js';

/** The calls the page may make, and nothing else. */
const CALLS = new Set(['start', 'waitForHeight', 'syncToLatest', 'getState', 'lookupIdentity', 'syncSnapshot', 'stop']);
/** Calls in flight, by id: their AbortControllers. */
const inFlight = new Map();
/** Most calls in flight at once (every one holds a promise and a controller). */
const MAX_IN_FLIGHT = 256;

let client = null;
/** The checkpoint after the latest head (exported once per head, not per event). */
let checkpoint;

function errorOf(e) {
  return {
    name: e && e.name ? String(e.name) : 'Error',
    kind: e && typeof e.kind === 'string' ? e.kind : undefined,
    message: e && e.message ? String(e.message) : String(e),
  };
}

function refreshCheckpoint() {
  try {
    checkpoint = client.exportCheckpoint();
  } catch {
    checkpoint = undefined; // nothing past the genesis yet
  }
}

function state() {
  if (!client) return null;
  return {
    head: client.head(),
    status: client.status(),
    peers: client.peers(),
    checkpoint,
    resumedFrom: client.resumedFrom(),
    trustKey: client.trustKey,
  };
}

function withoutWebRtc(options) {
  if (typeof RTCPeerConnection !== 'undefined') return options;
  const bootstrap = (options.bootstrap || []).filter((a) => !String(a).includes('/webrtc-direct'));
  if (bootstrap.length < (options.bootstrap || []).length) {
    console.warn('tiernet worker: this worker has no RTCPeerConnection; WebRTC-direct addresses are left out');
  }
  return { ...options, bootstrap };
}

async function create(options) {
  if (client) throw Object.assign(new Error('the worker already has a client'), { kind: 'BadInput' });
  client = await createLightClient(withoutWebRtc(options));
  refreshCheckpoint();
  client.addEventListener('event', (e) => {
    if (e.detail.type === 'headVerified') refreshCheckpoint();
    postMessage({ type: 'event', event: e.detail, state: state() });
  });
}

async function call({ id, method, args }) {
  if (!client) throw Object.assign(new Error('create the client first'), { kind: 'NotStarted' });
  if (!CALLS.has(method)) throw Object.assign(new Error(`no such call: ${method}`), { kind: 'BadInput' });
  if (inFlight.size >= MAX_IN_FLIGHT) throw Object.assign(new Error('too many calls in flight'), { kind: 'BadInput' });
  const controller = new AbortController();
  inFlight.set(id, controller);
  try {
    const [first, options = {}] = args || [];
    const signal = controller.signal;
    switch (method) {
      case 'start':
      case 'syncToLatest':
        return await client[method]({ signal });
      case 'waitForHeight':
      case 'getState':
      case 'lookupIdentity':
        return await client[method](first, { signal });
      case 'syncSnapshot':
        return await client.syncSnapshot({
          signal,
          onChunk: options.onChunk ? (chunk) => postMessage({ type: 'chunk', id, chunk }) : undefined,
        });
      case 'stop':
        return client.stop();
      default:
        throw new Error(`no such call: ${method}`);
    }
  } finally {
    inFlight.delete(id);
  }
}

self.onmessage = async ({ data }) => {
  if (!data || typeof data !== 'object') return;
  switch (data.type) {
    case 'create':
      try {
        if (data.rtcPort instanceof MessagePort) installWorkerRtc(data.rtcPort);
        await create(data.options);
        postMessage({ type: 'created', state: state() });
      } catch (e) {
        postMessage({ type: 'failed', error: errorOf(e) });
      }
      break;
    case 'call':
      try {
        const value = await call(data);
        postMessage({ type: 'result', id: data.id, value, state: state() });
      } catch (e) {
        postMessage({ type: 'error', id: data.id, error: errorOf(e) });
      }
      break;
    case 'abort':
      inFlight.get(data.id)?.abort(new DOMException('The call was aborted', 'AbortError'));
      break;
    default:
      break;
  }
};
