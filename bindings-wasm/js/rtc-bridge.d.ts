/**
 * WebRTC for a worker without `RTCPeerConnection`, carried out by the page
 * (`createLightClient({ worker: true })` sets this up itself; use these
 * only in a worker of your own that runs the client).
 */

/** Most peer connections the page holds for one worker at once. */
export const MAX_PEER_CONNECTIONS: number;
/** Most data channels the page holds for one worker at once. */
export const MAX_DATA_CHANNELS: number;
/** Most certificates generated and not yet used by a connection. */
export const MAX_PENDING_CERTIFICATES: number;

/** What the page holds for a worker. */
export interface RtcBridgeCounts {
  connections: number;
  channels: number;
  certificates: number;
}

/**
 * On the page: performs, on real `RTCPeerConnection`s, what the worker's
 * proxies ask on `port`. `close()` closes everything it holds (call it
 * when the worker ends).
 */
export function servePageRtc(
  port: MessagePort,
  limits?: { maxPeerConnections?: number; maxDataChannels?: number },
): { close(): void; counts(): RtcBridgeCounts };

/**
 * In the worker: defines `RTCPeerConnection` on `global` (default
 * `globalThis`) that works through the page at the other end of `port`.
 * Returns false, changing nothing, where the worker has its own.
 */
export function installWorkerRtc(port: MessagePort, global?: typeof globalThis): boolean;
