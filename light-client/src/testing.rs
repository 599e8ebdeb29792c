//! Test support (feature `testing`): a 4-validator chain signed in memory
//! ([`TestChain`]) and a [`MemoryTransport`] whose peers serve it, honestly
//! or with forged commits. For tests of the client and of code built on it,
//! natively and in a browser (the wasm bindings' tests use it); not for
//! production.

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libp2p::{Multiaddr, PeerId};
use tiernet_core::chain::{BlockBuilder, GenesisAnchor, Parent, ValidatorSet, precommit_for};
use tiernet_core::hash::Hash32;
use tiernet_core::identity::ZsiId;
use tiernet_core::verify::TrustedState;
use tiernet_core::wire::sign::{SignedMessage, header_hash};
use tiernet_core::wire::{NetworkId, proto};
use tokio::sync::mpsc;

use crate::sync::Checkpoint;
use crate::transport::{CHANNEL_CAPACITY, Transport, TransportError, TransportEvent};

/// Validators of [`TestChain::new`]; every validator signs each commit.
pub const TEST_VALIDATORS: u8 = 4;

/// A chain of finalized blocks with real signatures, built in memory.
#[derive(Debug, Clone)]
pub struct TestChain {
    /// The network (`memnet`).
    pub network: NetworkId,
    /// The genesis anchor.
    pub anchor: GenesisAnchor,
    /// The (constant) validator set.
    pub set: ValidatorSet,
    keys: Vec<(ZsiId, SigningKey)>,
    /// The blocks, height 1 first.
    pub blocks: Vec<proto::FinalizedBlock>,
}

/// Errors never happen for the fixed inputs of a [`TestChain`]; a failure
/// here is a bug in the test support, so it says so.
fn fixed<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("tiernet_light::testing: {what}: {error:?}"),
    }
}

impl TestChain {
    /// A chain of `heights` blocks and [`TEST_VALIDATORS`] validators.
    pub fn new(heights: u64) -> Self {
        Self::with_validators(TEST_VALIDATORS, heights)
    }

    /// A chain of `heights` blocks signed by `validators` (1 to 254)
    /// equal-power validators.
    pub fn with_validators(validators: u8, heights: u64) -> Self {
        let network = fixed(NetworkId::new("memnet"), "network id");
        let keys: Vec<(ZsiId, SigningKey)> = (0..validators)
            .map(|i| {
                let mut secret = [i; 32];
                secret[31] = 40;
                (ZsiId(Hash32([i + 1; 32])), SigningKey::from_bytes(&secret))
            })
            .collect();
        let set = fixed(
            ValidatorSet::new(proto::ValidatorSet {
                validators: keys
                    .iter()
                    .map(|(id, k)| proto::Validator {
                        zsi_id: id.as_bytes().to_vec(),
                        consensus_key: k.verifying_key().to_bytes().to_vec(),
                        power: 10,
                    })
                    .collect(),
            }),
            "validator set",
        );
        let anchor = GenesisAnchor::new(network.clone(), 1_000, set.hash());
        let mut chain = TestChain {
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

    /// The latest height (0: none yet).
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Adds a block signed by every validator; returns it.
    pub fn extend(&mut self) -> &proto::FinalizedBlock {
        let height = self.height() + 1;
        self.extend_with_root(Hash32([height as u8; 32]))
    }

    /// The same chain up to `height - 1`, then another block at `height`
    /// (another state root), signed by the same validators: a fork, as
    /// only a third of dishonest validators plus equivocation can make.
    pub fn forked_at(&self, height: u64) -> TestChain {
        let mut fork = self.clone();
        fork.blocks.truncate(height.saturating_sub(1) as usize);
        fork.extend_with_root(Hash32([0xEE; 32]));
        fork
    }

    /// Adds a block with `state_root`, signed by every validator.
    fn extend_with_root(&mut self, state_root: Hash32) -> &proto::FinalizedBlock {
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
        let block = fixed(
            BlockBuilder {
                parent,
                round: 0,
                time_ms: parent.time_ms() + 1_000,
                proposer: self.keys[(height % self.keys.len() as u64) as usize].0,
                current: &self.set,
                next: &self.set,
                state_root,
            }
            .block(Vec::new(), Vec::new()),
            "block",
        );
        let header = block.header.clone().unwrap_or_default();
        let hash = header_hash(&header);
        let signatures = self
            .keys
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
        &self.blocks[self.blocks.len() - 1]
    }

    /// The genesis checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::from(fixed(
            TrustedState::from_anchor(self.anchor.clone(), self.set.clone()),
            "trusted state",
        ))
    }

    /// The block at `height` (1-based).
    ///
    /// # Panics
    /// When there is no such block (a test bug).
    pub fn at(&self, height: u64) -> &proto::FinalizedBlock {
        &self.blocks[(height - 1) as usize]
    }

    /// A one-step chain proof from `trusted_height` to the latest block
    /// (the set never changes), or a NOT_FOUND error when there is nothing
    /// newer.
    pub fn chain_proof(&self, trusted_height: u64) -> proto::SyncResponse {
        let Some(last) = self.blocks.last().filter(|_| self.height() > trusted_height) else {
            return not_found(format!("nothing above height {trusted_height}"));
        };
        let header = last.block.as_ref().and_then(|b| b.header.clone());
        proto::SyncResponse {
            kind: Some(proto::sync_response::Kind::ChainProof(proto::ChainProof {
                trusted_height,
                steps: vec![proto::ChainProofStep {
                    header: Some(proto::SignedHeader {
                        header,
                        commit: last.commit.clone(),
                    }),
                    validators: Some(self.set.as_proto().clone()),
                }],
            })),
        }
    }
}

fn not_found(message: String) -> proto::SyncResponse {
    proto::SyncResponse {
        kind: Some(proto::sync_response::Kind::Error(proto::SyncError {
            code: proto::SyncErrorCode::NotFound as i32,
            message,
        })),
    }
}

/// How a [`MemoryTransport`] peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerBehaviour {
    /// Serves the chain as it is.
    Honest,
    /// Serves chain proofs whose commit signatures are corrupted.
    ForgesCommits,
}

/// A transport whose peers all serve one [`TestChain`]; only chain-proof
/// requests are answered (others get NOT_FOUND).
pub struct MemoryTransport {
    chain: Arc<Mutex<TestChain>>,
    peers: Vec<(PeerId, PeerBehaviour)>,
    sender: mpsc::Sender<TransportEvent>,
    events: Option<mpsc::Receiver<TransportEvent>>,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl MemoryTransport {
    /// Peers that serve `chain` as `peers` says; each is reported connected
    /// (over `/memory/<i>`) as soon as the client takes the events.
    pub fn new(chain: Arc<Mutex<TestChain>>, peers: &[PeerBehaviour]) -> Self {
        let (sender, events) = mpsc::channel(CHANNEL_CAPACITY);
        let peers: Vec<(PeerId, PeerBehaviour)> = peers.iter().map(|b| (PeerId::random(), *b)).collect();
        for (i, (peer, _)) in peers.iter().enumerate() {
            let address = fixed(format!("/memory/{}", i + 1).parse::<Multiaddr>(), "memory address");
            let _ = sender.try_send(TransportEvent::Connected { peer: *peer, address });
        }
        Self {
            chain,
            peers,
            sender,
            events: Some(events),
        }
    }

    /// The peers, in the order given.
    pub fn peers(&self) -> Vec<(PeerId, PeerBehaviour)> {
        self.peers.clone()
    }

    /// A handle that gossips blocks to the client as if `from` forwarded
    /// them on `blocks`.
    pub fn gossip(&self) -> mpsc::Sender<TransportEvent> {
        self.sender.clone()
    }
}

impl Transport for MemoryTransport {
    fn request(
        &self,
        peer: PeerId,
        request: proto::SyncRequest,
    ) -> BoxFuture<'static, Result<proto::SyncResponse, TransportError>> {
        let behaviour = self.peers.iter().find(|(p, _)| *p == peer).map(|(_, b)| *b);
        let response = match (behaviour, request.kind) {
            (None, _) => Err(TransportError::Request {
                peer,
                reason: "not connected".into(),
            }),
            (Some(behaviour), Some(proto::sync_request::Kind::ChainProof(ask))) => {
                let chain = self.chain.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut response = chain.chain_proof(ask.trusted_height);
                if behaviour == PeerBehaviour::ForgesCommits
                    && let Some(proto::sync_response::Kind::ChainProof(proof)) = &mut response.kind
                {
                    for step in &mut proof.steps {
                        if let Some(commit) = step.header.as_mut().and_then(|h| h.commit.as_mut()) {
                            for signature in &mut commit.signatures {
                                if let Some(byte) = signature.signature.first_mut() {
                                    *byte ^= 1;
                                }
                            }
                        }
                    }
                }
                Ok(response)
            }
            (Some(_), _) => Ok(not_found("the memory transport serves chain proofs only".into())),
        };
        Box::pin(futures::future::ready(response))
    }

    fn events(&mut self) -> Option<BoxStream<'static, TransportEvent>> {
        let events = self.events.take()?;
        Some(Box::pin(futures::stream::unfold(events, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })))
    }

    fn disconnect(&self, peer: PeerId) {
        let _ = self.sender.try_send(TransportEvent::Disconnected {
            peer,
            address: Multiaddr::empty(),
            remaining: 0,
        });
    }
}
