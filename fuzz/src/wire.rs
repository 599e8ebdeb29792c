//! The wire decoders: `tiernet_core::wire::decode::<M>` for every message
//! type that arrives from a peer, and the request-response length prefix.
//!
//! Input: the raw bytes, exactly as a peer sends them (the message for the
//! topic or protocol; the frame bytes for `wire_frame`).

use std::fmt::Debug;

use tiernet_core::wire::frame::{LengthDecoder, length_prefix};
use tiernet_core::wire::limits::{MAX_HANDSHAKE_MESSAGE, MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE};
use tiernet_core::wire::proto::{self, sync_request};
use tiernet_core::wire::{WireMessage, decode, encode};

use crate::Seed;

/// Decodes `data` as `M`. Whatever is accepted must re-encode canonically
/// (within `M`'s cap) and decode again to the same message: a node that
/// accepts a message can always forward or store it, and its peers accept
/// what it forwards.
pub fn run<M: WireMessage + PartialEq + Debug>(data: &[u8]) {
    let Ok(message) = decode::<M>(data) else {
        return;
    };
    let canonical = encode(&message);
    match decode::<M>(&canonical) {
        Ok(again) => assert_eq!(again, message, "{}: canonical re-encoding decodes differently", M::NAME),
        Err(e) => panic!(
            "{}: the canonical encoding of an accepted message fails to decode: {e}",
            M::NAME
        ),
    }
}

/// Caps the frame decoder is used with: handshake, sync request and response.
const CAPS: [usize; 3] = [MAX_HANDSHAKE_MESSAGE, MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE];

/// Feeds `data[1..]` byte by byte to a [`LengthDecoder`] whose cap is picked
/// by `data[0]`, as `tiernet_protocol::read_frame` does. A completed length
/// is within the cap, and its canonical prefix decodes to the same length.
pub fn frame(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let max = CAPS[usize::from(pick) % CAPS.len()];
    let mut decoder = LengthDecoder::new(max);
    for &byte in bytes {
        match decoder.push(byte) {
            Ok(None) => continue,
            Ok(Some(len)) => {
                assert!(len <= max, "frame length {len} over the cap {max}");
                let mut again = LengthDecoder::new(max);
                let prefix = length_prefix(len);
                let decoded = prefix.iter().find_map(|b| again.push(*b).transpose());
                assert_eq!(decoded, Some(Ok(len)), "length prefix of {len} does not round-trip");
                return;
            }
            Err(_) => return,
        }
    }
}

/// Every message the other harnesses' fixtures build (signed blocks, chain
/// proofs, chunks, Hellos, gossip payloads, requests) that decodes as `M`.
pub fn seeds<M: WireMessage>() -> Vec<Seed> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    all.extend(crate::gossip::messages());
    all.extend(crate::hello::messages());
    all.extend(crate::ledger::messages());
    all.extend(crate::light::messages());
    all.extend(crate::snapshot::messages());
    all.extend(requests());
    all.into_iter()
        .filter(|bytes| decode::<M>(bytes).is_ok())
        .map(|bytes| ("message", bytes))
        .collect()
}

/// One sync request of each kind.
fn requests() -> Vec<Vec<u8>> {
    use sync_request::Kind;
    [
        Kind::Headers(proto::HeadersRequest {
            from_height: 1,
            count: 16,
        }),
        Kind::Block(proto::BlockRequest { height: 3 }),
        Kind::ChainProof(proto::ChainProofRequest {
            trusted_height: 0,
            target_height: 0,
        }),
        Kind::State(proto::StateRequest {
            key: b"params".to_vec(),
            height: 0,
        }),
        Kind::SnapshotManifest(proto::SnapshotManifestRequest { height: 0 }),
        Kind::SnapshotChunk(proto::SnapshotChunkRequest { height: 7, index: 1 }),
    ]
    .into_iter()
    .map(|kind| encode(&proto::SyncRequest { kind: Some(kind) }))
    .collect()
}

/// Every fixture message of [`seeds`] framed, under each cap.
pub fn frame_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, (_, message)) in seeds::<proto::SyncResponse>()
        .into_iter()
        .chain(seeds::<proto::Hello>())
        .enumerate()
    {
        let mut frame = vec![(i % CAPS.len()) as u8];
        frame.extend(tiernet_core::wire::frame::encode_frame(&message));
        out.push(("frame", frame));
    }
    out
}
