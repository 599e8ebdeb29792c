// WebRTC for a light client in a Web Worker, carried out by the page.
//
// Chromium's and Safari's dedicated workers have no `RTCPeerConnection`. The
// wasm client's WebRTC-direct transport (libp2p-webrtc-websys) uses a small
// part of that API, always through property and method names (wasm-bindgen's
// glue looks `RTCPeerConnection` up on the global at each call):
//   RTCPeerConnection.generateCertificate(algorithm)
//   new RTCPeerConnection({ certificates: [certificate] })
//   pc.createDataChannel(label[, { negotiated, id }]), pc.createOffer(),
//   pc.setLocalDescription(d), pc.setRemoteDescription(d),
//   pc.localDescription, pc.ondatachannel, pc.close()
//   dc.binaryType, dc.readyState, dc.bufferedAmount,
//   dc.bufferedAmountLowThreshold, dc.send(Uint8Array), dc.close(),
//   dc.onopen, dc.onclose, dc.onmessage, dc.onbufferedamountlow, dc.onerror
// `installWorkerRtc(port)` puts proxies with that surface on the worker's
// global. Each call becomes a message on `port` (a MessagePort: messages
// arrive in order); `servePageRtc(port)` on the page performs it on the real
// objects and sends their events back. Handles name the objects: the worker
// numbers what it creates from 1 up, the page numbers the data channels the
// remote opens from -1 down.
//
// Worker → page   { op: 'certificate', call, algorithm }
//                 { op: 'connection', pc, certificates: [handle] }
//                 { op: 'channel', pc, dc, label, init }
//                 { op: 'offer' | 'local' | 'remote', call, pc, description }
//                 { op: 'send', dc, data: ArrayBuffer }
//                 { op: 'closeChannel', dc } | { op: 'closeConnection', pc }
// Page → worker   { reply: call, value } | { reply: call, error: { name, message } }
//                 { event: 'connectionFailed', pc, error }
//                 { event: 'localDescription', pc, description }  (a candidate was gathered)
//                 { event: 'channel', pc, dc, label, id, readyState }   (opened by the remote)
//                 { event: 'open' | 'close', dc }
//                 { event: 'message', dc, data: ArrayBuffer }
//                 { event: 'buffered', dc, sent, bufferedAmount }
//
// `bufferedAmount` in the worker is what the page reported after its latest
// send plus the bytes sent that the page has not yet taken: libp2p waits on
// `bufferedamountlow` (threshold 0) to flush, so that event fires in the
// worker when this sum falls to the threshold.

/** Most peer connections the page holds for one worker at once. */
export const MAX_PEER_CONNECTIONS = 64;
/** Most data channels the page holds for one worker at once. */
export const MAX_DATA_CHANNELS = 1024;
/** Most certificates generated and not yet used by a connection (the oldest go first). */
export const MAX_PENDING_CERTIFICATES = 16;

function errorOf(e) {
  return { name: e && e.name ? String(e.name) : 'Error', message: e && e.message ? String(e.message) : String(e) };
}

function plainDescription(d) {
  return d ? { type: d.type, sdp: d.sdp } : null;
}

/**
 * Carries out, on the page's real `RTCPeerConnection`s, what the worker's
 * proxies ask on `port`. Returns `{ close(), counts() }`: `close()` closes
 * every connection it holds (call it when the worker ends); `counts()` says
 * how many connections, channels and pending certificates it holds.
 */
export function servePageRtc(port, { maxPeerConnections = MAX_PEER_CONNECTIONS, maxDataChannels = MAX_DATA_CHANNELS } = {}) {
  const certificates = new Map();
  /** pc handle → { pc, channels: Set<dc handle> } */
  const connections = new Map();
  /** dc handle → { dc, pc } */
  const channels = new Map();
  /** pc handle → why it could not be built (the latest few), for the calls that follow. */
  const failures = new Map();
  let nextRemoteChannel = -1;
  let closed = false;

  const post = (message, transfer) => {
    if (!closed) port.postMessage(message, transfer || []);
  };

  function forget(dcHandle) {
    const entry = channels.get(dcHandle);
    if (!entry) return;
    channels.delete(dcHandle);
    connections.get(entry.pc)?.channels.delete(dcHandle);
  }

  function watch(dcHandle, dc, pcHandle) {
    channels.set(dcHandle, { dc, pc: pcHandle });
    connections.get(pcHandle)?.channels.add(dcHandle);
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = 0;
    dc.onopen = () => post({ event: 'open', dc: dcHandle });
    dc.onclose = () => {
      if (!channels.has(dcHandle)) return;
      forget(dcHandle);
      post({ event: 'close', dc: dcHandle });
    };
    dc.onmessage = ({ data }) => {
      if (data instanceof ArrayBuffer) post({ event: 'message', dc: dcHandle, data }, [data]);
    };
    dc.onbufferedamountlow = () => post({ event: 'buffered', dc: dcHandle, sent: 0, bufferedAmount: dc.bufferedAmount });
  }

  function closeConnection(pcHandle) {
    const entry = connections.get(pcHandle);
    if (!entry) return;
    connections.delete(pcHandle);
    for (const dcHandle of entry.channels) channels.delete(dcHandle);
    entry.pc.close();
  }

  async function answer(call, work) {
    try {
      post({ reply: call, value: await work() });
    } catch (e) {
      post({ reply: call, error: errorOf(e) });
    }
  }

  function connection(pcHandle) {
    const entry = connections.get(pcHandle);
    if (entry) return entry.pc;
    const failure = failures.get(pcHandle);
    if (failure) throw new DOMException(failure.message, failure.name);
    throw new DOMException('the connection is closed', 'InvalidStateError');
  }

  port.onmessage = ({ data: m }) => {
    if (closed || !m || typeof m !== 'object') return;
    switch (m.op) {
      case 'certificate':
        answer(m.call, async () => {
          const certificate = await RTCPeerConnection.generateCertificate(m.algorithm);
          while (certificates.size >= MAX_PENDING_CERTIFICATES) certificates.delete(certificates.keys().next().value);
          certificates.set(m.call, certificate);
          return m.call;
        });
        break;
      case 'connection':
        try {
          if (connections.has(m.pc)) throw new DOMException(`connection ${m.pc} exists`, 'InvalidStateError');
          if (connections.size >= maxPeerConnections) {
            throw new DOMException(`the page holds ${connections.size} connections for this worker (at most ${maxPeerConnections})`, 'OperationError');
          }
          const certs = (m.certificates || []).map((handle) => {
            const certificate = certificates.get(handle);
            if (!certificate) throw new DOMException(`no certificate ${handle} (used already or evicted)`, 'InvalidAccessError');
            certificates.delete(handle);
            return certificate;
          });
          const pc = new RTCPeerConnection(certs.length ? { certificates: certs } : {});
          connections.set(m.pc, { pc, channels: new Set() });
          // The local description grows with each gathered candidate.
          pc.onicecandidate = () => post({ event: 'localDescription', pc: m.pc, description: plainDescription(pc.localDescription) });
          pc.ondatachannel = ({ channel }) => {
            if (!connections.has(m.pc)) return channel.close();
            if (channels.size >= maxDataChannels) return channel.close();
            const dcHandle = nextRemoteChannel--;
            watch(dcHandle, channel, m.pc);
            post({ event: 'channel', pc: m.pc, dc: dcHandle, label: channel.label, id: channel.id, readyState: channel.readyState });
          };
        } catch (e) {
          while (failures.size >= MAX_PEER_CONNECTIONS) failures.delete(failures.keys().next().value);
          failures.set(m.pc, errorOf(e));
          post({ event: 'connectionFailed', pc: m.pc, error: errorOf(e) });
        }
        break;
      case 'channel': {
        let dc = null;
        try {
          if (channels.size >= maxDataChannels) throw new DOMException('too many data channels', 'OperationError');
          dc = m.init ? connection(m.pc).createDataChannel(m.label, m.init) : connection(m.pc).createDataChannel(m.label);
        } catch {
          // The worker's channel never opens: it is closed.
          post({ event: 'close', dc: m.dc });
          break;
        }
        watch(m.dc, dc, m.pc);
        break;
      }
      case 'offer':
        answer(m.call, async () => plainDescription(await connection(m.pc).createOffer()));
        break;
      case 'local':
      case 'remote': {
        const [set, read] = m.op === 'local' ? ['setLocalDescription', 'localDescription'] : ['setRemoteDescription', 'remoteDescription'];
        answer(m.call, async () => {
          const pc = connection(m.pc);
          await pc[set](m.description);
          return plainDescription(pc[read]);
        });
        break;
      }
      case 'send': {
        const entry = channels.get(m.dc);
        const sent = m.data instanceof ArrayBuffer ? m.data.byteLength : 0;
        if (!entry) {
          post({ event: 'buffered', dc: m.dc, sent, bufferedAmount: 0 });
          break;
        }
        try {
          entry.dc.send(m.data);
        } catch {
          // Not open any more: close it, and the worker hears `close`.
          entry.dc.close();
          forget(m.dc);
          post({ event: 'close', dc: m.dc });
        }
        post({ event: 'buffered', dc: m.dc, sent, bufferedAmount: entry.dc.bufferedAmount });
        break;
      }
      case 'closeChannel':
        channels.get(m.dc)?.dc.close();
        break;
      case 'closeConnection':
        failures.delete(m.pc);
        closeConnection(m.pc);
        break;
      default:
        break;
    }
  };

  return {
    /** Closes every connection held for the worker and stops answering. */
    close() {
      for (const pcHandle of [...connections.keys()]) closeConnection(pcHandle);
      certificates.clear();
      failures.clear();
      closed = true;
      port.onmessage = null;
      port.close();
    },
    /** `{ connections, channels, certificates }` held now. */
    counts() {
      return { connections: connections.size, channels: channels.size, certificates: certificates.size };
    },
  };
}

/**
 * In a worker without `RTCPeerConnection`, defines one on `global` that
 * works through the page (`servePageRtc` on the other end of `port`).
 * Returns false, and changes nothing, where the worker has its own.
 */
export function installWorkerRtc(port, global = globalThis) {
  if (typeof global.RTCPeerConnection !== 'undefined') return false;

  let nextHandle = 1;
  /** call → { resolve, reject } */
  const calls = new Map();
  const peerConnections = new Map();
  const dataChannels = new Map();

  function request(message) {
    const call = nextHandle++;
    return new Promise((resolve, reject) => {
      calls.set(call, { resolve, reject });
      port.postMessage({ ...message, call });
    });
  }

  function fire(target, type, init) {
    const event = type === 'message' ? new MessageEvent('message', init) : Object.assign(new Event(type), init);
    const handler = target[`on${type}`];
    if (typeof handler === 'function') handler.call(target, event);
    target.dispatchEvent(event);
  }

  class BridgedCertificate {
    constructor(handle) {
      this.handle = handle;
    }
  }

  class BridgedDataChannel extends EventTarget {
    #handle;
    #owner;
    #unacknowledged = 0;
    #pageBuffered = 0;
    constructor(owner, handle, label, id, readyState) {
      super();
      this.#owner = owner;
      this.#handle = handle;
      this.label = label;
      this.id = id;
      this.readyState = readyState;
      this.binaryType = 'arraybuffer';
      this.bufferedAmountLowThreshold = 0;
      this.onopen = null;
      this.onclose = null;
      this.onmessage = null;
      this.onerror = null;
      this.onbufferedamountlow = null;
      dataChannels.set(handle, this);
    }

    get bufferedAmount() {
      return this.#unacknowledged + this.#pageBuffered;
    }

    send(data) {
      if (this.readyState !== 'open') throw new DOMException(`the data channel is ${this.readyState}`, 'InvalidStateError');
      let bytes;
      if (typeof data === 'string') bytes = new TextEncoder().encode(data);
      else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data.slice(0));
      else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      else throw new TypeError('send() takes a string, an ArrayBuffer or a view of one');
      // A copy: the caller's view (wasm memory) stays where it is.
      this.#unacknowledged += bytes.byteLength;
      port.postMessage({ op: 'send', dc: this.#handle, data: bytes.buffer }, [bytes.buffer]);
    }

    close() {
      if (this.readyState === 'closed' || this.readyState === 'closing') return;
      this.readyState = 'closing';
      port.postMessage({ op: 'closeChannel', dc: this.#handle });
    }

    /** The page's report after a send or a `bufferedamountlow`. */
    buffered(sent, pageBuffered) {
      const before = this.bufferedAmount;
      this.#unacknowledged = Math.max(0, this.#unacknowledged - sent);
      this.#pageBuffered = pageBuffered;
      const after = this.bufferedAmount;
      if (after <= this.bufferedAmountLowThreshold && before > this.bufferedAmountLowThreshold) fire(this, 'bufferedamountlow');
    }

    opened() {
      if (this.readyState !== 'connecting') return;
      this.readyState = 'open';
      fire(this, 'open');
    }

    ended({ quiet = false } = {}) {
      dataChannels.delete(this.#handle);
      this.#owner.forgetChannel(this);
      if (this.readyState === 'closed') return;
      this.readyState = 'closed';
      if (!quiet) fire(this, 'close');
    }
  }

  class BridgedPeerConnection extends EventTarget {
    #handle;
    #failure = null;
    #channels = new Set();
    #closed = false;

    /** As `RTCPeerConnection.generateCertificate`: the certificate stays on the page. */
    static async generateCertificate(algorithm) {
      return new BridgedCertificate(await request({ op: 'certificate', algorithm }));
    }

    constructor(configuration = {}) {
      super();
      this.#handle = nextHandle++;
      this.localDescription = null;
      this.remoteDescription = null;
      this.ondatachannel = null;
      const certificates = (configuration.certificates || []).map((c) => {
        if (!(c instanceof BridgedCertificate)) throw new TypeError('certificates must come from RTCPeerConnection.generateCertificate');
        return c.handle;
      });
      peerConnections.set(this.#handle, this);
      port.postMessage({ op: 'connection', pc: this.#handle, certificates });
    }

    #usable() {
      if (this.#closed) return Promise.reject(new DOMException('the connection is closed', 'InvalidStateError'));
      if (this.#failure) return Promise.reject(this.#failure);
      return null;
    }

    createDataChannel(label, init) {
      if (this.#closed) throw new DOMException('the connection is closed', 'InvalidStateError');
      const handle = nextHandle++;
      const channel = new BridgedDataChannel(this, handle, String(label), init && init.negotiated ? init.id : null, 'connecting');
      this.#channels.add(channel);
      const plainInit = init ? { ...init } : undefined;
      port.postMessage({ op: 'channel', pc: this.#handle, dc: handle, label: String(label), init: plainInit });
      return channel;
    }

    createOffer() {
      return this.#usable() || request({ op: 'offer', pc: this.#handle });
    }

    async setLocalDescription(description) {
      const unusable = this.#usable();
      if (unusable) return unusable;
      this.localDescription = await request({ op: 'local', pc: this.#handle, description: plainDescription(description) });
      return undefined;
    }

    async setRemoteDescription(description) {
      const unusable = this.#usable();
      if (unusable) return unusable;
      this.remoteDescription = await request({ op: 'remote', pc: this.#handle, description: plainDescription(description) });
      return undefined;
    }

    close() {
      if (this.#closed) return;
      this.#closed = true;
      peerConnections.delete(this.#handle);
      // As the real one: its channels are closed, without `close` events.
      for (const channel of [...this.#channels]) channel.ended({ quiet: true });
      port.postMessage({ op: 'closeConnection', pc: this.#handle });
    }

    /** The page could not build it: every channel closes, every call fails. */
    failed(error) {
      this.#failure = Object.assign(new Error(error.message), { name: error.name });
      for (const channel of [...this.#channels]) channel.ended();
    }

    /** A data channel the remote opened. */
    remoteChannel({ dc, label, id, readyState }) {
      if (this.#closed) return;
      const channel = new BridgedDataChannel(this, dc, label, id, readyState === 'open' ? 'open' : 'connecting');
      this.#channels.add(channel);
      fire(this, 'datachannel', { channel });
    }

    forgetChannel(channel) {
      this.#channels.delete(channel);
    }
  }

  port.onmessage = ({ data: m }) => {
    if (!m || typeof m !== 'object') return;
    if (m.reply !== undefined) {
      const call = calls.get(m.reply);
      if (!call) return;
      calls.delete(m.reply);
      if (m.error) call.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
      else call.resolve(m.value);
      return;
    }
    switch (m.event) {
      case 'connectionFailed':
        peerConnections.get(m.pc)?.failed(m.error);
        break;
      case 'localDescription': {
        const pc = peerConnections.get(m.pc);
        if (pc && m.description) pc.localDescription = m.description;
        break;
      }
      case 'channel':
        peerConnections.get(m.pc)?.remoteChannel(m);
        break;
      case 'open':
        dataChannels.get(m.dc)?.opened();
        break;
      case 'close':
        dataChannels.get(m.dc)?.ended();
        break;
      case 'message': {
        const channel = dataChannels.get(m.dc);
        if (channel && channel.readyState !== 'closed') fire(channel, 'message', { data: m.data });
        break;
      }
      case 'buffered':
        dataChannels.get(m.dc)?.buffered(m.sent, m.bufferedAmount);
        break;
      default:
        break;
    }
  };

  global.RTCPeerConnection = BridgedPeerConnection;
  return true;
}
