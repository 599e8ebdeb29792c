//! The light client's sans-IO sync machine, `tiernet_light::sync::LightSync`,
//! fed arbitrary responses and gossiped blocks from four peers, between
//! honest ones, over a 4-validator chain signed in memory
//! (`tiernet_light::testing::TestChain`, [`HEIGHTS`] blocks).
//!
//! # Input
//!
//! Records (see [`crate::Input::record`]); the peer is `arg % 4`:
//!
//! | op % 8 | what |
//! |---|---|
//! | 0, 1, 2 | the peer connects, disconnects, is rejected |
//! | 3 | the honest block at height `1 + arg % HEIGHTS` from the peer |
//! | 4 | an honest chain proof from the current head, from the peer |
//! | 5 | the payload as a `SyncResponse` answering a chain-proof request |
//! | 6 | the payload as a `BlocksMessage` gossiped on `blocks` (finalized blocks reach the machine) |
//! | 7 | the payload as a `SyncResponse` answering a state request for `params` |
//!
//! # Oracle
//!
//! The head never goes back, and every head the machine reports is the real
//! chain's header at that height (nobody but the validators can sign);
//! honest input keeps verifying whatever garbage came before it.

use std::sync::LazyLock;

use tiernet_core::identity::{NodeKeypair, PeerId};
use tiernet_core::wire::proto::{self, blocks_message};
use tiernet_core::wire::sign::header_hash;
use tiernet_core::wire::{decode, encode};
use tiernet_light::Event;
use tiernet_light::sync::{LightSync, MAX_EVENTS, SyncError};
use tiernet_light::testing::TestChain;

use crate::{Input, MAX_RECORDS, Seed, record};

/// Blocks in the fixture chain.
pub const HEIGHTS: u64 = 5;

struct World {
    chain: TestChain,
    peers: [PeerId; 4],
}

static WORLD: LazyLock<World> = LazyLock::new(|| World {
    chain: TestChain::new(HEIGHTS),
    peers: [1u8, 2, 3, 4].map(|i| NodeKeypair::from_secret([i; 32]).expect("fixture key").peer_id()),
});

fn real_hash(height: u64) -> tiernet_core::hash::Hash32 {
    let header = WORLD
        .chain
        .at(height)
        .block
        .as_ref()
        .and_then(|b| b.header.as_ref())
        .expect("fixture header");
    header_hash(header)
}

/// Runs one input; see the module docs.
pub fn run(data: &[u8]) {
    let w = &*WORLD;
    let mut sync = LightSync::new(w.chain.network.clone(), w.chain.checkpoint());
    let mut input = Input::new(data);
    let mut height = 0;
    for _ in 0..MAX_RECORDS {
        let Some((op, arg, payload)) = input.record() else {
            break;
        };
        let peer = w.peers[usize::from(arg) % w.peers.len()];
        let head = sync.head().height;
        match op % 8 {
            0 => sync.handle_connected(peer),
            1 => sync.handle_disconnected(peer),
            2 => sync.reject(peer, "fuzz".into()),
            3 => {
                let h = 1 + u64::from(arg) % HEIGHTS;
                let result = sync.handle_block(peer, w.chain.at(h));
                match h.cmp(&(head + 1)) {
                    std::cmp::Ordering::Less => assert!(matches!(result, Ok(false)), "old honest block: {result:?}"),
                    std::cmp::Ordering::Equal => assert!(matches!(result, Ok(true)), "next honest block: {result:?}"),
                    std::cmp::Ordering::Greater => {
                        assert!(
                            matches!(result, Err(SyncError::Behind { .. })),
                            "later honest block: {result:?}"
                        )
                    }
                }
            }
            4 => {
                let result = sync.handle_chain_proof(peer, w.chain.chain_proof(head));
                if head < HEIGHTS {
                    assert!(matches!(result, Ok(true)), "honest chain proof from {head}: {result:?}");
                } else {
                    assert!(matches!(result, Err(SyncError::Remote { .. })), "{result:?}");
                }
            }
            5 => {
                if let Ok(response) = decode::<proto::SyncResponse>(payload) {
                    let _ = sync.handle_chain_proof(peer, response);
                }
            }
            6 => {
                if let Ok(proto::BlocksMessage {
                    kind: Some(blocks_message::Kind::Finalized(block)),
                }) = decode::<proto::BlocksMessage>(payload)
                {
                    let _ = sync.handle_block(peer, &block);
                }
            }
            _ => {
                if let Ok(response) = decode::<proto::SyncResponse>(payload) {
                    let _ = sync.handle_state(peer, b"params", response);
                }
            }
        }
        let now = sync.head();
        crate::debug(|| format!("op {} from peer {}: head {head} -> {}", op % 8, arg % 4, now.height));
        assert!(now.height >= head, "head went back from {head} to {}", now.height);
        if now.height > 0 {
            assert!(now.height <= HEIGHTS, "head {} beyond the chain", now.height);
            assert_eq!(
                now.hash,
                real_hash(now.height),
                "head {} is not the chain's",
                now.height
            );
        }
        let mut events = 0;
        while let Some(event) = sync.poll_event() {
            events += 1;
            if let Event::HeadVerified(verified) = event {
                assert!(verified.height > height, "HeadVerified went back");
                assert_eq!(verified.hash, real_hash(verified.height));
                height = verified.height;
            }
        }
        assert!(events <= MAX_EVENTS);
    }
}

/// Honest data sent raw (so libFuzzer mutates real signatures and chain
/// proofs), and a mix of honest and raw steps.
pub fn seeds() -> Vec<Seed> {
    let w = &*WORLD;
    let block = |h: u64| {
        encode(&proto::BlocksMessage {
            kind: Some(blocks_message::Kind::Finalized(w.chain.at(h).clone())),
        })
    };
    let mut blocks = record(0, 0, &[]);
    for h in 1..=HEIGHTS {
        blocks.extend(record(6, 0, &block(h)));
    }
    let mut proof = record(0, 1, &[]);
    proof.extend(record(5, 1, &encode(&w.chain.chain_proof(0))));
    let head = w.chain.at(HEIGHTS).clone();
    let state = proto::SyncResponse {
        kind: Some(proto::sync_response::Kind::State(proto::StateValueResponse {
            height: HEIGHTS,
            key: b"params".to_vec(),
            value: Some(vec![1, 2, 3]),
            proof: Some(proto::StateProof {
                leaf: None,
                siblings: vec![vec![7; 32]; 3],
            }),
            header: Some(proto::SignedHeader {
                header: head.block.and_then(|b| b.header),
                commit: head.commit,
            }),
        })),
    };
    proof.extend(record(7, 1, &encode(&state)));
    let mut mixed = record(0, 2, &[]);
    mixed.extend(record(3, 0, &[]));
    mixed.extend(record(5, 2, &encode(&w.chain.chain_proof(1))));
    mixed.extend(record(6, 3, &block(2)));
    mixed.extend(record(4, 3, &[]));
    vec![("blocks", blocks), ("chain-proof", proof), ("mixed", mixed)]
}

/// The chain's blocks as gossiped and served, its chain proof, and a page of headers.
pub fn messages() -> Vec<Vec<u8>> {
    let w = &*WORLD;
    let mut out = vec![encode(&w.chain.chain_proof(0))];
    let mut headers = Vec::new();
    for h in 1..=HEIGHTS {
        let block = w.chain.at(h).clone();
        headers.push(proto::SignedHeader {
            header: block.block.as_ref().and_then(|b| b.header.clone()),
            commit: block.commit.clone(),
        });
        out.push(encode(&block));
        out.push(encode(&proto::BlocksMessage {
            kind: Some(blocks_message::Kind::Finalized(block)),
        }));
    }
    out.push(encode(&proto::SyncResponse {
        kind: Some(proto::sync_response::Kind::Headers(proto::HeadersResponse { headers })),
    }));
    out
}
