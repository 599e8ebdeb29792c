// @tiernet/light-client: the JavaScript face of the wasm light client.
//
// A thin shell over the wasm-bindgen module (`./raw`): events as an
// EventTarget and as an async iterator, an AbortSignal on every long call,
// and one error class per kind of failure. No verification happens here;
// every value comes verified from the wasm.

import init, { LightClient as RawLightClient, identityStateKey, version } from './tiernet_wasm.js';
import { servePageRtc } from './rtc-bridge.js';

export { identityStateKey, version };

/** Every failure of the client: `kind` says which (see the subclasses). */
export class TiernetError extends Error {
  constructor(message, kind, options) {
    super(message, options);
    this.name = 'TiernetError';
    this.kind = kind;
  }
}

/** A peer answered with something that does not verify. */
export class InvalidError extends TiernetError {}
/** Valid data, but not enough trust (voting power, agreeing peers) to accept it. */
export class NotEnoughTrustError extends TiernetError {}
/** No usable peer is connected. */
export class NoPeersError extends TiernetError {}
/** A request failed on the way (timeout, closed connection). */
export class NetworkError extends TiernetError {}
/** A bad argument: an address, a checkpoint, an identity id, an option. */
export class BadInputError extends TiernetError {}
/** The call needs `start()` first. */
export class NotStartedError extends TiernetError {}

const CLASSES = {
  Invalid: InvalidError,
  NotEnoughTrust: NotEnoughTrustError,
  NoPeers: NoPeersError,
  Network: NetworkError,
  BadInput: BadInputError,
  BadAddress: BadInputError,
  BadCheckpoint: BadInputError,
  NotStarted: NotStartedError,
};

/** The error the wasm threw, as an instance of its class (the kind kept). */
function typed(error) {
  if (error instanceof TiernetError) return error;
  const kind = error && typeof error.kind === 'string' ? error.kind : 'Network';
  const Class = CLASSES[kind] || TiernetError;
  const message = error && error.message ? error.message : String(error);
  return new Class(message, kind, { cause: error });
}

/** `promise`, or a rejection with `signal.reason` once `signal` aborts. */
function abortable(promise, signal) {
  const typedPromise = promise.catch((e) => {
    throw typed(e);
  });
  if (!signal) return typedPromise;
  if (signal.aborted) {
    // The wasm call runs on; its result is dropped.
    typedPromise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    typedPromise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Most events an `events()` iterator holds for a slow reader; beyond it the oldest go. */
export const EVENT_QUEUE_LIMIT = 1024;

let ready = null;

// ---------------------------------------------------------------- persisted trust (IndexedDB)

const DB_NAME = 'tiernet-light';
const DB_STORE = 'trust';

/** The IndexedDB database of saved trust, or null where there is none (Node, some private modes). */
function openTrustDb() {
  if (typeof indexedDB === 'undefined') return Promise.resolve(null);
  return new Promise((resolve) => {
    let request;
    try {
      request = indexedDB.open(DB_NAME, 1);
    } catch {
      resolve(null);
      return;
    }
    request.onupgradeneeded = () => request.result.createObjectStore(DB_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
    request.onblocked = () => resolve(null);
  });
}

/** Runs one request on the trust store; resolves to its result (undefined on any failure). */
async function withTrustStore(mode, makeRequest) {
  const db = await openTrustDb();
  if (!db) return undefined;
  try {
    return await new Promise((resolve) => {
      const tx = db.transaction(DB_STORE, mode);
      const request = makeRequest(tx.objectStore(DB_STORE));
      let result;
      request.onsuccess = () => {
        result = request.result;
      };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => resolve(undefined);
      tx.onabort = () => resolve(undefined);
    });
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/**
 * The IndexedDB key trust is kept under: the network id and a hash of the
 * genesis text, so a new chain with the same id (a devnet reset) never
 * resumes from the old one's trust. Not a security measure: whatever is
 * loaded is checked again by the wasm (checksum, network, trusting period).
 */
export function trustKey(networkId, genesis) {
  // cyrb53: a fast 53-bit string hash.
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  const text = String(genesis);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hash = (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  return `${networkId}/${hash}`;
}

/** The saved trust (hex) under `key`, or undefined. */
export async function loadSavedTrust(key) {
  const value = await withTrustStore('readonly', (store) => store.get(key));
  // Hex of at most 1 MiB (the wasm's limit): anything else is not ours.
  return typeof value === 'string' && value.length <= 2 * 1024 * 1024 ? value : undefined;
}

/** Forgets the trust saved under `key` (the next start is from the checkpoint or genesis). */
export async function clearSavedTrust(key) {
  await withTrustStore('readwrite', (store) => store.delete(key));
}

async function storeTrust(key, hex) {
  return (await withTrustStore('readwrite', (store) => store.put(hex, key))) !== undefined;
}

/**
 * Loads the wasm once per page (or worker). `createLightClient` calls it;
 * call it yourself to choose where the .wasm comes from.
 */
export function load(wasm) {
  if (!ready) ready = init(wasm === undefined ? undefined : { module_or_path: wasm });
  return ready;
}

/** An async iterator over events pushed into `iterators` (see `events()`). */
function eventIterator(iterators, stopped, signal) {
  const queue = [];
  let wake = null;
  let ended = stopped;
  const end = () => {
    ended = true;
    iterators.delete(entry);
    if (wake) wake();
  };
  const entry = {
    push(event) {
      if (queue.length >= EVENT_QUEUE_LIMIT) queue.shift();
      queue.push(event);
      if (wake) wake();
    },
    end,
  };
  if (!ended) iterators.add(entry);
  signal?.addEventListener('abort', end, { once: true });
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      for (;;) {
        if (queue.length) return { value: queue.shift(), done: false };
        if (ended) return { value: undefined, done: true };
        await new Promise((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    },
    async return() {
      end();
      return { value: undefined, done: true };
    },
  };
}

/**
 * The light client. Events are dispatched as `CustomEvent`s whose `type`
 * is the event's type (`headVerified`, `peerConnected`, `peerRejected`,
 * `syncProgress`, `status`, `conflict`, `stalled`, ...) and whose `detail`
 * is the event; `events()` yields the same events in order.
 */
export class TiernetLightClient extends EventTarget {
  #raw;
  #iterators = new Set();
  #stopped = false;
  #trustKey = null;
  #saving = false;
  #savedHeight = 0;

  /**
   * Use `createLightClient(options)`; this takes a built raw client and,
   * with `persist`, the IndexedDB key its trust is saved under.
   */
  constructor(raw, { trustKey: key = null } = {}) {
    super();
    if (!(raw instanceof RawLightClient)) {
      throw new BadInputError('use createLightClient(options) to build a client', 'BadInput');
    }
    this.#raw = raw;
    this.#trustKey = key;
    raw.onEvent((event) => this.#dispatch(event));
  }

  #dispatch(event) {
    this.#emit(event);
    if (event.type === 'headVerified' && this.#trustKey) this.#saveTrust();
  }

  #emit(event) {
    this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
    this.dispatchEvent(new CustomEvent('event', { detail: event }));
    for (const iterator of this.#iterators) iterator.push(event);
  }

  /**
   * Saves the trusted state after a verified head: one write at a time,
   * the latest head when it finishes (a burst of heads costs two writes).
   */
  async #saveTrust() {
    if (this.#saving) return;
    this.#saving = true;
    try {
      while (!this.#stopped) {
        const height = this.#raw.head().height;
        if (height <= this.#savedHeight) break;
        let hex;
        try {
          hex = this.#raw.exportCheckpoint();
        } catch {
          break; // nothing past the genesis yet
        }
        if (!(await storeTrust(this.#trustKey, hex))) break;
        this.#savedHeight = height;
        this.#emit({ type: 'trustSaved', height, key: this.#trustKey });
      }
    } finally {
      this.#saving = false;
    }
  }

  /**
   * The height of the saved trust this client started from (a warm start:
   * no chain proof from the genesis), or undefined.
   */
  resumedFrom() {
    return this.#raw.resumedFrom();
  }

  /** The IndexedDB key this client saves its trust under, or null (`persist: false`). */
  get trustKey() {
    return this.#trustKey;
  }

  /** Connects and verifies a chain proof to the latest head. */
  start({ signal } = {}) {
    return abortable(this.#raw.start(), signal);
  }

  /** The latest verified head (height 0 before the first). */
  head() {
    return this.#raw.head();
  }

  /** `{ status, ageMs }`: whether the head can be vouched for now. */
  status() {
    return this.#raw.status();
  }

  /** Resolves once the verified head reaches `height`. */
  waitForHeight(height, { signal } = {}) {
    return abortable(this.#raw.waitForHeight(height), signal);
  }

  /** Asks a peer for a chain proof to its latest head. */
  syncToLatest({ signal } = {}) {
    return abortable(this.#raw.syncToLatest(), signal);
  }

  /** `{ value, head }`: the value of `key` (undefined: proven absent) and the head it was proven at. */
  getState(key, { signal } = {}) {
    return abortable(this.#raw.getState(key), signal);
  }

  /** A ZSI identity's record and tier, proven; undefined: proven not registered. */
  lookupIdentity(zsiIdHex, { signal } = {}) {
    return abortable(
      Promise.resolve().then(() => this.#raw.lookupIdentity(zsiIdHex)),
      signal,
    );
  }

  /**
   * Downloads the latest snapshot, every chunk verified; resolves to
   * `{ height, chunks, entries }`. `onChunk({ index, entries, done, total })`
   * receives each chunk's verified entries (`{ key, value }` byte arrays)
   * as soon as the chunk verifies: the stream, with its progress.
   */
  syncSnapshot({ signal, onChunk } = {}) {
    return abortable(this.#raw.syncSnapshot(onChunk), signal);
  }

  /** Every peer met: `{ peerId, state, transports, address, reason }`. */
  peers() {
    return this.#raw.peers();
  }

  /** The trusted state as hex, for `options.checkpoint` next time. */
  exportCheckpoint() {
    try {
      return this.#raw.exportCheckpoint();
    } catch (error) {
      throw typed(error);
    }
  }

  /**
   * The client's events as an async iterator, from now on. Ends when the
   * client stops or `signal` aborts. A reader that falls more than
   * `EVENT_QUEUE_LIMIT` events behind loses the oldest.
   */
  events({ signal } = {}) {
    return eventIterator(this.#iterators, this.#stopped, signal);
  }

  /** Stops the client: connections close, iterators end; the head stays readable. */
  stop() {
    this.#stopped = true;
    this.#raw.stop();
    for (const iterator of [...this.#iterators]) iterator.end();
  }
}

/**
 * The light client running in a Web Worker (`createLightClient({ worker:
 * true })`): the same API, the wasm off the page's main thread. Long calls
 * are messages to the worker; `head()`, `status()`, `peers()`,
 * `exportCheckpoint()` and `resumedFrom()` answer from the state the worker
 * sent with its latest event or result. WebRTC-direct needs
 * `RTCPeerConnection`, which Chromium's and Safari's workers lack: there the
 * page carries out the worker's WebRTC calls (`rtc-bridge.js`) and closes
 * what it holds when the client stops.
 */
export class WorkerLightClient extends EventTarget {
  #worker;
  #rtc;
  #state;
  #calls = new Map();
  #nextId = 1;
  #iterators = new Set();
  #stopped = false;

  /** Use `createLightClient({ worker: true, ... })`. */
  constructor(worker, state, rtc = null) {
    super();
    this.#worker = worker;
    this.#rtc = rtc;
    this.#state = state;
    worker.onmessage = ({ data }) => this.#receive(data);
    worker.onerror = (e) => {
      for (const call of this.#calls.values()) call.reject(new NetworkError(`the worker failed: ${e.message}`, 'Network'));
      this.#calls.clear();
    };
  }

  /**
   * What the page holds for the worker's WebRTC (`{ connections, channels,
   * certificates }`), or null where the worker dials WebRTC itself or
   * nobody does.
   */
  rtcBridgeCounts() {
    return this.#rtc ? this.#rtc.counts() : null;
  }

  #receive(data) {
    if (!data || typeof data !== 'object') return;
    if (data.state) this.#state = data.state;
    const call = this.#calls.get(data.id);
    switch (data.type) {
      case 'event':
        this.dispatchEvent(new CustomEvent(data.event.type, { detail: data.event }));
        this.dispatchEvent(new CustomEvent('event', { detail: data.event }));
        for (const iterator of this.#iterators) iterator.push(data.event);
        break;
      case 'chunk':
        call?.onChunk?.(data.chunk);
        break;
      case 'result':
        this.#calls.delete(data.id);
        call?.resolve(data.value);
        break;
      case 'error':
        this.#calls.delete(data.id);
        call?.reject(typed(data.error));
        break;
      default:
        break;
    }
  }

  #call(method, args, signal, onChunk) {
    if (this.#stopped) return Promise.reject(new NotStartedError('the client stopped (its worker ended)', 'NotStarted'));
    const id = this.#nextId++;
    const promise = new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject, onChunk });
    });
    this.#worker.postMessage({ type: 'call', id, method, args });
    signal?.addEventListener('abort', () => this.#worker.postMessage({ type: 'abort', id }), { once: true });
    return abortable(promise, signal);
  }

  /** Connects and verifies a chain proof to the latest head. */
  start({ signal } = {}) {
    return this.#call('start', [], signal);
  }

  /** The latest verified head (as of the worker's last message). */
  head() {
    return this.#state.head;
  }

  /** `{ status, ageMs }` (as of the worker's last message). */
  status() {
    return this.#state.status;
  }

  /** Resolves once the verified head reaches `height`. */
  waitForHeight(height, { signal } = {}) {
    return this.#call('waitForHeight', [height], signal);
  }

  /** Asks a peer for a chain proof to its latest head. */
  syncToLatest({ signal } = {}) {
    return this.#call('syncToLatest', [], signal);
  }

  /** `{ value, head }`: the value of `key` (undefined: proven absent) and the head it was proven at. */
  getState(key, { signal } = {}) {
    return this.#call('getState', [key], signal);
  }

  /** A ZSI identity's record and tier, proven; undefined: proven not registered. */
  lookupIdentity(zsiIdHex, { signal } = {}) {
    return this.#call('lookupIdentity', [zsiIdHex], signal);
  }

  /** As `TiernetLightClient.syncSnapshot`; `onChunk` runs on the page. */
  syncSnapshot({ signal, onChunk } = {}) {
    return this.#call('syncSnapshot', [null, { onChunk: !!onChunk }], signal, onChunk);
  }

  /** Every peer met (as of the worker's last message). */
  peers() {
    return this.#state.peers;
  }

  /** The trusted state as hex (after the latest head the worker reported). */
  exportCheckpoint() {
    if (!this.#state.checkpoint) throw new NotStartedError('nothing past the genesis is verified yet', 'NotStarted');
    return this.#state.checkpoint;
  }

  /** The height of the saved trust the client started from, or undefined. */
  resumedFrom() {
    return this.#state.resumedFrom;
  }

  /** The IndexedDB key (the worker's) trust is saved under, or null. */
  get trustKey() {
    return this.#state.trustKey;
  }

  /** As `TiernetLightClient.events`. */
  events({ signal } = {}) {
    return eventIterator(this.#iterators, this.#stopped, signal);
  }

  /** Stops the client and ends the worker; iterators end. */
  stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#worker.postMessage({ type: 'call', id: this.#nextId++, method: 'stop', args: [] });
    // Give the stop a moment to close the connections, then end the worker
    // and close what the page still holds for it.
    setTimeout(() => {
      this.#worker.terminate();
      this.#rtc?.close();
    }, 500);
    for (const call of this.#calls.values()) call.reject(new NotStartedError('the client stopped', 'NotStarted'));
    this.#calls.clear();
    for (const iterator of [...this.#iterators]) iterator.end();
  }
}

/** Starts the worker and builds the client in it. */
function createInWorker(options, worker) {
  // URLs do not cross to a worker; their text does.
  if (options.wasm instanceof URL) options = { ...options, wasm: options.wasm.href };
  const url = worker === true ? new URL('./worker.js', import.meta.url) : worker;
  let handle;
  try {
    handle = new Worker(url, { type: 'module', name: 'tiernet-light-client' });
  } catch (error) {
    return Promise.reject(new BadInputError(`cannot start the worker (${url}): ${error.message}`, 'BadInput', { cause: error }));
  }
  // The page offers its RTCPeerConnection to a worker that has none.
  let rtc = null;
  let rtcPort = null;
  if (typeof RTCPeerConnection !== 'undefined' && typeof MessageChannel !== 'undefined') {
    const channel = new MessageChannel();
    rtc = servePageRtc(channel.port1);
    rtcPort = channel.port2;
  }
  const fail = (error) => {
    handle.terminate();
    rtc?.close();
    return error;
  };
  return new Promise((resolve, reject) => {
    handle.onmessage = ({ data }) => {
      if (data?.type === 'created') resolve(new WorkerLightClient(handle, data.state, rtc));
      else if (data?.type === 'failed') reject(fail(typed(data.error)));
    };
    handle.onerror = (e) => {
      reject(fail(new NetworkError(`the worker failed to load: ${e.message || 'unknown error'}`, 'Network')));
    };
    handle.postMessage({ type: 'create', options, rtcPort }, rtcPort ? [rtcPort] : []);
  });
}

/**
 * Loads the wasm (once) and builds a client: `options` as for the raw
 * client (`networkId`, `bootstrap`, `genesis`, `checkpoint`, `minPeers`,
 * `logLevel`), plus `persist` (default true): keep the trusted state in
 * IndexedDB after each verified head (event `trustSaved`) and start from
 * it next time when it is within the trusting period — a warm start, no
 * chain proof from the genesis. `persist: { key }` chooses the key
 * (default `trustKey(networkId, genesis)`); `persist: false` keeps nothing.
 * `worker: true` (or the URL of `worker.js`) runs the client in a Web
 * Worker and returns a `WorkerLightClient` with the same API.
 */
export async function createLightClient(options) {
  const { worker, ...inPage } = options || {};
  if (worker) return createInWorker(inPage, worker);
  await load(inPage.wasm);
  const { wasm: _wasm, persist = true, ...rest } = inPage;
  let key = null;
  if (persist) {
    key = typeof persist === 'object' && persist.key ? String(persist.key) : trustKey(rest.networkId, rest.genesis);
    if (rest.savedTrust === undefined) {
      const saved = await loadSavedTrust(key);
      if (saved !== undefined) rest.savedTrust = saved;
    }
  }
  let raw;
  try {
    raw = new RawLightClient(rest);
  } catch (error) {
    throw typed(error);
  }
  return new TiernetLightClient(raw, { trustKey: key });
}
