//! How the light client reaches full nodes: the [`Transport`] trait, and
//! [`Libp2pTransport`], the native one (TCP, Noise XX, Yamux; GossipSub on
//! `blocks`; `/tiernet/sync/1` requests).
//!
//! The client joins as TL0: it sends no handshake Hello (full nodes treat
//! such a peer as TL0), publishes nothing, and only subscribes to `blocks`
//! and asks sync questions. A browser build supplies its own transport
//! (WebSocket, WebRTC-direct) behind the same trait.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Swarm, noise, tcp, yamux};
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
    /// A connection to `peer` is up.
    Connected(PeerId),
    /// The last connection to `peer` closed.
    Disconnected(PeerId),
    /// A finalized block arrived on `blocks` (not verified yet).
    Block {
        /// The peer that forwarded it.
        from: PeerId,
        /// The block and its commit.
        block: Box<proto::FinalizedBlock>,
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
}

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
}

/// The native transport: a libp2p swarm on a tokio task.
pub struct Libp2pTransport {
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
    /// ending in `/p2p/<peer id>`). Must run inside a tokio runtime.
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
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .map_err(|e| TransportError::Setup(e.to_string()))?
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .validation_mode(ValidationMode::Strict)
                    .message_id_fn(|m| MessageId::from(message_id(&m.data).as_bytes().to_vec()))
                    .max_transmit_size(<proto::BlocksMessage as tiernet_core::wire::WireMessage>::MAX_SIZE + 4096)
                    .build()
                    .map_err(|e| e.to_string())?;
                let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
                let sync = request_response::Behaviour::new(
                    [(SYNC_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                Ok(Behaviour { sync, gossipsub })
            })
            .map_err(|e| TransportError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
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
        tokio::spawn(run(swarm, command_rx, event_tx));
        Ok(Self {
            commands,
            events: Some(events),
        })
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
}

type Pending = HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<proto::SyncResponse, TransportError>>)>;

async fn run(mut swarm: Swarm<Behaviour>, mut commands: mpsc::Receiver<Command>, events: mpsc::Sender<TransportEvent>) {
    let mut pending: Pending = HashMap::new();
    let mut banned: std::collections::HashSet<PeerId> = std::collections::HashSet::new();
    loop {
        tokio::select! {
            command = commands.recv(), if pending.len() < MAX_IN_FLIGHT => match command {
                None => return,
                Some(Command::Request { peer, request, reply }) => {
                    let id = swarm.behaviour_mut().sync.send_request(&peer, request);
                    pending.insert(id, (peer, reply));
                }
                Some(Command::Disconnect(peer)) => {
                    banned.insert(peer);
                    let _ = swarm.disconnect_peer_id(peer);
                }
            },
            event = swarm.select_next_some() => {
                let out = match event {
                    SwarmEvent::ConnectionEstablished { peer_id, num_established, .. } => {
                        if banned.contains(&peer_id) {
                            let _ = swarm.disconnect_peer_id(peer_id);
                            None
                        } else if num_established.get() == 1 {
                            Some(TransportEvent::Connected(peer_id))
                        } else {
                            None
                        }
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        Some(TransportEvent::Disconnected(peer_id))
                    }
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
                        request_id, error, peer, ..
                    })) => {
                        if let Some((_, reply)) = pending.remove(&request_id) {
                            let _ = reply.send(Err(TransportError::Request { peer, reason: error.to_string() }));
                        }
                        None
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                        propagation_source, message, ..
                    })) => decode::<proto::BlocksMessage>(&message.data)
                        .ok()
                        .and_then(|m| match m.kind {
                            Some(blocks_message::Kind::Finalized(block)) if !banned.contains(&propagation_source) => {
                                Some(TransportEvent::Block { from: propagation_source, block: Box::new(block) })
                            }
                            _ => None,
                        }),
                    _ => None,
                };
                if let Some(out) = out {
                    // A full event queue drops the event (the client re-syncs
                    // from chain proofs); it never blocks the swarm.
                    if events.try_send(out).is_err() && events.is_closed() {
                        return;
                    }
                }
            }
        }
    }
}
