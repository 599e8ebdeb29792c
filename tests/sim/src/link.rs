//! Simulated links: a libp2p [`Transport`] whose connections deliver every
//! byte after the link's one-way delay and no faster than the sending
//! node's upload bandwidth.
//!
//! The kernel here has no `netem`, so latency lives in the transport: each
//! node gets a [`SimTransport`] on a shared [`SimNet`]. Addresses are
//! `/memory/<port>` (port = node index + 1). A connection is two pipes,
//! one per direction. A write is queued at once with a release time:
//!
//! ```text
//! leaves  = max(now, sender's uplink free) + bytes × 8 / upload_bps
//! release = max(leaves + one_way_delay + jitter, previous release)
//! ```
//!
//! so the sender's upload is one queue shared by all its connections, and
//! bytes on one connection never overtake each other (jitter cannot
//! reorder a stream). The reader gets a chunk when its release time has
//! come. While a partition separates two nodes nothing is released between
//! them; it flows again on healing (like TCP retransmitting after a short
//! outage). Queues are bounded ([`MAX_QUEUED`] per direction): a full pipe
//! makes the writer wait, as a full socket buffer would.
//!
//! Everything is in memory: no socket, no port, nothing leaves the process.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::Multiaddr;
use libp2p::core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Most bytes queued in one direction of one connection.
pub const MAX_QUEUED: usize = 4 << 20;
/// Largest chunk one write queues.
const MAX_CHUNK: usize = 64 << 10;
/// Pending inbound connections per listener.
const ACCEPT_QUEUE: usize = 256;
/// How often a reader blocked by a partition looks again.
const PARTITION_POLL: Duration = Duration::from_millis(50);

/// Where each node is and what its links are like.
pub trait LinkModel: Send + Sync {
    /// One-way base delay from `from` to `to`.
    fn delay(&self, from: usize, to: usize) -> Duration;
    /// Extra delay of one chunk (jitter), from a seeded source.
    fn jitter(&self, from: usize, to: usize, sequence: u64) -> Duration;
    /// Upload bandwidth of `node`, bits per second.
    fn upload_bps(&self, node: usize) -> u64;
}

/// Per-node counters.
#[derive(Debug, Default)]
pub struct NodeTraffic {
    /// Bytes this node wrote.
    pub sent: AtomicU64,
    /// Bytes this node read.
    pub received: AtomicU64,
}

/// The shared network: listeners, link model, partitions, counters.
pub struct SimNet {
    model: Box<dyn LinkModel>,
    listeners: Mutex<HashMap<u64, (usize, mpsc::Sender<SimStream>)>>,
    uplinks: Vec<Mutex<Instant>>,
    traffic: Vec<NodeTraffic>,
    /// Side of each node while a partition holds (`None`: no partition).
    partition: Mutex<Option<Vec<u8>>>,
    chunks: AtomicU64,
}

impl SimNet {
    /// A network of `nodes` nodes (indices `0..nodes`).
    pub fn new(nodes: usize, model: Box<dyn LinkModel>) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            model,
            listeners: Mutex::new(HashMap::new()),
            uplinks: (0..nodes).map(|_| Mutex::new(now)).collect(),
            traffic: (0..nodes).map(|_| NodeTraffic::default()).collect(),
            partition: Mutex::new(None),
            chunks: AtomicU64::new(0),
        })
    }

    /// The address node `index` listens on.
    pub fn address(index: usize) -> Multiaddr {
        Multiaddr::empty().with(Protocol::Memory(index as u64 + 1))
    }

    /// Splits the network: nodes on different sides reach each other no more.
    pub fn partition(&self, sides: Vec<u8>) {
        *lock(&self.partition) = Some(sides);
    }

    /// Ends a partition.
    pub fn heal(&self) {
        *lock(&self.partition) = None;
    }

    /// Traffic counters of `node`.
    pub fn traffic(&self, node: usize) -> Option<&NodeTraffic> {
        self.traffic.get(node)
    }

    fn blocked(&self, from: usize, to: usize) -> bool {
        lock(&self.partition)
            .as_ref()
            .is_some_and(|sides| sides.get(from) != sides.get(to))
    }

    /// When a chunk of `bytes` written now by `from` reaches `to`.
    fn release_time(&self, from: usize, to: usize, bytes: usize) -> Instant {
        let now = Instant::now();
        let bps = self.model.upload_bps(from).max(1);
        let transmit = Duration::from_nanos((bytes as u64).saturating_mul(8_000_000_000) / bps);
        let leaves = match self.uplinks.get(from) {
            Some(uplink) => {
                let mut free = lock(uplink);
                *free = (*free).max(now) + transmit;
                *free
            }
            None => now + transmit,
        };
        let sequence = self.chunks.fetch_add(1, Ordering::Relaxed);
        leaves + self.model.delay(from, to) + self.model.jitter(from, to, sequence)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One direction of a connection.
#[derive(Default)]
struct Pipe {
    state: Mutex<PipeState>,
}

#[derive(Default)]
struct PipeState {
    /// (release time, bytes, bytes already read)
    chunks: VecDeque<(Instant, Vec<u8>, usize)>,
    queued: usize,
    closed: bool,
    last_release: Option<Instant>,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of a simulated connection.
pub struct SimStream {
    net: Arc<SimNet>,
    local: usize,
    remote: usize,
    tx: Arc<Pipe>,
    rx: Arc<Pipe>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl SimStream {
    fn pair(net: &Arc<SimNet>, a: usize, b: usize) -> (Self, Self) {
        let (ab, ba) = (Arc::new(Pipe::default()), Arc::new(Pipe::default()));
        let end = |local, remote, tx: &Arc<Pipe>, rx: &Arc<Pipe>| SimStream {
            net: net.clone(),
            local,
            remote,
            tx: tx.clone(),
            rx: rx.clone(),
            sleep: None,
        };
        (end(a, b, &ab, &ba), end(b, a, &ba, &ab))
    }

    fn wait_until(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future;

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            let now = Instant::now();
            let wait = {
                let mut state = lock(&self.rx.state);
                let closed = state.closed;
                match state.chunks.front_mut() {
                    None if closed => return Poll::Ready(Ok(0)),
                    None => {
                        state.reader = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    Some((release, data, read)) => {
                        if self.net.blocked(self.remote, self.local) {
                            Some(now + PARTITION_POLL)
                        } else if *release <= now {
                            let n = (data.len() - *read).min(buf.len());
                            buf[..n].copy_from_slice(&data[*read..*read + n]);
                            *read += n;
                            if *read == data.len() {
                                state.chunks.pop_front();
                            }
                            state.queued = state.queued.saturating_sub(n);
                            if let Some(writer) = state.writer.take() {
                                writer.wake();
                            }
                            drop(state);
                            if let Some(traffic) = self.net.traffic(self.local) {
                                traffic.received.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            return Poll::Ready(Ok(n));
                        } else {
                            Some(*release)
                        }
                    }
                }
            };
            if let Some(at) = wait
                && self.wait_until(cx, at).is_pending()
            {
                return Poll::Pending;
            }
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = lock(&self.tx.state);
        if state.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.queued >= MAX_QUEUED {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_CHUNK);
        let release = self.net.release_time(self.local, self.remote, n);
        let release = state.last_release.map_or(release, |last| release.max(last));
        state.last_release = Some(release);
        state.chunks.push_back((release, buf[..n].to_vec(), 0));
        state.queued += n;
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
        drop(state);
        if let Some(traffic) = self.net.traffic(self.local) {
            traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        close(&self.tx);
        Poll::Ready(Ok(()))
    }
}

fn close(pipe: &Pipe) {
    let mut state = lock(&pipe.state);
    state.closed = true;
    if let Some(reader) = state.reader.take() {
        reader.wake();
    }
    if let Some(writer) = state.writer.take() {
        writer.wake();
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        // A dropped end (a crashed node) closes both directions: the other
        // side reads what is in flight, then EOF, and its writes fail.
        close(&self.tx);
        close(&self.rx);
    }
}

/// The transport of one node on a [`SimNet`].
pub struct SimTransport {
    net: Arc<SimNet>,
    node: usize,
    listeners: Vec<(ListenerId, u64, mpsc::Receiver<SimStream>)>,
    events: VecDeque<TransportEvent<futures::future::Ready<io::Result<SimStream>>, io::Error>>,
}

impl SimTransport {
    /// Node `node`'s transport.
    pub fn new(net: Arc<SimNet>, node: usize) -> Self {
        Self {
            net,
            node,
            listeners: Vec::new(),
            events: VecDeque::new(),
        }
    }
}

fn memory_port(addr: &Multiaddr) -> Option<u64> {
    let mut iter = addr.iter();
    match (iter.next(), iter.next()) {
        (Some(Protocol::Memory(port)), None | Some(Protocol::P2p(_))) => Some(port),
        _ => None,
    }
}

impl Transport for SimTransport {
    type Output = SimStream;
    type Error = io::Error;
    type ListenerUpgrade = futures::future::Ready<io::Result<SimStream>>;
    type Dial = BoxFuture<'static, io::Result<SimStream>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<io::Error>> {
        let Some(port) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (sender, receiver) = mpsc::channel(ACCEPT_QUEUE);
        lock(&self.net.listeners).insert(port, (self.node, sender));
        self.listeners.push((id, port, receiver));
        self.events.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(position) = self.listeners.iter().position(|(l, _, _)| *l == id) else {
            return false;
        };
        let (_, port, _) = self.listeners.remove(position);
        let mut listeners = lock(&self.net.listeners);
        if listeners.get(&port).is_some_and(|(node, _)| *node == self.node) {
            listeners.remove(&port);
        }
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(&mut self, addr: Multiaddr, _: DialOpts) -> Result<Self::Dial, TransportError<io::Error>> {
        let Some(port) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let net = self.net.clone();
        let node = self.node;
        Ok(async move {
            let target = lock(&net.listeners).get(&port).cloned();
            let Some((remote, sender)) = target else {
                return Err(io::ErrorKind::ConnectionRefused.into());
            };
            if net.blocked(node, remote) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                return Err(io::ErrorKind::TimedOut.into());
            }
            // The TCP handshake: one round trip before the first byte.
            let round_trip = net.model.delay(node, remote) + net.model.delay(remote, node);
            tokio::time::sleep(round_trip).await;
            let (ours, theirs) = SimStream::pair(&net, node, remote);
            sender
                .try_send(theirs)
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(ours)
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        for (id, port, receiver) in &mut self.listeners {
            if let Poll::Ready(Some(stream)) = receiver.poll_recv(cx) {
                let send_back_addr = SimNet::address(stream.remote);
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id: *id,
                    upgrade: futures::future::ready(Ok(stream)),
                    local_addr: Multiaddr::empty().with(Protocol::Memory(*port)),
                    send_back_addr,
                });
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};

    struct Fixed;
    impl LinkModel for Fixed {
        fn delay(&self, _: usize, _: usize) -> Duration {
            Duration::from_millis(40)
        }
        fn jitter(&self, _: usize, _: usize, sequence: u64) -> Duration {
            Duration::from_millis(sequence % 7)
        }
        fn upload_bps(&self, _: usize) -> u64 {
            8_000_000 // 1 MB/s
        }
    }

    #[tokio::test]
    async fn bytes_arrive_after_the_delay_in_order_and_at_the_bandwidth() {
        let net = SimNet::new(2, Box::new(Fixed));
        let (mut a, mut b) = SimStream::pair(&net, 0, 1);
        let start = Instant::now();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let writer = tokio::spawn(async move {
            for chunk in data.chunks(1000) {
                a.write_all(chunk).await.unwrap();
            }
            a.close().await.unwrap();
        });
        let mut got = Vec::new();
        let mut first = None;
        let mut buf = [0u8; 4096];
        loop {
            let n = b.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        let expected: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        assert_eq!(got, expected, "bytes in order");
        let first = first.unwrap() - start;
        assert!(
            first >= Duration::from_millis(40),
            "first byte after the delay: {first:?}"
        );
        // 200 KB at 1 MB/s is 200 ms of transmission plus 40 ms of delay.
        let total = start.elapsed();
        assert!(total >= Duration::from_millis(230), "bandwidth bound: {total:?}");
        assert_eq!(net.traffic(0).unwrap().sent.load(Ordering::Relaxed), 200_000);
        assert_eq!(net.traffic(1).unwrap().received.load(Ordering::Relaxed), 200_000);
    }

    #[tokio::test]
    async fn a_partition_holds_bytes_until_it_heals_and_a_dropped_end_is_eof() {
        let net = SimNet::new(2, Box::new(Fixed));
        let (mut a, mut b) = SimStream::pair(&net, 0, 1);
        net.partition(vec![0, 1]);
        a.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let held = tokio::time::timeout(Duration::from_millis(300), b.read(&mut buf)).await;
        assert!(held.is_err(), "nothing crosses a partition");
        net.heal();
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");
        drop(a);
        assert_eq!(b.read(&mut buf).await.unwrap(), 0);
        assert!(b.write_all(b"x").await.is_err(), "writes to a dropped end fail");
    }
}
