// Types of @tiernet/light-client's main module (index.js). The raw
// wasm-bindgen module and its types are `@tiernet/light-client/raw`.
import type {
  ClientEvent,
  Head,
  IdentityInfo,
  LightClientOptions,
  PeerInfo,
  ProvenState,
  SnapshotInfo,
  VerifiedChunk,
} from './tiernet_wasm.js';

export type { ClientEvent, Head, IdentityInfo, LightClientOptions, PeerInfo, ProvenState, SnapshotInfo, VerifiedChunk };
export { identityStateKey, version } from './tiernet_wasm.js';

/** The kinds of failure; each has its class below. */
export type ErrorKind =
  | 'Invalid'
  | 'NotEnoughTrust'
  | 'NoPeers'
  | 'Network'
  | 'BadInput'
  | 'BadAddress'
  | 'BadCheckpoint'
  | 'NotStarted';

/** Every failure of the client. */
export class TiernetError extends Error {
  readonly kind: ErrorKind;
}
/** A peer answered with something that does not verify. */
export class InvalidError extends TiernetError {}
/** Valid data, but not enough trust to accept it. */
export class NotEnoughTrustError extends TiernetError {}
/** No usable peer is connected. */
export class NoPeersError extends TiernetError {}
/** A request failed on the way. */
export class NetworkError extends TiernetError {}
/** A bad argument (address, checkpoint, identity id, option). */
export class BadInputError extends TiernetError {}
/** The call needs `start()` first. */
export class NotStartedError extends TiernetError {}

/** Most events an `events()` iterator holds for a slow reader. */
export const EVENT_QUEUE_LIMIT: number;

/** Options of a long call. */
export interface CallOptions {
  /** Aborting rejects the call with `signal.reason` (the wasm work it started is dropped). */
  signal?: AbortSignal;
}

/** Loads the wasm once (from next to the module unless given). */
export function load(wasm?: URL | string | Response | BufferSource | WebAssembly.Module): Promise<unknown>;

/** `trustSaved`: the trusted state was written to IndexedDB (the package's own event). */
export type TrustSavedEvent = { type: 'trustSaved'; height: number; key: string };
/** Every event a `TiernetLightClient` dispatches. */
export type LightClientEvent = ClientEvent | TrustSavedEvent;

/** Options of `createLightClient`. */
export interface CreateOptions extends LightClientOptions {
  /** Where the .wasm comes from (default: next to the module). */
  wasm?: URL | string | Response | BufferSource | WebAssembly.Module;
  /**
   * Keep the trusted state in IndexedDB after each verified head and start
   * from it next time within the trusting period (default true; `{ key }`
   * chooses the IndexedDB key, default `trustKey(networkId, genesis)`).
   */
  persist?: boolean | { key?: string };
  /**
   * Run the client in a Web Worker (`true`: the package's `worker.js`, or
   * its URL): `createLightClient` then returns a `WorkerLightClient`.
   * Where the worker has no `RTCPeerConnection` (Chromium, Safari) the
   * page carries out its WebRTC calls (`rtc-bridge.js`).
   */
  worker?: boolean | URL | string;
}

/** Loads the wasm (once) and builds a client (a warm start from IndexedDB when `persist`; in a worker with `worker`). */
export function createLightClient(options: CreateOptions & { worker: true | URL | string }): Promise<WorkerLightClient>;
export function createLightClient(options: CreateOptions): Promise<TiernetLightClient>;

/** The IndexedDB key of a network's saved trust: its id and a hash of its genesis text. */
export function trustKey(networkId: string, genesis: string): string;
/** The saved trust (hex) under `key`, or undefined. */
export function loadSavedTrust(key: string): Promise<string | undefined>;
/** Forgets the trust saved under `key`. */
export function clearSavedTrust(key: string): Promise<void>;

/** What both clients offer (in the page and in a worker). */
export interface LightClientApi extends EventTarget {
  start(options?: CallOptions): Promise<Head>;
  head(): Head;
  status(): { status: string; ageMs: number };
  waitForHeight(height: number, options?: CallOptions): Promise<Head>;
  syncToLatest(options?: CallOptions): Promise<Head>;
  getState(key: Uint8Array, options?: CallOptions): Promise<ProvenState>;
  lookupIdentity(zsiIdHex: string, options?: CallOptions): Promise<IdentityInfo | undefined>;
  syncSnapshot(options?: CallOptions & { onChunk?: (chunk: VerifiedChunk) => void }): Promise<SnapshotInfo>;
  peers(): PeerInfo[];
  exportCheckpoint(): string;
  /** The height of the saved trust this client started from, or undefined (a cold start). */
  resumedFrom(): number | undefined;
  /** The IndexedDB key trust is saved under, or null with `persist: false`. */
  readonly trustKey: string | null;
  events(options?: CallOptions): AsyncIterableIterator<LightClientEvent>;
  stop(): void;
  addEventListener(
    type: LightClientEvent['type'] | 'event',
    listener: ((event: CustomEvent<LightClientEvent>) => void) | EventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

/** Events are `CustomEvent`s named by the event's `type` (and `event` for all), `detail` = the event. */
export interface TiernetLightClient extends LightClientApi {}
export class TiernetLightClient extends EventTarget {}

/**
 * The client in a Web Worker: the same API; `head()`, `status()`,
 * `peers()`, `exportCheckpoint()` and `resumedFrom()` answer from the
 * state the worker sent with its latest message.
 */
export interface WorkerLightClient extends LightClientApi {}
export class WorkerLightClient extends EventTarget {
  /**
   * What the page holds for the worker's WebRTC, or null where the worker
   * dials WebRTC itself (or the page has no `RTCPeerConnection` either).
   */
  rtcBridgeCounts(): { connections: number; channels: number; certificates: number } | null;
}
