//! How the light client reaches full nodes: the [`Transport`] trait, and
//! [`Libp2pTransport`], a libp2p swarm (Noise XX, Yamux; GossipSub on
//! `blocks`; `/tiernet/sync/1` requests) over TCP natively and over
//! WebSocket and WebRTC-direct in a browser (wasm32).
//!
//! The client joins as TL0: it sends no handshake Hello (full nodes treat
//! such a peer as TL0), publishes nothing, and only subscribes to `blocks`
//! and asks sync questions.
//!
//! GossipSub runs with validation on (`validate_messages`): nothing is
//! forwarded until the client says so ([`Transport::report_gossip`]), and
//! the client accepts only blocks it verified. Bytes that do not decode are
//! rejected here and reported ([`TransportEvent::Garbage`]) so the client
//! blames the peer; other kinds (proposals, which a light client cannot
//! judge) are ignored. Events are never dropped: a full event channel makes
//! the swarm task wait (the client's loop never waits, so it drains it).

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
pub use libp2p::gossipsub::MessageId;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Swarm, noise, yamux};
use tiernet_core::wire::proto::{self, blocks_message};
use tiernet_core::wire::sign::message_id;
use tiernet_core::wire::{NetworkId, Topic, decode};
use tiernet_protocol::{SYNC_PROTOCOL, SyncCodec};
use tokio::sync::{mpsc, oneshot};

pub use libp2p::{Multiaddr, PeerId};

/// How long one sync request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Capacity of the command and event channels.
pub const CHANNEL_CAPACITY: usize = 256;
/// Sync requests in flight at once (more wait in the command channel).
pub const MAX_IN_FLIGHT: usize = 64;
/// How long a connection with nothing in flight stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most peers remembered as disconnected for good.
pub const MAX_BANNED: usize = 1024;

/// A transport failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The transport's task has stopped.
    #[error("the transport has stopped")]
    Stopped,
    /// The request failed on the way (no connection, timeout, stream error).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// A bootstrap address cannot be used.
    #[error("bad address {address}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The transport could not be built.
    #[error("transport setup: {0}")]
    Setup(String),
}

/// What the transport reports.
#[derive(Debug, Clone)]
pub enum TransportEvent {
    /// A connection to `peer` is up (one event per connection).
    Connected {
        /// The peer.
        peer: PeerId,
        /// The connection's remote address (says which transport).
        address: Multiaddr,
    },
    /// A connection to `peer` closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// The connection's remote address.
        address: Multiaddr,
        /// Connections to `peer` still open.
        remaining: u32,
    },
    /// A dial failed.
    DialFailed {
        /// The peer dialled, when known.
        peer: Option<PeerId>,
        /// Why.
        reason: String,
    },
    /// A finalized block arrived on `blocks` (not verified yet) from a
    /// transport that does not validate gossip.
    Block {
        /// The peer that forwarded it.
        from: PeerId,
        /// The block and its commit.
        block: Box<proto::FinalizedBlock>,
    },
    /// A finalized block arrived on `blocks`, held by GossipSub until the
    /// client reports a verdict ([`Transport::report_gossip`] with `id`).
    Gossip {
        /// The peer that forwarded it (the propagation source).
        from: PeerId,
        /// GossipSub's id of the message.
        id: MessageId,
        /// The block and its commit.
        block: Box<proto::FinalizedBlock>,
    },
    /// `from` forwarded bytes on `blocks` that are invalid for everyone
    /// (they do not decode); GossipSub rejected them already.
    Garbage {
        /// The propagation source.
        from: PeerId,
        /// What is wrong.
        reason: String,
    },
}

/// What the light client needs from a network.
pub trait Transport: Send + Sync + 'static {
    /// Sends a sync request to `peer` and waits for its answer.
    fn request(
        &self,
        peer: PeerId,
        request: proto::SyncRequest,
    ) -> BoxFuture<'static, Result<proto::SyncResponse, TransportError>>;
    /// The transport's events; `None` after the first call (one consumer).
    fn events(&mut self) -> Option<BoxStream<'static, TransportEvent>>;
    /// Drops every connection to `peer` and does not dial it again.
    fn disconnect(&self, peer: PeerId);
    /// This client's own PeerId on the network, when it has one.
    fn local_peer_id(&self) -> Option<PeerId> {
        None
    }
    /// Dials `address` (multiaddr with `/p2p/<peer id>`); the outcome comes
    /// as an event. The default does nothing (fixed peers).
    fn dial(&self, address: Multiaddr) {
        let _ = address;
    }
    /// The client's verdict on a [`TransportEvent::Gossip`] message: only
    /// `Accept` forwards it. The default does nothing.
    fn report_gossip(&self, id: MessageId, from: PeerId, verdict: GossipVerdict) {
        let _ = (id, from, verdict);
    }
}

pub use crate::sync::GossipVerdict;

#[derive(NetworkBehaviour)]
struct Behaviour {
    sync: request_response::Behaviour<SyncCodec>,
    gossipsub: gossipsub::Behaviour,
}

enum Command {
    Request {
        peer: PeerId,
        request: proto::SyncRequest,
        reply: oneshot::Sender<Result<proto::SyncResponse, TransportError>>,
    },
    Disconnect(PeerId),
    Dial(Multiaddr),
    Report(MessageId, PeerId, GossipVerdict),
}

/// The native transport: a libp2p swarm on a tokio task.
pub struct Libp2pTransport {
    local: PeerId,
    commands: mpsc::Sender<Command>,
    events: Option<mpsc::Receiver<TransportEvent>>,
}

impl std::fmt::Debug for Libp2pTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libp2pTransport").finish_non_exhaustive()
    }
}

impl Libp2pTransport {
    /// Starts a swarm with a fresh key and dials `bootstrap` (multiaddrs
    /// ending in `/p2p/<peer id>`: TCP natively; `/ws` and
    /// `/webrtc-direct/certhash/…` in a browser). Natively it must run
    /// inside a tokio runtime.
    pub fn start(network: &NetworkId, bootstrap: &[String]) -> Result<Self, TransportError> {
        let addrs = bootstrap
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>().map_err(|e| TransportError::Address {
                    address: a.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(TransportError::Setup("no bootstrap address".into()));
        }
        let topic = IdentTopic::new(Topic::Blocks.topic_string(network));
        let mut swarm = build_swarm()?;
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| TransportError::Setup(e.to_string()))?;
        for addr in addrs {
            swarm.dial(addr.clone()).map_err(|e| TransportError::Address {
                address: addr.to_string(),
                reason: e.to_string(),
            })?;
        }
        let (commands, command_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (event_tx, events) = mpsc::channel(CHANNEL_CAPACITY);
        let local = *swarm.local_peer_id();
        crate::rt::spawn(run(swarm, command_rx, event_tx));
        Ok(Self {
            local,
            commands,
            events: Some(events),
        })
    }
}

fn behaviour(key: &libp2p::identity::Keypair) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        // Nothing is forwarded before the client's verdict (report_gossip).
        .validate_messages()
        .message_id_fn(|m| MessageId::from(message_id(&m.data).as_bytes().to_vec()))
        .max_transmit_size(<proto::BlocksMessage as tiernet_core::wire::WireMessage>::MAX_SIZE + 4096)
        .build()?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
    let sync = request_response::Behaviour::new(
        [(SYNC_PROTOCOL, ProtocolSupport::Outbound)],
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
    );
    Ok(Behaviour { sync, gossipsub })
}

fn setup_error(error: impl std::fmt::Display) -> TransportError {
    TransportError::Setup(error.to_string())
}

/// The native swarm: TCP (with `/dns4`, `/dns6` and `/dns` names resolved
/// by the system resolver), Noise, Yamux on tokio.
#[cfg(not(target_arch = "wasm32"))]
fn build_swarm() -> Result<Swarm<Behaviour>, TransportError> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup_error)?
        .with_dns()
        .map_err(setup_error)?
        .with_behaviour(behaviour)
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build())
}

/// The browser swarm: WebSocket (Noise, Yamux) and WebRTC-direct (which
/// brings its own encryption and multiplexing).
#[cfg(target_arch = "wasm32")]
fn build_swarm() -> Result<Swarm<Behaviour>, TransportError> {
    use libp2p::Transport as _;
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                libp2p::websocket_websys::Transport::default()
                    .map(|connection, _| browser::FlushOnSend(connection))
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(setup_error)?
        .with_other_transport(|key| libp2p::webrtc_websys::Transport::new(libp2p::webrtc_websys::Config::new(key)))
        .map_err(setup_error)?
        .with_behaviour(behaviour)
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build())
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::{AsyncRead, AsyncWrite};

    /// A browser WebSocket whose flush is done once the bytes are handed to
    /// `WebSocket.send`.
    ///
    /// `libp2p-websocket-websys` answers a flush with `Pending` until the
    /// socket's `bufferedAmount` is 0 and only looks again on a 100 ms
    /// interval, so every flushed handshake message (multistream-select,
    /// each Noise message, Yamux) waited up to 100 ms: ~400 ms per
    /// connection on loopback, most of a cold or warm start. The browser
    /// sends what `send` accepted on its own, so nothing is lost by not
    /// waiting; backpressure stays, as `poll_write` still refuses bytes
    /// beyond the transport's buffer limit.
    pub(super) struct FlushOnSend<C>(pub(super) C);

    impl<C: AsyncRead + Unpin> AsyncRead for FlushOnSend<C> {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<C: AsyncWrite + Unpin> AsyncWrite for FlushOnSend<C> {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_close(cx)
        }
    }
}

impl Transport for Libp2pTransport {
    fn request(
        &self,
        peer: PeerId,
        request: proto::SyncRequest,
    ) -> BoxFuture<'static, Result<proto::SyncResponse, TransportError>> {
        let commands = self.commands.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            commands
                .send(Command::Request { peer, request, reply })
                .await
                .map_err(|_| TransportError::Stopped)?;
            answer.await.map_err(|_| TransportError::Stopped)?
        })
    }

    fn events(&mut self) -> Option<BoxStream<'static, TransportEvent>> {
        let events = self.events.take()?;
        Some(Box::pin(futures::stream::unfold(events, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.commands.try_send(Command::Disconnect(peer));
    }

    fn local_peer_id(&self) -> Option<PeerId> {
        Some(self.local)
    }

    fn dial(&self, address: Multiaddr) {
        let _ = self.commands.try_send(Command::Dial(address));
    }

    fn report_gossip(&self, id: MessageId, from: PeerId, verdict: GossipVerdict) {
        let _ = self.commands.try_send(Command::Report(id, from, verdict));
    }
}

type Pending = HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<proto::SyncResponse, TransportError>>)>;

/// What woke the transport's task.
enum Wake {
    Command(Option<Command>),
    Swarm(Box<SwarmEvent<BehaviourEvent>>),
}

async fn run(mut swarm: Swarm<Behaviour>, mut commands: mpsc::Receiver<Command>, events: mpsc::Sender<TransportEvent>) {
    let mut pending: Pending = HashMap::new();
    let mut banned: std::collections::HashSet<PeerId> = std::collections::HashSet::new();
    loop {
        let accepting = pending.len() < MAX_IN_FLIGHT;
        let wake = {
            let command = async {
                match accepting {
                    true => commands.recv().await,
                    false => std::future::pending().await,
                }
            };
            futures::select! {
                command = command.fuse() => Wake::Command(command),
                event = swarm.select_next_some() => Wake::Swarm(Box::new(event)),
            }
        };
        let event = match wake {
            Wake::Command(None) => return,
            Wake::Command(Some(Command::Request { peer, request, reply })) => {
                let id = swarm.behaviour_mut().sync.send_request(&peer, request);
                pending.insert(id, (peer, reply));
                continue;
            }
            Wake::Command(Some(Command::Disconnect(peer))) => {
                if banned.len() < MAX_BANNED {
                    banned.insert(peer);
                }
                let _ = swarm.disconnect_peer_id(peer);
                continue;
            }
            Wake::Command(Some(Command::Dial(address))) => {
                let peer = address.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                    _ => None,
                });
                if peer.is_some_and(|p| banned.contains(&p) || swarm.is_connected(&p)) {
                    continue;
                }
                if let Err(error) = swarm.dial(address) {
                    let out = TransportEvent::DialFailed {
                        peer,
                        reason: error.to_string(),
                    };
                    if events.send(out).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Wake::Command(Some(Command::Report(id, from, verdict))) => {
                let acceptance = match verdict {
                    GossipVerdict::Accept => gossipsub::MessageAcceptance::Accept,
                    GossipVerdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    GossipVerdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance);
                continue;
            }
            Wake::Swarm(event) => *event,
        };
        let out = match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                if banned.contains(&peer_id) {
                    let _ = swarm.disconnect_peer_id(peer_id);
                    None
                } else {
                    Some(TransportEvent::Connected {
                        peer: peer_id,
                        address: endpoint.get_remote_address().clone(),
                    })
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                ..
            } => Some(TransportEvent::Disconnected {
                peer: peer_id,
                address: endpoint.get_remote_address().clone(),
                remaining: num_established,
            }),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => Some(TransportEvent::DialFailed {
                peer: peer_id,
                reason: error.to_string(),
            }),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            })) => {
                if let Some((_, reply)) = pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            })) => {
                if let Some((_, reply)) = pending.remove(&request_id) {
                    let _ = reply.send(Err(TransportError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let gossip = &mut swarm.behaviour_mut().gossipsub;
                let mut verdict = |acceptance| {
                    gossip.report_message_validation_result(&message_id, &propagation_source, acceptance);
                };
                match decode::<proto::BlocksMessage>(&message.data) {
                    _ if banned.contains(&propagation_source) => {
                        verdict(gossipsub::MessageAcceptance::Ignore);
                        None
                    }
                    Err(error) => {
                        // Invalid for everyone: rejected, and the client blames the peer.
                        verdict(gossipsub::MessageAcceptance::Reject);
                        Some(TransportEvent::Garbage {
                            from: propagation_source,
                            reason: format!("undecodable message on blocks: {error}"),
                        })
                    }
                    Ok(proto::BlocksMessage {
                        kind: Some(blocks_message::Kind::Finalized(block)),
                    }) => Some(TransportEvent::Gossip {
                        from: propagation_source,
                        id: message_id,
                        block: Box::new(block),
                    }),
                    // Proposals and the like: a light client cannot judge them.
                    Ok(_) => {
                        verdict(gossipsub::MessageAcceptance::Ignore);
                        None
                    }
                }
            }
            _ => None,
        };
        if let Some(out) = out {
            // Never dropped: a full queue makes this task wait for the
            // client's loop, which never waits itself.
            if events.send(out).await.is_err() {
                return;
            }
        }
    }
}
