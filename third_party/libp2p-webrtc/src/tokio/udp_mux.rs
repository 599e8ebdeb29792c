// Copyright 2022 Parity Technologies (UK) Ltd.
//
// Permission is hereby granted, free of charge, to any person obtaining a
// copy of this software and associated documentation files (the "Software"),
// to deal in the Software without restriction, including without limitation
// the rights to use, copy, modify, merge, publish, distribute, sublicense,
// and/or sell copies of the Software, and to permit persons to whom the
// Software is furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
// OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
// FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
// DEALINGS IN THE SOFTWARE.

use std::{
    collections::{HashMap, HashSet, VecDeque, hash_map::RandomState},
    hash::BuildHasher,
    io,
    io::ErrorKind,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use async_trait::async_trait;
use futures::{
    StreamExt,
    channel::oneshot,
    future::{BoxFuture, FutureExt, OptionFuture},
    stream::FuturesUnordered,
};
use stun::{
    agent::TransactionId,
    attributes::ATTR_USERNAME,
    fingerprint::FINGERPRINT,
    integrity::MessageIntegrity,
    message::{BINDING_REQUEST, BINDING_SUCCESS, Message as STUNMessage, is_message as is_stun_message},
    textattrs::Username,
};
use thiserror::Error;
use tokio::{io::ReadBuf, net::UdpSocket};
use webrtc::{
    ice::{
        control::AttrControlled,
        priority::PriorityAttr,
        udp_mux::{UDPMux, UDPMuxConn, UDPMuxConnParams, UDPMuxWriter},
    },
    util::{Conn, Error},
};

use crate::tokio::req_res_chan;

const RECEIVE_MTU: usize = 8192;

/// tiernet patch: most first binding requests kept for connections not yet
/// created (the oldest go first).
const MAX_FIRST_REQUESTS: usize = 64;

/// tiernet patch: connection attempts in flight from sources that have not
/// shown they receive what is sent to them. Beyond it a new source is
/// reported only after it answered a binding request of ours, so binding
/// requests with spoofed source addresses can hold at most this many of the
/// node's pending connection slots (each for up to the handshake timeout).
pub(crate) const UNPROVEN_ATTEMPTS: usize = 8;

/// tiernet patch: most sources remembered as having answered a
/// return-routability check (the oldest go first).
const MAX_PROVEN: usize = 1024;

/// tiernet patch: the priority our return-routability check carries (a host
/// candidate's, as the agent's own checks).
const RETURN_ROUTE_PRIORITY: u32 = 2_130_706_431;

/// A previously unseen address of a remote which has sent us an ICE binding request.
#[derive(Debug)]
pub(crate) struct NewAddr {
    pub(crate) addr: SocketAddr,
    pub(crate) ufrag: String,
}

/// An event emitted by [`UDPMuxNewAddr`] when it's polled.
#[derive(Debug)]
pub(crate) enum UDPMuxEvent {
    /// Connection error. UDP mux should be stopped.
    Error(std::io::Error),
    /// Got a [`NewAddr`] from the socket.
    NewAddr(NewAddr),
}

/// A modified version of [`webrtc::ice::udp_mux::UDPMuxDefault`].
///
/// - It has been rewritten to work without locks and channels instead.
/// - It reports previously unseen addresses instead of ignoring them.
pub(crate) struct UDPMuxNewAddr {
    udp_sock: UdpSocket,

    listen_addr: SocketAddr,

    /// Maps from ufrag to the underlying connection.
    conns: HashMap<String, UDPMuxConn>,

    /// Maps from socket address to the underlying connection.
    address_map: HashMap<SocketAddr, UDPMuxConn>,

    /// Set of the new addresses to avoid sending the same address multiple times.
    ///
    /// tiernet patch: shared with a [`NewAddrGuard`] per reported address,
    /// which takes the address out when the connection attempt ends in any
    /// way. Upstream took it out only when a connection registered it, so an
    /// attempt the swarm refused (its limits) or that failed left the address
    /// here for good: that source could never connect again, and binding
    /// requests from ever new (spoofable) sources grew the set without bound.
    new_addrs: Arc<Mutex<HashSet<SocketAddr>>>,

    /// tiernet patch: connection attempts in flight (their guards alive).
    attempts: Arc<AtomicUsize>,

    /// tiernet patch: the binding request that announced a new address, by
    /// the local ufrag it names, kept until the connection for that ufrag is
    /// created and then handed to it. Upstream drops it, so the remote's ICE
    /// check waits for its retransmission (48 ms in Chromium) on every
    /// inbound connection. Bounded by [`MAX_FIRST_REQUESTS`].
    first_requests: VecDeque<(String, SocketAddr, Vec<u8>)>,

    /// tiernet patch: keys of the transaction ids of return-routability
    /// checks (see `unknown_source`).
    prover: [RandomState; 2],

    /// tiernet patch: sources that answered a return-routability check and
    /// have not yet used it (the latest, at most [`MAX_PROVEN`]; an entry is
    /// taken by the attempt it admits).
    proven: HashSet<SocketAddr>,
    proven_order: VecDeque<SocketAddr>,

    /// `true` when UDP mux is closed.
    is_closed: bool,

    send_buffer: Option<(Vec<u8>, SocketAddr, oneshot::Sender<Result<usize, Error>>)>,

    close_futures: FuturesUnordered<BoxFuture<'static, ()>>,
    write_future: OptionFuture<BoxFuture<'static, ()>>,

    close_command: req_res_chan::Receiver<(), Result<(), Error>>,
    get_conn_command: req_res_chan::Receiver<String, Result<Arc<dyn Conn + Send + Sync>, Error>>,
    remove_conn_command: req_res_chan::Receiver<String, ()>,
    registration_command: req_res_chan::Receiver<(UDPMuxConn, SocketAddr), ()>,
    send_command: req_res_chan::Receiver<(Vec<u8>, SocketAddr), Result<usize, Error>>,

    udp_mux_handle: Arc<UdpMuxHandle>,
    udp_mux_writer_handle: Arc<UdpMuxWriterHandle>,
}

impl UDPMuxNewAddr {
    pub(crate) fn listen_on(addr: SocketAddr) -> Result<Self, io::Error> {
        let std_sock = std::net::UdpSocket::bind(addr)?;
        std_sock.set_nonblocking(true)?;

        let tokio_socket = UdpSocket::from_std(std_sock)?;
        let listen_addr = tokio_socket.local_addr()?;

        let (udp_mux_handle, close_command, get_conn_command, remove_conn_command) =
            UdpMuxHandle::new();
        let (udp_mux_writer_handle, registration_command, send_command) = UdpMuxWriterHandle::new();

        Ok(Self {
            udp_sock: tokio_socket,
            listen_addr,
            conns: HashMap::default(),
            address_map: HashMap::default(),
            new_addrs: Arc::default(),
            attempts: Arc::default(),
            first_requests: VecDeque::default(),
            prover: [RandomState::new(), RandomState::new()],
            proven: HashSet::default(),
            proven_order: VecDeque::default(),
            is_closed: false,
            send_buffer: None,
            close_futures: FuturesUnordered::default(),
            write_future: OptionFuture::default(),
            close_command,
            get_conn_command,
            remove_conn_command,
            registration_command,
            send_command,
            udp_mux_handle: Arc::new(udp_mux_handle),
            udp_mux_writer_handle: Arc::new(udp_mux_writer_handle),
        })
    }

    pub(crate) fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    pub(crate) fn udp_mux_handle(&self) -> Arc<UdpMuxHandle> {
        self.udp_mux_handle.clone()
    }

    /// tiernet patch: the guard of a reported address `addr`, to be held by
    /// its connection attempt (see `new_addrs`).
    pub(crate) fn new_addr_guard(&self, addr: SocketAddr) -> NewAddrGuard {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        NewAddrGuard {
            addr,
            new_addrs: Arc::downgrade(&self.new_addrs),
            attempts: Arc::clone(&self.attempts),
        }
    }

    /// tiernet patch: a datagram from a source that no connection has. A
    /// binding request names the connection to create: it is kept for that
    /// connection, and its source is reported at once while few attempts are
    /// in flight, otherwise only once it has answered a binding request of
    /// ours whose transaction id is a keyed hash of the source (a
    /// return-routability check: a spoofed source never sees it). Upstream
    /// reported every new source at once.
    fn unknown_source(&mut self, packet: &[u8], addr: SocketAddr) -> Option<NewAddr> {
        if lock(&self.new_addrs).contains(&addr) {
            return None;
        }
        let Ok(ufrag) = ufrag_from_stun_message(packet, false) else {
            if self.answers_our_check(packet, &addr) {
                // Report it with the request it sent first, if still kept;
                // else its next request is admitted.
                let kept = self.first_requests.iter().find(|(_, a, _)| *a == addr);
                match kept.and_then(|(_, _, request)| ufrag_from_stun_message(request, false).ok()) {
                    Some(ufrag) => return Some(self.report(addr, ufrag)),
                    None => self.remember_proven(addr),
                }
                return None;
            }
            tracing::debug!(address=%addr, "Unknown address (not a binding request)");
            return None;
        };
        if let Ok(local_ufrag) = ufrag_from_stun_message(packet, true) {
            // Keep the request for the connection to come (the latest one per ufrag).
            self.first_requests.retain(|(u, _, _)| *u != local_ufrag);
            if self.first_requests.len() >= MAX_FIRST_REQUESTS {
                self.first_requests.pop_front();
            }
            self.first_requests.push_back((local_ufrag.clone(), addr, packet.to_vec()));
            // A proof admits one attempt: a stranger who learns a proven
            // address cannot spoof it again and again.
            if self.attempts.load(Ordering::Relaxed) >= UNPROVEN_ATTEMPTS && !self.take_proof(&addr) {
                self.check_return_route(addr, &ufrag, &local_ufrag);
                return None;
            }
        }
        Some(self.report(addr, ufrag))
    }

    /// tiernet patch: reports `addr` as a new source.
    fn report(&mut self, addr: SocketAddr, ufrag: String) -> NewAddr {
        tracing::trace!(address=%addr, %ufrag, "Notifying about new address from ufrag");
        lock(&self.new_addrs).insert(addr);
        NewAddr { addr, ufrag }
    }

    /// tiernet patch: the transaction id of our check of `addr`.
    fn check_id(&self, addr: &SocketAddr) -> [u8; 12] {
        let first = self.prover[0].hash_one(addr).to_be_bytes();
        let second = self.prover[1].hash_one(addr).to_be_bytes();
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&first);
        id[8..].copy_from_slice(&second[..4]);
        id
    }

    /// tiernet patch: sends `addr` a binding request it must answer (ICE: a
    /// check from us, with its credentials), best effort.
    fn check_return_route(&self, addr: SocketAddr, remote_ufrag: &str, local_ufrag: &str) {
        let mut check = STUNMessage::new();
        // In WebRTC-direct the remote's password is its ufrag.
        let built = check.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId(self.check_id(&addr))),
            Box::new(Username::new(ATTR_USERNAME, format!("{remote_ufrag}:{local_ufrag}"))),
            Box::new(AttrControlled(0)),
            Box::new(PriorityAttr(RETURN_ROUTE_PRIORITY)),
            Box::new(MessageIntegrity::new_short_term_integrity(remote_ufrag.to_owned())),
            Box::new(FINGERPRINT),
        ]);
        match built {
            Ok(()) => {
                if let Err(e) = self.udp_sock.try_send_to(&check.raw, addr) {
                    tracing::debug!(address=%addr, "Could not send a return-routability check: {}", e);
                }
            }
            Err(e) => tracing::debug!(address=%addr, "Could not build a return-routability check: {}", e),
        }
    }

    /// tiernet patch: whether `packet` from `addr` answers our check of it.
    fn answers_our_check(&self, packet: &[u8], addr: &SocketAddr) -> bool {
        let mut answer = STUNMessage::new();
        answer.unmarshal_binary(packet).is_ok()
            && answer.typ == BINDING_SUCCESS
            && answer.transaction_id.0 == self.check_id(addr)
    }

    /// tiernet patch: remembers that `addr` answered our check.
    /// tiernet patch: uses up `addr`'s proof, if it has one. Taken from the
    /// order too, so a later proof of the same address is not forgotten
    /// when this one's place comes up.
    fn take_proof(&mut self, addr: &SocketAddr) -> bool {
        if !self.proven.remove(addr) {
            return false;
        }
        self.proven_order.retain(|a| a != addr);
        true
    }

    fn remember_proven(&mut self, addr: SocketAddr) {
        if self.proven.insert(addr) {
            self.proven_order.push_back(addr);
            while self.proven_order.len() > MAX_PROVEN {
                if let Some(oldest) = self.proven_order.pop_front() {
                    self.proven.remove(&oldest);
                }
            }
        }
    }

    /// Create a muxed connection for a given ufrag.
    fn create_muxed_conn(&self, ufrag: &str) -> Result<UDPMuxConn, Error> {
        let local_addr = self.udp_sock.local_addr()?;

        let params = UDPMuxConnParams {
            local_addr,
            key: ufrag.into(),
            udp_mux: Arc::downgrade(
                &(self.udp_mux_writer_handle.clone() as Arc<dyn UDPMuxWriter + Send + Sync>),
            ),
        };

        Ok(UDPMuxConn::new(params))
    }

    /// Returns a muxed connection if the `ufrag` from the given STUN message matches an existing
    /// connection.
    fn conn_from_stun_message(
        &self,
        buffer: &[u8],
        addr: &SocketAddr,
    ) -> Option<Result<UDPMuxConn, ConnQueryError>> {
        match ufrag_from_stun_message(buffer, true) {
            Ok(ufrag) => {
                if let Some(conn) = self.conns.get(&ufrag) {
                    let associated_addrs = conn.get_addresses();
                    // This basically ensures only one address is registered per ufrag.
                    if associated_addrs.is_empty() || associated_addrs.contains(addr) {
                        return Some(Ok(conn.clone()));
                    } else {
                        return Some(Err(ConnQueryError::UfragAlreadyTaken { associated_addrs }));
                    }
                }
                None
            }
            Err(e) => {
                tracing::debug!(address=%addr, "{}", e);
                None
            }
        }
    }

    /// Reads from the underlying UDP socket and either reports a new address or proxies data to the
    /// muxed connection.
    pub(crate) fn poll(&mut self, cx: &mut Context) -> Poll<UDPMuxEvent> {
        let mut recv_buf = [0u8; RECEIVE_MTU];

        loop {
            // => Send data to target
            match self.send_buffer.take() {
                None => {
                    if let Poll::Ready(Some(((buf, target), response))) =
                        self.send_command.poll_next_unpin(cx)
                    {
                        self.send_buffer = Some((buf, target, response));
                        continue;
                    }
                }
                Some((buf, target, response)) => {
                    match self.udp_sock.poll_send_to(cx, &buf, target) {
                        Poll::Ready(result) => {
                            let _ = response.send(result.map_err(|e| Error::Io(e.into())));
                            continue;
                        }
                        Poll::Pending => {
                            self.send_buffer = Some((buf, target, response));
                        }
                    }
                }
            }

            // => Register a new connection
            if let Poll::Ready(Some(((conn, addr), response))) =
                self.registration_command.poll_next_unpin(cx)
            {
                let key = conn.key();

                self.address_map
                    .entry(addr)
                    .and_modify(|e| {
                        if e.key() != key {
                            e.remove_address(&addr);
                            *e = conn.clone();
                        }
                    })
                    .or_insert_with(|| conn.clone());

                // remove addr from new_addrs once conn is established
                lock(&self.new_addrs).remove(&addr);

                let _ = response.send(());

                continue;
            }

            // => Get connection with the given ufrag
            if let Poll::Ready(Some((ufrag, response))) = self.get_conn_command.poll_next_unpin(cx)
            {
                if self.is_closed {
                    let _ = response.send(Err(Error::ErrUseClosedNetworkConn));
                    continue;
                }

                if let Some(conn) = self.conns.get(&ufrag).cloned() {
                    let _ = response.send(Ok(Arc::new(conn)));
                    continue;
                }

                let muxed_conn = match self.create_muxed_conn(&ufrag) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = response.send(Err(e));
                        continue;
                    }
                };
                let mut close_rx = muxed_conn.close_rx();

                self.close_futures.push({
                    let ufrag = ufrag.clone();
                    let udp_mux_handle = self.udp_mux_handle.clone();

                    Box::pin(async move {
                        let _ = close_rx.changed().await;
                        udp_mux_handle.remove_conn_by_ufrag(&ufrag).await;
                    })
                });

                // tiernet patch: hand the new connection the request that
                // announced it (after any write already under way).
                if let Some(index) = self.first_requests.iter().position(|(u, _, _)| *u == ufrag) {
                    if let Some((_, addr, packet)) = self.first_requests.remove(index) {
                        let conn = muxed_conn.clone();
                        let previous = std::mem::take(&mut self.write_future);
                        self.write_future = OptionFuture::from(Some(
                            async move {
                                previous.await;
                                if let Err(err) = conn.write_packet(&packet, addr).await {
                                    tracing::debug!(address=%addr, "Failed to hand over the first binding request: {}", err);
                                }
                            }
                            .boxed(),
                        ));
                    }
                }

                self.conns.insert(ufrag, muxed_conn.clone());

                let _ = response.send(Ok(Arc::new(muxed_conn) as Arc<dyn Conn + Send + Sync>));

                continue;
            }

            // => Close UDPMux
            if let Poll::Ready(Some(((), response))) = self.close_command.poll_next_unpin(cx) {
                if self.is_closed {
                    let _ = response.send(Err(Error::ErrAlreadyClosed));
                    continue;
                }

                for (_, conn) in self.conns.drain() {
                    conn.close();
                }

                // NOTE: This is important, we need to drop all instances of `UDPMuxConn` to
                // avoid a retain cycle due to the use of [`std::sync::Arc`] on both sides.
                self.address_map.clear();

                // NOTE: This is important, we need to drop all instances of `UDPMuxConn` to
                // avoid a retain cycle due to the use of [`std::sync::Arc`] on both sides.
                lock(&self.new_addrs).clear();
                self.first_requests.clear();
                self.proven.clear();
                self.proven_order.clear();

                let _ = response.send(Ok(()));

                self.is_closed = true;

                continue;
            }

            // => Remove connection with the given ufrag
            if let Poll::Ready(Some((ufrag, response))) =
                self.remove_conn_command.poll_next_unpin(cx)
            {
                // Pion's ice implementation has both `RemoveConnByFrag` and `RemoveConn`, but since
                // `conns` is keyed on `ufrag` their implementation is equivalent.

                if let Some(removed_conn) = self.conns.remove(&ufrag) {
                    for address in removed_conn.get_addresses() {
                        self.address_map.remove(&address);
                    }
                }

                let _ = response.send(());

                continue;
            }

            // => Remove closed connections
            let _ = self.close_futures.poll_next_unpin(cx);

            // => Write previously received data to local connections
            match self.write_future.poll_unpin(cx) {
                Poll::Ready(Some(())) => {
                    self.write_future = OptionFuture::default();
                    continue;
                }
                Poll::Ready(None) => {
                    // => Read from the socket
                    let mut read = ReadBuf::new(&mut recv_buf);

                    match self.udp_sock.poll_recv_from(cx, &mut read) {
                        Poll::Ready(Ok(addr)) => {
                            // Find connection based on previously having seen this source address
                            let conn = self.address_map.get(&addr);

                            let conn = match conn {
                                // If we couldn't find the connection based on source address, see
                                // if this is a STUN message and if
                                // so if we can find the connection based on ufrag.
                                None if is_stun_message(read.filled()) => {
                                    match self.conn_from_stun_message(read.filled(), &addr) {
                                        Some(Ok(s)) => Some(s),
                                        Some(Err(e)) => {
                                            tracing::debug!(address=%&addr, "Error when querying existing connections: {}", e);
                                            continue;
                                        }
                                        None => None,
                                    }
                                }
                                Some(s) => Some(s.to_owned()),
                                _ => None,
                            };

                            match conn {
                                None => {
                                    // tiernet patch: the decision moved to `unknown_source`.
                                    if let Some(new_addr) = self.unknown_source(read.filled(), addr) {
                                        return Poll::Ready(UDPMuxEvent::NewAddr(new_addr));
                                    }
                                }
                                Some(conn) => {
                                    let mut packet = vec![0u8; read.filled().len()];
                                    packet.copy_from_slice(read.filled());
                                    self.write_future = OptionFuture::from(Some(
                                        async move {
                                            if let Err(err) = conn.write_packet(&packet, addr).await
                                            {
                                                tracing::error!(
                                                    address=%addr,
                                                    "Failed to write packet: {}",
                                                    err,
                                                );
                                            }
                                        }
                                        .boxed(),
                                    ));
                                }
                            }

                            continue;
                        }
                        Poll::Pending => {}
                        Poll::Ready(Err(err)) if err.kind() == ErrorKind::TimedOut => {}
                        Poll::Ready(Err(err)) if err.kind() == ErrorKind::ConnectionReset => {
                            tracing::debug!("ConnectionReset by remote client {err:?}")
                        }
                        Poll::Ready(Err(err)) => {
                            tracing::error!("Could not read udp packet: {}", err);
                            return Poll::Ready(UDPMuxEvent::Error(err));
                        }
                    }
                }
                Poll::Pending => {}
            }

            return Poll::Pending;
        }
    }
}

/// tiernet patch: takes a reported address out of the set of new addresses
/// when dropped, that is when its connection attempt ends (established,
/// failed, or refused by the swarm), so that the source may try again.
pub(crate) struct NewAddrGuard {
    addr: SocketAddr,
    new_addrs: Weak<Mutex<HashSet<SocketAddr>>>,
    attempts: Arc<AtomicUsize>,
}

impl Drop for NewAddrGuard {
    fn drop(&mut self) {
        self.attempts.fetch_sub(1, Ordering::Relaxed);
        if let Some(new_addrs) = self.new_addrs.upgrade() {
            lock(&new_addrs).remove(&self.addr);
        }
    }
}

fn lock(new_addrs: &Mutex<HashSet<SocketAddr>>) -> std::sync::MutexGuard<'_, HashSet<SocketAddr>> {
    new_addrs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handle which utilizes [`req_res_chan`] to transmit commands (e.g. remove connection) from the
/// WebRTC ICE agent to [`UDPMuxNewAddr::poll`].
pub(crate) struct UdpMuxHandle {
    close_sender: req_res_chan::Sender<(), Result<(), Error>>,
    get_conn_sender: req_res_chan::Sender<String, Result<Arc<dyn Conn + Send + Sync>, Error>>,
    remove_sender: req_res_chan::Sender<String, ()>,
}

impl UdpMuxHandle {
    /// Returns a new `UdpMuxHandle` and `close`, `get_conn` and `remove` receivers.
    pub(crate) fn new() -> (
        Self,
        req_res_chan::Receiver<(), Result<(), Error>>,
        req_res_chan::Receiver<String, Result<Arc<dyn Conn + Send + Sync>, Error>>,
        req_res_chan::Receiver<String, ()>,
    ) {
        let (sender1, receiver1) = req_res_chan::new(1);
        let (sender2, receiver2) = req_res_chan::new(1);
        let (sender3, receiver3) = req_res_chan::new(1);

        let this = Self {
            close_sender: sender1,
            get_conn_sender: sender2,
            remove_sender: sender3,
        };

        (this, receiver1, receiver2, receiver3)
    }
}

#[async_trait]
impl UDPMux for UdpMuxHandle {
    async fn close(&self) -> Result<(), Error> {
        self.close_sender
            .send(())
            .await
            .map_err(|e| Error::Io(e.into()))??;

        Ok(())
    }

    async fn get_conn(self: Arc<Self>, ufrag: &str) -> Result<Arc<dyn Conn + Send + Sync>, Error> {
        let conn = self
            .get_conn_sender
            .send(ufrag.to_owned())
            .await
            .map_err(|e| Error::Io(e.into()))??;

        Ok(conn)
    }

    async fn remove_conn_by_ufrag(&self, ufrag: &str) {
        if let Err(e) = self.remove_sender.send(ufrag.to_owned()).await {
            tracing::debug!("Failed to send message through channel: {:?}", e);
        }
    }
}

/// Handle which utilizes [`req_res_chan`] to transmit commands from [`UDPMuxConn`] connections to
/// [`UDPMuxNewAddr::poll`].
pub(crate) struct UdpMuxWriterHandle {
    registration_channel: req_res_chan::Sender<(UDPMuxConn, SocketAddr), ()>,
    send_channel: req_res_chan::Sender<(Vec<u8>, SocketAddr), Result<usize, Error>>,
}

impl UdpMuxWriterHandle {
    /// Returns a new `UdpMuxWriterHandle` and `registration`, `send` receivers.
    fn new() -> (
        Self,
        req_res_chan::Receiver<(UDPMuxConn, SocketAddr), ()>,
        req_res_chan::Receiver<(Vec<u8>, SocketAddr), Result<usize, Error>>,
    ) {
        let (sender1, receiver1) = req_res_chan::new(1);
        let (sender2, receiver2) = req_res_chan::new(1);

        let this = Self {
            registration_channel: sender1,
            send_channel: sender2,
        };

        (this, receiver1, receiver2)
    }
}

#[async_trait]
impl UDPMuxWriter for UdpMuxWriterHandle {
    async fn register_conn_for_address(&self, conn: &UDPMuxConn, addr: SocketAddr) {
        match self
            .registration_channel
            .send((conn.to_owned(), addr))
            .await
        {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!("Failed to send message through channel: {:?}", e);
                return;
            }
        }

        tracing::debug!(address=%addr, connection=%conn.key(), "Registered address for connection");
    }

    async fn send_to(&self, buf: &[u8], target: &SocketAddr) -> Result<usize, Error> {
        let bytes_written = self
            .send_channel
            .send((buf.to_owned(), target.to_owned()))
            .await
            .map_err(|e| Error::Io(e.into()))??;

        Ok(bytes_written)
    }
}

/// Gets the ufrag from the given STUN message or returns an error, if failed to decode or the
/// username attribute is not present.
fn ufrag_from_stun_message(buffer: &[u8], local_ufrag: bool) -> Result<String, Error> {
    let (result, message) = {
        let mut m = STUNMessage::new();

        (m.unmarshal_binary(buffer), m)
    };

    if let Err(err) = result {
        Err(Error::Other(format!("failed to handle decode ICE: {err}")))
    } else {
        let (attr, found) = message.attributes.get(ATTR_USERNAME);
        if !found {
            return Err(Error::Other("no username attribute in STUN message".into()));
        }

        match String::from_utf8(attr.value) {
            // Per the RFC this shouldn't happen
            // https://datatracker.ietf.org/doc/html/rfc5389#section-15.3
            Err(err) => Err(Error::Other(format!(
                "failed to decode USERNAME from STUN message as UTF-8: {err}"
            ))),
            Ok(s) => {
                // s is a combination of the local_ufrag and the remote ufrag separated by `:`.
                let res = if local_ufrag {
                    s.split(':').next()
                } else {
                    s.split(':').next_back()
                };
                match res {
                    Some(s) => Ok(s.to_owned()),
                    None => Err(Error::Other("can't get ufrag from username".into())),
                }
            }
        }
    }
}

#[derive(Error, Debug)]
enum ConnQueryError {
    #[error("ufrag is already taken (associated_addrs={associated_addrs:?})")]
    UfragAlreadyTaken { associated_addrs: Vec<SocketAddr> },
}
