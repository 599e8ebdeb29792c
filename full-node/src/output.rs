//! The machine-readable output contract: one line per report on stdout,
//! flushed at once. Tests and tooling parse these lines; logs go to stderr.
//!
//! | line | when |
//! |---|---|
//! | `peer_id: <PeerId>` | once, as soon as the node key is loaded or created |
//! | `listening: <multiaddr>/p2p/<PeerId>` | for every new listen address |
//! | `connected: <PeerId>` | when the first connection to a peer is established |
//! | `disconnected: <PeerId>` | when the last connection to a peer has closed |
//! | `zsi_id: <hex>` | once, when the node has a ZSI identity |
//! | `handshake: <PeerId> <tier> <zsi hex or ->` | when a peer's Hello verified |
//! | `telemetry: http://<ip:port>` | when the telemetry endpoint is up |
//!
//! Lines are only ever added to this contract, never changed.

use std::fmt;
use std::io::Write;

use libp2p::{Multiaddr, PeerId};
use tiernet_core::identity::ZsiId;
use tiernet_core::tier::Tier;
use tokio::sync::mpsc;

/// One line of the output contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `peer_id: <PeerId>`: this node's identity.
    PeerId(PeerId),
    /// `listening: <multiaddr>`: a dialable address, ending in `/p2p/<PeerId>`.
    Listening(Multiaddr),
    /// `connected: <PeerId>`: the first connection to this peer is up.
    Connected(PeerId),
    /// `disconnected: <PeerId>`: no connection to this peer is left.
    Disconnected(PeerId),
    /// `zsi_id: <hex>`: this node's ZSI identity.
    ZsiId(ZsiId),
    /// `handshake: <PeerId> <tier> <zsi or ->`: a peer's Hello verified.
    Handshake {
        /// The peer.
        peer: PeerId,
        /// Its tier from the registry.
        tier: Tier,
        /// Its proven ZSI.
        zsi_id: Option<ZsiId>,
    },
    /// `telemetry: http://<addr>`: the telemetry endpoint is serving.
    Telemetry(std::net::SocketAddr),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::PeerId(peer) => write!(f, "peer_id: {peer}"),
            Report::Listening(addr) => write!(f, "listening: {addr}"),
            Report::Connected(peer) => write!(f, "connected: {peer}"),
            Report::Disconnected(peer) => write!(f, "disconnected: {peer}"),
            Report::ZsiId(zsi) => write!(f, "zsi_id: {zsi}"),
            Report::Handshake { peer, tier, zsi_id } => match zsi_id {
                Some(zsi) => write!(f, "handshake: {peer} {tier} {zsi}"),
                None => write!(f, "handshake: {peer} {tier} -"),
            },
            Report::Telemetry(addr) => write!(f, "telemetry: http://{addr}"),
        }
    }
}

/// Where reports go.
#[derive(Debug, Clone, Default)]
pub enum Reporter {
    /// Print to stdout, one line each, flushed (the binary).
    #[default]
    Stdout,
    /// Send into a bounded channel (in-process embedding and tests). A full or
    /// closed channel drops the report with a warning rather than stalling
    /// the node.
    Channel(mpsc::Sender<Report>),
    /// Discard.
    Silent,
}

impl Reporter {
    /// Emits one report.
    pub fn report(&self, report: Report) {
        match self {
            Reporter::Stdout => {
                let mut out = std::io::stdout().lock();
                if let Err(e) = writeln!(out, "{report}").and_then(|()| out.flush()) {
                    tracing::warn!(%report, error = %e, "cannot write report to stdout");
                }
            }
            Reporter::Channel(sender) => {
                if let Err(e) = sender.try_send(report) {
                    tracing::warn!(error = %e, "report dropped: channel full or closed");
                }
            }
            Reporter::Silent => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape() {
        let peer = PeerId::random();
        assert_eq!(Report::PeerId(peer).to_string(), format!("peer_id: {peer}"));
        assert_eq!(Report::Connected(peer).to_string(), format!("connected: {peer}"));
        assert_eq!(Report::Disconnected(peer).to_string(), format!("disconnected: {peer}"));
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/7700/p2p/{peer}").parse().unwrap();
        assert_eq!(
            Report::Listening(addr).to_string(),
            format!("listening: /ip4/127.0.0.1/tcp/7700/p2p/{peer}")
        );
    }
}
