//! Adversaries that are plain rust-libp2p GossipSub peers (no tiernet
//! node behind them), built with the node's own GossipSub configuration
//! (`tiernet_node::gossip::config`) so they look like any TL0 peer:
//!
//! - never-forward: subscribes, takes mesh slots, never validates a
//!   message, so GossipSub never forwards one for it (the CVE-2022-47547
//!   pattern);
//! - flood: accepts and forwards every message until `turn_at_s` (a peer
//!   in good standing when the flood begins); then publishes observer
//!   heartbeats at `rate_per_s` (ten times what a peer may relay on
//!   `meta`) to every connected peer, and redials every target it is not
//!   connected to once a second (a ban must hold);
//! - sybil: accepts and forwards every message until `turn_at_s`; then
//!   all drop their connections at once, reconnect, and publish invalid
//!   bytes on `blocks` at `rate_per_s` to every connected peer;
//! - slots: fresh identities that dial their target from `turn_at_s`, send
//!   no Hello and nothing else, and redial at `rate_per_s` whenever they
//!   are not connected (the peer manager's TL0 quota, pending-handshake
//!   limit and Hello deadline are what stops them).
//!
//! The publishing kinds (flood, sybil) do not score their own peers: an
//! attacker sends to everyone it is connected to whatever it thinks of
//! them. With GossipSub's peer scoring on, a flooder's own scores of its
//! honest neighbours fell to −10³…−10⁵ before it even turned (behaviour
//! penalties: broken IWANT promises and the like while the loaded
//! simulation lagged), far below the publish threshold (−60), so
//! GossipSub sent its flood to one or two of six neighbours, or to none
//! (`NoPeersSubscribedToTopic`, two publishes in three), and the relay
//! budget never saw ten times its rate. Everything else (signed messages,
//! flood publishing, mesh sizes, frame limits) is the node's configuration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tiernet_core::wire::{NetworkId, Topic};
use tiernet_node::gossip::Topics;
use tiernet_node::node::now_ms;
use tokio::sync::watch;

use crate::link::{SimNet, SimTransport};
use crate::scenario::{Adversary, AdversaryKind, Scenario};
use crate::world::Record;

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

/// What one flooder did after it turned: what it handed GossipSub for each
/// peer, what GossipSub dropped, and its connections. Set beside what the
/// honest nodes received, it shows whether the flood reached them at the
/// scenario's rate.
#[derive(Debug, Clone, Default)]
pub struct FloodLog {
    /// Publishes GossipSub took.
    pub published: u64,
    /// Publishes it refused, by error (`NoPeersSubscribedToTopic`: no
    /// connected peer on `meta`; `AllQueuesFull`: every send queue full).
    pub refused: BTreeMap<String, u64>,
    /// Messages queued for each peer (flood publishing sends every
    /// publish to every connected peer on the topic).
    pub sent: BTreeMap<PeerId, u64>,
    /// Messages GossipSub dropped for each peer (send queue full, or not
    /// sent in time: its `SlowPeer` reports).
    pub dropped: BTreeMap<PeerId, u64>,
    /// Connections established with each peer after the turn (redials).
    pub reconnected: BTreeMap<PeerId, u64>,
}

fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts adversary `index` of kind `adversary.kind`, dialing `targets`.
/// A flooder writes its [`FloodLog`] into `record`.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    net: Arc<SimNet>,
    index: usize,
    key: libp2p::identity::Keypair,
    scenario: &Scenario,
    adversary: &Adversary,
    targets: Vec<(PeerId, Multiaddr)>,
    start_ms: u64,
    record: Arc<Mutex<Record>>,
) -> Result<RawPeer> {
    let network = NetworkId::new(&format!("sim-{}", scenario.name)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let topics = Topics::new(&network);
    let swarm = build_swarm(&net, index, &key, &topics, adversary.kind)?;
    let (stop, stopped) = watch::channel(false);
    let kind = adversary.kind;
    let turn_at_ms = start_ms + adversary.turn_at_s * 1000;
    let rate = adversary.rate_per_s.max(0.1);
    tokio::spawn(drive(
        swarm, net, index, key, topics, network, kind, turn_at_ms, rate, targets, stopped, record,
    ));
    Ok(RawPeer { stop })
}

fn build_swarm(
    net: &Arc<SimNet>,
    index: usize,
    key: &libp2p::identity::Keypair,
    topics: &Topics,
    kind: AdversaryKind,
) -> Result<Swarm<gossipsub::Behaviour>> {
    let transport = tiernet_node::transport::secure_stream(SimTransport::new(net.clone(), index), key)?;
    let behaviour = match kind {
        AdversaryKind::Flood | AdversaryKind::Sybil => unscored(key, topics)?,
        _ => {
            let mut registry = prometheus_client::registry::Registry::default();
            tiernet_node::gossip::behaviour(key, topics, &mut registry)?
        }
    };
    Ok(Swarm::new(
        transport,
        behaviour,
        key.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(Duration::from_secs(3600)),
    ))
}

/// The node's GossipSub configuration without peer scoring, subscribed to
/// every topic: publishes go to every connected peer on the topic
/// (GossipSub's flood publishing), whatever their scores would be.
fn unscored(key: &libp2p::identity::Keypair, topics: &Topics) -> Result<gossipsub::Behaviour> {
    let config = tiernet_node::gossip::config(topics)?;
    let mut behaviour = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (_, ident) in topics.iter() {
        behaviour.subscribe(ident)?;
    }
    Ok(behaviour)
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
    record: Arc<Mutex<Record>>,
) {
    let me = key.public().to_peer_id();
    // Dials every target not connected or being dialled (GossipSub's
    // default dial condition).
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
    let mut redial = tokio::time::interval(Duration::from_secs(1));
    let mut turned = false;
    let mut sequence = 0u64;
    let meta = topics.ident(Topic::Meta).hash();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            // A flooder comes back to every neighbour that dropped it.
            _ = redial.tick(), if kind == AdversaryKind::Flood && turned => dial(&mut swarm),
            event = swarm.select_next_some() => {
                if kind == AdversaryKind::Flood && turned {
                    match &event {
                        SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                            *lock(&record).flood.entry(me).or_default().reconnected.entry(*peer_id).or_default() += 1;
                        }
                        SwarmEvent::Behaviour(gossipsub::Event::SlowPeer { peer_id, failed_messages }) => {
                            *lock(&record).flood.entry(me).or_default().dropped.entry(*peer_id).or_default() +=
                                (failed_messages.priority + failed_messages.non_priority) as u64;
                        }
                        _ => {}
                    }
                }
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, .. }) = event {
                    // Sybils and flooders forward like honest peers until
                    // they turn; never-forward peers never validate, so
                    // nothing moves on.
                    if matches!(kind, AdversaryKind::Sybil | AdversaryKind::Flood) && !turned {
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
                    // All at once: close every connection, come back with
                    // a fresh swarm, and spam.
                    close_all(&mut swarm).await;
                    drop(swarm);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    match build_swarm(&net, index, &key, &topics, kind) {
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
                        let outcome = swarm.behaviour_mut().publish(topics.ident(Topic::Meta).clone(), data);
                        let mut record = lock(&record);
                        let log = record.flood.entry(me).or_default();
                        match outcome {
                            Ok(_) => {
                                log.published += 1;
                                for (peer, peer_topics) in swarm.behaviour().all_peers() {
                                    if peer_topics.contains(&&meta) {
                                        *log.sent.entry(*peer).or_default() += 1;
                                    }
                                }
                            }
                            Err(error) => *log.refused.entry(refusal_label(&error)).or_default() += 1,
                        }
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

/// A publish error without its counts (`AllQueuesFull(3)` → `AllQueuesFull`).
fn refusal_label(error: &PublishError) -> String {
    let text = format!("{error:?}");
    text.split('(').next().unwrap_or_default().to_owned()
}

/// Closes every connection of `swarm` and drives it until they are gone
/// (at most 5 s). Dropping a swarm with connections open did not close all
/// of them: in the sybil flood some honest nodes kept a sybil's connection
/// from before its turn, silent and scored as it was, to the end of the run.
async fn close_all(swarm: &mut Swarm<gossipsub::Behaviour>) {
    let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
    for peer in peers {
        let _ = swarm.disconnect_peer_id(peer);
    }
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while swarm.connected_peers().next().is_some() {
        tokio::select! {
            () = &mut deadline => break,
            _ = swarm.select_next_some() => {}
        }
    }
}
