//! Adversaries that are plain rust-libp2p GossipSub peers (no tiernet
//! node behind them), built with the node's own GossipSub configuration
//! (`tiernet_node::gossip::behaviour`) so they look like any TL0 peer:
//!
//! - never-forward: subscribes, takes mesh slots, never validates a
//!   message, so GossipSub never forwards one for it (the CVE-2022-47547
//!   pattern);
//! - flood: publishes observer heartbeats at `rate_per_s` (ten times what
//!   a peer may relay on `meta`) from `turn_at_s`;
//! - sybil: accepts and forwards every message until `turn_at_s`; then
//!   all drop their connections at once, reconnect, and publish invalid
//!   bytes on `blocks` at `rate_per_s`;
//! - slots: fresh identities that dial their target from `turn_at_s`, send
//!   no Hello and nothing else, and redial at `rate_per_s` whenever they
//!   are not connected (the peer manager's TL0 quota, pending-handshake
//!   limit and Hello deadline are what stops them).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tiernet_core::wire::{NetworkId, Topic};
use tiernet_node::gossip::Topics;
use tiernet_node::node::now_ms;
use tokio::sync::watch;

use crate::link::{SimNet, SimTransport};
use crate::scenario::{Adversary, AdversaryKind, Scenario};

/// A running raw adversary.
pub struct RawPeer {
    stop: watch::Sender<bool>,
}

impl RawPeer {
    /// Stops it (its connections close).
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts adversary `index` of kind `adversary.kind`, dialing `targets`.
pub fn spawn(
    net: Arc<SimNet>,
    index: usize,
    key: libp2p::identity::Keypair,
    scenario: &Scenario,
    adversary: &Adversary,
    targets: Vec<(PeerId, Multiaddr)>,
    start_ms: u64,
) -> Result<RawPeer> {
    let network = NetworkId::new(&format!("sim-{}", scenario.name)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let topics = Topics::new(&network);
    let swarm = build_swarm(&net, index, &key, &topics)?;
    let (stop, stopped) = watch::channel(false);
    let kind = adversary.kind;
    let turn_at_ms = start_ms + adversary.turn_at_s * 1000;
    let rate = adversary.rate_per_s.max(0.1);
    tokio::spawn(drive(
        swarm, net, index, key, topics, network, kind, turn_at_ms, rate, targets, stopped,
    ));
    Ok(RawPeer { stop })
}

fn build_swarm(
    net: &Arc<SimNet>,
    index: usize,
    key: &libp2p::identity::Keypair,
    topics: &Topics,
) -> Result<Swarm<gossipsub::Behaviour>> {
    let transport = tiernet_node::transport::secure_stream(SimTransport::new(net.clone(), index), key)?;
    let mut registry = prometheus_client::registry::Registry::default();
    let behaviour = tiernet_node::gossip::behaviour(key, topics, &mut registry)?;
    Ok(Swarm::new(
        transport,
        behaviour,
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(Duration::from_secs(3600)),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    mut swarm: Swarm<gossipsub::Behaviour>,
    net: Arc<SimNet>,
    index: usize,
    key: libp2p::identity::Keypair,
    topics: Topics,
    network: NetworkId,
    kind: AdversaryKind,
    turn_at_ms: u64,
    rate: f64,
    targets: Vec<(PeerId, Multiaddr)>,
    mut stopped: watch::Receiver<bool>,
) {
    let dial = |swarm: &mut Swarm<gossipsub::Behaviour>| {
        for (peer, addr) in &targets {
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(*peer)
                .addresses(vec![addr.clone()])
                .build();
            let _ = swarm.dial(opts);
        }
    };
    // Slot sybils come all at once when they turn.
    if kind != AdversaryKind::Slots {
        dial(&mut swarm);
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut turned = false;
    let mut sequence = 0u64;
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, .. }) = event {
                    // Sybils forward like honest peers until they turn;
                    // never-forward peers never validate, so nothing moves on.
                    if kind == AdversaryKind::Sybil && !turned {
                        swarm.behaviour_mut().report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Accept,
                        );
                    }
                }
            }
            _ = tick.tick() => {
                if now_ms() < turn_at_ms {
                    continue;
                }
                if !turned && kind == AdversaryKind::Sybil {
                    // All at once: drop every connection, come back with a
                    // fresh swarm, and spam.
                    drop(swarm);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    match build_swarm(&net, index, &key, &topics) {
                        Ok(fresh) => swarm = fresh,
                        Err(_) => return,
                    }
                    dial(&mut swarm);
                }
                turned = true;
                sequence += 1;
                if kind == AdversaryKind::Slots && swarm.connected_peers().next().is_none() {
                    dial(&mut swarm);
                }
                match kind {
                    AdversaryKind::Flood => {
                        let data = tiernet_node::testing::sample_message(Topic::Meta, None, &network, now_ms() + sequence, 1, now_ms());
                        let _ = swarm.behaviour_mut().publish(topics.ident(Topic::Meta).clone(), data);
                    }
                    AdversaryKind::Sybil => {
                        let data = format!("garbage {index} {sequence}").into_bytes();
                        let _ = swarm.behaviour_mut().publish(topics.ident(Topic::Blocks).clone(), data);
                    }
                    _ => {}
                }
            }
        }
    }
}
