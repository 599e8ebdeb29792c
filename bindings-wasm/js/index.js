// @tiernet/light-client: the JavaScript face of the wasm light client.
//
// A thin shell over the wasm-bindgen module (`./raw`): events as an
// EventTarget and as an async iterator, an AbortSignal on every long call,
// and one error class per kind of failure. No verification happens here;
// every value comes verified from the wasm.

import init, { LightClient as RawLightClient, identityStateKey, version } from './tiernet_wasm.js';

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

/**
 * Loads the wasm once per page (or worker). `createLightClient` calls it;
 * call it yourself to choose where the .wasm comes from.
 */
export function load(wasm) {
  if (!ready) ready = init(wasm === undefined ? undefined : { module_or_path: wasm });
  return ready;
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

  /** Use `createLightClient(options)`; this takes a built raw client. */
  constructor(raw) {
    super();
    if (!(raw instanceof RawLightClient)) {
      throw new BadInputError('use createLightClient(options) to build a client', 'BadInput');
    }
    this.#raw = raw;
    raw.onEvent((event) => this.#dispatch(event));
  }

  #dispatch(event) {
    this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
    this.dispatchEvent(new CustomEvent('event', { detail: event }));
    for (const iterator of this.#iterators) iterator.push(event);
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
    const queue = [];
    let wake = null;
    let ended = this.#stopped;
    const iterators = this.#iterators;
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

  /** Stops the client: connections close, iterators end; the head stays readable. */
  stop() {
    this.#stopped = true;
    this.#raw.stop();
    for (const iterator of [...this.#iterators]) iterator.end();
  }
}

/**
 * Loads the wasm (once) and builds a client: `options` as for the raw
 * client (`networkId`, `bootstrap`, `genesis`, `checkpoint`, `logLevel`).
 */
export async function createLightClient(options) {
  await load(options && options.wasm);
  const { wasm: _wasm, ...rest } = options || {};
  let raw;
  try {
    raw = new RawLightClient(rest);
  } catch (error) {
    throw typed(error);
  }
  return new TiernetLightClient(raw);
}
