//! The libp2p shell of the [`PeerManager`]: a `NetworkBehaviour` that asks
//! it about every pending and established connection, tells it about
//! closed connections and failed dials, and carries out its decisions
//! (disconnect, dial). It also keeps the peer-manager metrics:
//!
//! | metric | labels |
//! |---|---|
//! | `tiernet_connections` | `tier` (`TL0`..`TL5`, `pending`), `direction` (connected peers) |
//! | `tiernet_connections_refused_total` | `reason` (`ip_banned`, `pending_full`, `pending_per_ip`, `per_ip`, `full`, `hard_cap`) |
//! | `tiernet_connections_pruned_total` | `reason` (`tl0_quota`, `ip_banned`) |
//! | `tiernet_ip_bans_total` | — |

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll, Waker};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{
    CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tiernet_core::tier::Tier;
use tracing::{debug, info};

use super::{Action, Direction, PeerManager, PeerManagerConfig, Refusal};
use crate::node::now_ms;

/// Most queued swarm commands (disconnects and dials); beyond it the oldest
/// are dropped (the next tick decides again).
const MAX_QUEUED: usize = 1024;

/// Labels of the connections gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// `TL0`..`TL5`, or `pending`.
    pub tier: &'static str,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
}

/// Labels of a refusal or pruning counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// The peer manager's metrics.
#[derive(Debug, Default, Clone)]
pub struct PeerMetrics {
    /// Connected peers by tier and direction.
    pub connections: Family<ClassLabels, Gauge>,
    /// Refused connections by reason.
    pub refused: Family<ReasonLabels, Counter>,
    /// Pruned peers by reason.
    pub pruned: Family<ReasonLabels, Counter>,
    /// IPs banned.
    pub ip_bans: Counter,
}

impl PeerMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "connections",
            "Connected peers by tier (pending before the handshake) and direction",
            metrics.connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused by the peer manager, by reason",
            metrics.refused.clone(),
        );
        registry.register(
            "connections_pruned",
            "Peers disconnected by the peer manager, by reason",
            metrics.pruned.clone(),
        );
        registry.register(
            "ip_bans",
            "IP addresses banned after repeated bans",
            metrics.ip_bans.clone(),
        );
        metrics
    }
}

/// The behaviour around the [`PeerManager`].
#[derive(Debug)]
pub struct Gate {
    manager: PeerManager,
    metrics: PeerMetrics,
    queue: VecDeque<ToSwarm<Infallible, Infallible>>,
    waker: Option<Waker>,
}

impl Gate {
    /// A gate for a manager with `config`, counting into `metrics`.
    pub fn new(config: PeerManagerConfig, metrics: PeerMetrics) -> Self {
        Self {
            manager: PeerManager::new(config),
            metrics,
            queue: VecDeque::new(),
            waker: None,
        }
    }

    /// The manager (read-only).
    pub fn manager(&self) -> &PeerManager {
        &self.manager
    }

    /// See [`PeerManager::add_validator`].
    pub fn add_validator(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        self.manager.add_validator(peer, addrs);
    }

    /// See [`PeerManager::on_hello`].
    pub fn on_hello(&mut self, peer: PeerId, tier: Tier, validator: bool, addrs: &[Multiaddr], now: u64) {
        let actions = self.manager.on_hello(peer, tier, validator, addrs, now);
        self.carry_out(actions);
    }

    /// See [`PeerManager::mark_useful`].
    pub fn mark_useful(&mut self, peer: &PeerId) {
        self.manager.mark_useful(peer);
    }

    /// See [`PeerManager::on_peer_banned`].
    pub fn on_peer_banned(&mut self, peer: &PeerId, now: u64) {
        let actions = self.manager.on_peer_banned(peer, now);
        self.carry_out(actions);
    }

    /// The periodic step (see [`PeerManager::tick`]); also refreshes the
    /// connections gauge.
    pub fn tick(&mut self, now: u64, candidates: &[(PeerId, Vec<Multiaddr>)]) {
        let actions = self.manager.tick(now, candidates);
        self.carry_out(actions);
        self.metrics.connections.clear();
        for (class, count) in self.manager.classes() {
            self.metrics
                .connections
                .get_or_create(&ClassLabels {
                    tier: class.tier,
                    direction: class.direction,
                })
                .set(count);
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            let command = match action {
                Action::Disconnect { peer, reason } => {
                    info!(%peer, reason = reason.label(), "peer manager: disconnecting");
                    self.metrics
                        .pruned
                        .get_or_create(&ReasonLabels { reason: reason.label() })
                        .inc();
                    if reason == super::PruneReason::IpBanned {
                        self.metrics.ip_bans.inc();
                    }
                    ToSwarm::CloseConnection {
                        peer_id: peer,
                        connection: CloseConnection::All,
                    }
                }
                Action::Dial { peer, addrs } => {
                    debug!(%peer, addresses = addrs.len(), "peer manager: redialling");
                    ToSwarm::Dial {
                        opts: DialOpts::peer_id(peer).addresses(addrs).build(),
                    }
                }
            };
            if self.queue.len() >= MAX_QUEUED {
                self.queue.pop_front();
            }
            self.queue.push_back(command);
        }
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn refuse(&self, refusal: Refusal, remote: &Multiaddr) -> ConnectionDenied {
        debug!(%remote, reason = refusal.label(), "peer manager: connection refused");
        self.metrics
            .refused
            .get_or_create(&ReasonLabels {
                reason: refusal.label(),
            })
            .inc();
        ConnectionDenied::new(refusal)
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.manager
            .on_pending_inbound(connection_id, remote_addr, now_ms())
            .map_err(|r| self.refuse(r, remote_addr))
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.manager
            .on_established(connection_id, peer, remote_addr, Direction::Inbound, now_ms())
            .map_err(|r| self.refuse(r, remote_addr))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.manager
            .on_established(connection_id, peer, addr, Direction::Outbound, now_ms())
            .map_err(|r| self.refuse(r, addr))?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.manager.on_closed(connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.manager.on_connection_failed(connection_id);
            }
            FromSwarm::DialFailure(DialFailure {
                connection_id, peer_id, ..
            }) => {
                self.manager.on_connection_failed(connection_id);
                if let Some(peer) = peer_id
                    && !self.manager.is_connected(&peer)
                {
                    self.manager.on_dial_failed(peer, now_ms());
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.queue.pop_front() {
            Some(command) => Poll::Ready(command),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
