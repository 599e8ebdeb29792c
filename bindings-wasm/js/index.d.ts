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

/** Loads the wasm (once) and builds a client. */
export function createLightClient(
  options: LightClientOptions & { wasm?: URL | string | Response | BufferSource | WebAssembly.Module },
): Promise<TiernetLightClient>;

/** Events are `CustomEvent`s named by the event's `type` (and `event` for all), `detail` = the event. */
export class TiernetLightClient extends EventTarget {
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
  events(options?: CallOptions): AsyncIterableIterator<ClientEvent>;
  stop(): void;
  addEventListener(
    type: ClientEvent['type'] | 'event',
    listener: ((event: CustomEvent<ClientEvent>) => void) | EventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}
