//! The sans-IO sync machine driven in memory: a 4-validator chain built and
//! signed here, fed to `LightSync` as a peer would serve it.

use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use tiernet_core::chain::{BlockBuilder, GenesisAnchor, Parent, ValidatorSet, precommit_for};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::verify::TrustedState;
use tiernet_core::wire::sign::{SignedMessage, header_hash};
use tiernet_core::wire::{NetworkId, proto};
use tiernet_light::sync::{LightSync, PeerStatus, SyncError};
use tiernet_light::{Checkpoint, Event};

struct Chain {
    network: NetworkId,
    anchor: GenesisAnchor,
    set: ValidatorSet,
    keys: Vec<(ZsiId, SigningKey)>,
    blocks: Vec<proto::FinalizedBlock>,
}

impl Chain {
    fn new(heights: u64) -> Self {
        let network = NetworkId::new("memnet").unwrap();
        let keys: Vec<(ZsiId, SigningKey)> = (0..4u8)
            .map(|i| (ZsiId(Hash32([i + 1; 32])), SigningKey::from_bytes(&[i + 40; 32])))
            .collect();
        let set = ValidatorSet::new(proto::ValidatorSet {
            validators: keys
                .iter()
                .map(|(id, k)| proto::Validator {
                    zsi_id: id.as_bytes().to_vec(),
                    consensus_key: k.verifying_key().to_bytes().to_vec(),
                    power: 10,
                })
                .collect(),
        })
        .unwrap();
        let anchor = GenesisAnchor::new(network.clone(), 1_000, set.hash());
        let mut chain = Chain {
            network,
            anchor,
            set,
            keys,
            blocks: Vec::new(),
        };
        for _ in 0..heights {
            chain.extend();
        }
        chain
    }

    fn extend(&mut self) {
        let last = self
            .blocks
            .last()
            .and_then(|b| b.block.as_ref())
            .and_then(|b| b.header.clone());
        let parent = match &last {
            Some(h) => Parent::Header(h),
            None => Parent::Genesis(&self.anchor),
        };
        let height = parent.height() + 1;
        let block = BlockBuilder {
            parent,
            round: 0,
            time_ms: parent.time_ms() + 1_000,
            proposer: self.keys[(height % 4) as usize].0,
            current: &self.set,
            next: &self.set,
            state_root: Hash32([height as u8; 32]),
        }
        .block(Vec::new(), Vec::new())
        .unwrap();
        let header = block.header.clone().unwrap();
        let hash = header_hash(&header);
        let signatures = self.keys[..3]
            .iter()
            .map(|(id, key)| {
                let mut vote = precommit_for(&self.network, height, 0, Some(&hash), id);
                vote.sign_with(key);
                proto::CommitSignature {
                    validator: id.as_bytes().to_vec(),
                    signature: vote.signature,
                }
            })
            .collect();
        let commit = proto::CommitCertificate {
            height,
            round: 0,
            block_hash: hash.as_bytes().to_vec(),
            signatures,
        };
        self.blocks.push(proto::FinalizedBlock {
            block: Some(block),
            commit: Some(commit),
        });
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint::from(TrustedState::from_anchor(self.anchor.clone(), self.set.clone()).unwrap())
    }

    fn at(&self, height: u64) -> &proto::FinalizedBlock {
        &self.blocks[(height - 1) as usize]
    }
}

fn events(sync: &mut LightSync) -> Vec<Event> {
    std::iter::from_fn(|| sync.poll_event()).collect()
}

#[test]
fn blocks_in_order_advance_the_head_and_each_is_reported() {
    let chain = Chain::new(5);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    for h in 1..=5 {
        assert!(sync.handle_block(peer, chain.at(h)).unwrap());
    }
    let head = sync.head();
    assert_eq!(head.height, 5);
    let header = chain.at(5).block.as_ref().unwrap().header.as_ref().unwrap();
    assert_eq!(head.hash, header_hash(header));
    let verified = events(&mut sync)
        .into_iter()
        .filter(|e| matches!(e, Event::HeadVerified(_)))
        .count();
    assert_eq!(verified, 5);
    // An old block again changes nothing.
    assert!(!sync.handle_block(peer, chain.at(3)).unwrap());
    assert_eq!(sync.head().height, 5);
}

#[test]
fn a_gap_asks_for_a_chain_proof_without_blaming_the_peer() {
    let chain = Chain::new(4);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    let err = sync.handle_block(peer, chain.at(3)).unwrap_err();
    assert!(matches!(err, SyncError::Behind { height: 3, next: 1, .. }), "{err:?}");
    assert_eq!(sync.peer_status(&peer), Some(PeerStatus::Usable));
    assert_eq!(sync.head().height, 0);
}

#[test]
fn a_forged_block_rejects_its_peer_and_leaves_the_head() {
    let chain = Chain::new(2);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let (liar, honest) = (PeerId::random(), PeerId::random());
    sync.handle_connected(liar);
    sync.handle_connected(honest);
    let mut forged = chain.at(1).clone();
    forged.commit.as_mut().unwrap().signatures[0].signature[0] ^= 1;
    let err = sync.handle_block(liar, &forged).unwrap_err();
    assert!(matches!(err, SyncError::Invalid { .. }), "{err:?}");
    assert_eq!(sync.peer_status(&liar), Some(PeerStatus::Rejected));
    assert_eq!(sync.usable_peers(), vec![honest]);
    assert!(
        events(&mut sync)
            .iter()
            .any(|e| matches!(e, Event::PeerRejected { peer, .. } if *peer == liar))
    );
    assert_eq!(sync.head().height, 0);
    // A rejected peer that reconnects stays rejected; the honest block verifies.
    sync.handle_connected(liar);
    assert_eq!(sync.peer_status(&liar), Some(PeerStatus::Rejected));
    assert!(sync.handle_block(honest, chain.at(1)).unwrap());
}

#[test]
fn too_little_power_is_not_enough_trust_not_a_lie() {
    let chain = Chain::new(1);
    let mut sync = LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = PeerId::random();
    sync.handle_connected(peer);
    let mut short = chain.at(1).clone();
    short.commit.as_mut().unwrap().signatures.truncate(2);
    let err = sync.handle_block(peer, &short).unwrap_err();
    assert!(matches!(err, SyncError::NotEnoughTrust { .. }), "{err:?}");
    assert_eq!(sync.peer_status(&peer), Some(PeerStatus::Usable));
}
