//! The running node: its key, its swarm and the event loop.
//!
//! [`Node::new`] loads (or on first start creates) the node key, reports the
//! PeerId, builds the swarm (TCP, Noise XX, Yamux) and opens the listeners;
//! [`Node::run`] dials the bootstrap peers and drives the swarm until the
//! shutdown future completes, then closes the listeners and connections.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identify, noise, ping, tcp, yamux};
use tiernet_core::identity::{KeyFileError, KeyOrigin, NodeKeypair};
use tracing::{debug, info, trace, warn};

use crate::behaviour::{Behaviour, BehaviourEvent, Limits};
use crate::config::ValidConfig;
use crate::output::{Report, Reporter};

/// How long shutdown waits for listeners and connections to close cleanly
/// before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A node that could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// [`Node::new`] was called outside a Tokio runtime.
    #[error("the node must be started from within a Tokio runtime")]
    NoRuntime,
    /// The node key could not be loaded or created; the message names the
    /// file, and a corrupt file was left untouched.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The TCP/Noise/Yamux transport could not be built.
    #[error("cannot set up the TCP transport with Noise")]
    Transport(#[source] noise::Error),
    /// A configured listen address could not be opened.
    #[error("cannot listen on {addr} (from listen.tcp or --listen): {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why, e.g. the address is in use.
        reason: String,
    },
}

/// A tiernet full node.
pub struct Node {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    config: ValidConfig,
    reporter: Reporter,
    listeners: HashSet<ListenerId>,
    shutting_down: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .field("network_id", &self.config.network_id)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Loads or creates the node key (`<data_dir>/node_key`), reports
    /// `peer_id:`, builds the swarm and opens every configured listener.
    /// Must be called from within a Tokio runtime.
    pub fn new(config: ValidConfig, reporter: Reporter) -> Result<Self, NodeError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NodeError::NoRuntime);
        }
        let key_path = config.node_key_path();
        let (key, origin) = NodeKeypair::load_or_create(&key_path)?;
        let peer_id = key.peer_id();
        match origin {
            KeyOrigin::Created => info!(%peer_id, path = %key_path.display(), "created a new node key"),
            KeyOrigin::Loaded => info!(%peer_id, path = %key_path.display(), "loaded the node key"),
        }
        reporter.report(Report::PeerId(peer_id));

        let limits = Limits {
            max_connections: config.max_connections,
            max_connections_per_peer: config.max_connections_per_peer,
        };
        let idle = config.idle_connection_timeout;
        let Ok(builder) = SwarmBuilder::with_existing_identity(key.to_libp2p())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(NodeError::Transport)?
            .with_behaviour(|key| Behaviour::new(key.public(), limits));
        let swarm = builder
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();

        let mut node = Self {
            swarm,
            peer_id,
            config,
            reporter,
            listeners: HashSet::new(),
            shutting_down: false,
        };
        // libp2p-tcp binds its listeners with SO_REUSEPORT, so a port that
        // another process (e.g. a second node) listens on would be shared
        // silently. Probe each fixed port with a plain bind first, before any
        // of our own listeners exist, to turn that into an error.
        for addr in &node.config.listen_tcp {
            probe_tcp_port(addr).map_err(|e| NodeError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        }
        for addr in node.config.listen_tcp.clone() {
            let id = node.swarm.listen_on(addr.clone()).map_err(|e| NodeError::Listen {
                reason: transport_error_reason(&e),
                addr,
            })?;
            node.listeners.insert(id);
        }
        if node.config.listen_tcp.is_empty() {
            warn!("no listen addresses configured: this node only dials out");
        }
        Ok(node)
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Dials the bootstrap peers, then drives the swarm until `shutdown`
    /// completes; then closes the listeners and connections (waiting at most
    /// [`SHUTDOWN_GRACE`]) and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        info!(peer_id = %self.peer_id, network_id = %self.config.network_id, "node running");
        for (peer, addr) in self.config.bootstrap.clone() {
            if peer == self.peer_id {
                warn!(%addr, "bootstrap address is this node itself; skipped");
                continue;
            }
            let opts = DialOpts::peer_id(peer).addresses(vec![addr.clone()]).build();
            match self.swarm.dial(opts) {
                Ok(()) => info!(%peer, %addr, "dialing bootstrap peer"),
                Err(e) => warn!(%peer, %addr, error = %e, "cannot dial bootstrap peer"),
            }
        }

        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                event = futures::StreamExt::select_next_some(&mut self.swarm) => self.handle_event(event),
            }
        }
        info!("shutting down");
        self.close().await;
        info!("shut down");
        Ok(())
    }

    /// Closes the listeners and connections and drives the swarm until they
    /// are gone or [`SHUTDOWN_GRACE`] has passed.
    async fn close(&mut self) {
        self.shutting_down = true;
        for id in self.listeners.iter().copied().collect::<Vec<_>>() {
            self.swarm.remove_listener(id);
        }
        for peer in self.swarm.connected_peers().copied().collect::<Vec<_>>() {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let deadline = tokio::time::sleep(SHUTDOWN_GRACE);
        let mut deadline = std::pin::pin!(deadline);
        while !self.listeners.is_empty() || self.swarm.network_info().connection_counters().num_established() > 0 {
            tokio::select! {
                () = &mut deadline => {
                    warn!(
                        listeners = self.listeners.len(),
                        connections = self.swarm.network_info().connection_counters().num_established(),
                        "listeners or connections did not close in time; dropping them"
                    );
                    break;
                }
                event = futures::StreamExt::select_next_some(&mut self.swarm) => self.handle_event(event),
            }
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with_p2p(self.peer_id).unwrap_or_else(|a| a);
                info!(address = %full, "listening");
                self.reporter.report(Report::Listening(full));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => info!(%address, "listen address expired"),
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                self.listeners.remove(&listener_id);
                let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                match reason {
                    Ok(()) => debug!(?addresses, "listener closed"),
                    Err(e) => warn!(?addresses, error = %e, "listener failed"),
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                warn!(?listener_id, error = %error, "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                info!(
                    peer = %peer_id,
                    address = %endpoint.get_remote_address(),
                    direction = if endpoint.is_dialer() { "outbound" } else { "inbound" },
                    connections = num_established.get(),
                    "connection established"
                );
                if num_established.get() == 1 {
                    self.reporter.report(Report::Connected(peer_id));
                }
                if self.shutting_down {
                    self.swarm.close_connection(connection_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                cause,
                ..
            } => {
                let cause = cause.map_or_else(|| "closed".to_owned(), |e| e.to_string());
                info!(
                    peer = %peer_id,
                    address = %endpoint.get_remote_address(),
                    connections = num_established,
                    %cause,
                    "connection closed"
                );
                if num_established == 0 {
                    self.reporter.report(Report::Disconnected(peer_id));
                }
            }
            SwarmEvent::IncomingConnection { send_back_addr, .. } => {
                debug!(from = %send_back_addr, "incoming connection");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr, error, ..
            } => match error {
                ListenError::Denied { cause } => info!(from = %send_back_addr, %cause, "incoming connection denied"),
                error => info!(from = %send_back_addr, error = %error, "incoming connection failed"),
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                warn!(peer = ?peer_id, error = %error, "outgoing connection failed");
            }
            SwarmEvent::Dialing { peer_id, .. } => debug!(peer = ?peer_id, "dialing"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => handle_identify(*event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => handle_ping(event),
            other => trace!(event = ?other, "swarm event"),
        }
    }
}

fn handle_identify(event: identify::Event) {
    match event {
        identify::Event::Received { peer_id, info, .. } => info!(
            peer = %peer_id,
            agent = %info.agent_version,
            protocol = %info.protocol_version,
            "peer identified"
        ),
        identify::Event::Error { peer_id, error, .. } => debug!(peer = %peer_id, error = %error, "identify failed"),
        other => trace!(event = ?other, "identify"),
    }
}

fn handle_ping(event: ping::Event) {
    match event.result {
        Ok(rtt) => trace!(peer = %event.peer, ?rtt, "ping"),
        Err(e) => debug!(peer = %event.peer, error = %e, "ping failed"),
    }
}

/// The error text of a transport error (whose own Display is empty for I/O
/// errors).
fn transport_error_reason(error: &libp2p::TransportError<std::io::Error>) -> String {
    match error {
        libp2p::TransportError::MultiaddrNotSupported(_) => "no transport supports this address".to_owned(),
        libp2p::TransportError::Other(e) => e.to_string(),
    }
}

/// Binds and at once drops a plain socket on a `/ip4|ip6/<ip>/tcp/<port>`
/// address with a fixed port: fails with "address in use" if anything
/// listens there already. Port 0 and other addresses pass.
fn probe_tcp_port(addr: &Multiaddr) -> std::io::Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => std::net::TcpListener::bind((ip, port)).map(drop),
        _ => Ok(()),
    }
}
