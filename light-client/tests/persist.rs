//! Persisted trust: a client saves its trusted state after each verified
//! head and the next one starts from it (within the trusting period),
//! never from a corrupt, foreign or expired file; checkpoints export and
//! import as the same bytes.

use std::sync::{Arc, Mutex};

use tiernet_light::persist::{self, PersistError};
use tiernet_light::testing::{MemoryTransport, PeerBehaviour, TestChain as Chain};
use tiernet_light::{Checkpoint, Freshness, LightClient};

fn client(chain: &Arc<Mutex<Chain>>, peers: &[PeerBehaviour], file: &std::path::Path, trusting_ms: u64) -> LightClient {
    let (checkpoint, network) = {
        let c = chain.lock().unwrap();
        (c.checkpoint(), c.network.clone())
    };
    LightClient::builder()
        .network(network)
        .checkpoint(checkpoint)
        .transport(Box::new(MemoryTransport::new(Arc::clone(chain), peers)))
        .freshness(Freshness {
            trusting_period_ms: trusting_ms,
            ..Freshness::default()
        })
        .trust_file(file)
        .build()
        .unwrap()
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("not reached within 2 s");
}

#[tokio::test]
async fn a_restart_starts_from_the_saved_head_and_never_from_a_bad_or_expired_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trust.bin");
    let chain = Arc::new(Mutex::new(Chain::new(5)));
    // The test chain's block times are from 1970: a trusting period of
    // "forever" keeps its heads usable, 1 ms makes them expired.
    let forever = u64::MAX / 2;
    let first = client(&chain, &[PeerBehaviour::Honest], &file, forever);
    assert_eq!(first.start().await.unwrap().height, 5);
    until(|| file.exists()).await;
    first.stop();
    // Only forgers now: a client from the genesis cannot verify anything;
    // one that resumes from the file has height 5 without asking.
    let resumed = client(&chain, &[PeerBehaviour::ForgesCommits], &file, forever);
    // (Only forgers: start would keep trying; the trust is loaded first thing.)
    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), resumed.start()).await;
    assert_eq!(resumed.head().height, 5, "started from the saved head");
    resumed.stop();
    // Expired: the checkpoint (genesis) again.
    let expired = client(&chain, &[PeerBehaviour::ForgesCommits], &file, 1);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), expired.start()).await;
    assert_eq!(expired.head().height, 0, "expired trust is not used");
    expired.stop();
    // Corrupt: not used, and no panic.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let corrupt = client(&chain, &[PeerBehaviour::ForgesCommits], &file, forever);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), corrupt.start()).await;
    assert_eq!(corrupt.head().height, 0, "a corrupt file is not used");
}

#[test]
fn checkpoints_export_and_import_and_bad_bytes_are_refused() {
    let chain = Chain::new(3);
    let mut sync = tiernet_light::sync::LightSync::new(chain.network.clone(), chain.checkpoint());
    let peer = libp2p::PeerId::random();
    sync.handle_connected(peer);
    sync.handle_chain_proof(peer, chain.chain_proof(0)).unwrap();
    let checkpoint = Checkpoint::from(sync.trusted().clone());
    let bytes = checkpoint.to_bytes().unwrap();
    let back = Checkpoint::from_bytes(&bytes, &chain.network).unwrap();
    assert_eq!(back.height(), 3);
    assert!(
        chain.checkpoint().to_bytes().is_none(),
        "the genesis exports as the genesis file"
    );
    let other = tiernet_core::wire::NetworkId::new("othernet").unwrap();
    assert!(matches!(
        Checkpoint::from_bytes(&bytes, &other),
        Err(PersistError::Network { .. })
    ));
    for cut in [0, 4, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            Checkpoint::from_bytes(&bytes[..cut], &chain.network).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = bytes.clone();
    flipped[10] ^= 1;
    assert_eq!(
        persist::decode(&flipped, &chain.network).unwrap_err(),
        PersistError::Format("checksum mismatch")
    );
    assert!(persist::decode(&vec![0u8; persist::MAX_TRUST_BYTES + 1], &chain.network).is_err());
}

/// A browser has no files: the page hands over the bytes it kept
/// (IndexedDB). Used within the trusting period, reported by
/// `resumed_from`; expired or corrupt bytes leave the checkpoint.
#[tokio::test]
async fn saved_trust_handed_over_by_the_app_is_used_like_the_trust_file() {
    let chain = Arc::new(Mutex::new(Chain::new(4)));
    let (checkpoint, network) = {
        let c = chain.lock().unwrap();
        (c.checkpoint(), c.network.clone())
    };
    let build = |peers: &[PeerBehaviour], saved: Option<Vec<u8>>, trusting_ms: u64| {
        let mut builder = LightClient::builder()
            .network(network.clone())
            .checkpoint(checkpoint.clone())
            .transport(Box::new(MemoryTransport::new(Arc::clone(&chain), peers)))
            .freshness(Freshness {
                trusting_period_ms: trusting_ms,
                ..Freshness::default()
            });
        if let Some(bytes) = saved {
            builder = builder.saved_trust(bytes);
        }
        builder.build().unwrap()
    };
    let forever = u64::MAX / 2;
    let first = build(&[PeerBehaviour::Honest], None, forever);
    assert_eq!(first.start().await.unwrap().height, 4);
    assert_eq!(first.resumed_from(), None, "a cold start");
    let saved = first.export_trust().unwrap();
    first.stop();

    let start = |client: &LightClient| {
        let client = client.clone();
        async move {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), client.start()).await;
        }
    };
    let warm = build(&[PeerBehaviour::ForgesCommits], Some(saved.clone()), forever);
    start(&warm).await;
    assert_eq!(warm.head().height, 4, "started from the handed-over trust");
    assert_eq!(warm.resumed_from(), Some(4));
    warm.stop();

    let expired = build(&[PeerBehaviour::ForgesCommits], Some(saved.clone()), 1);
    start(&expired).await;
    assert_eq!((expired.head().height, expired.resumed_from()), (0, None), "expired");
    expired.stop();

    let mut corrupt = saved;
    corrupt[12] ^= 0x01;
    let corrupted = build(&[PeerBehaviour::ForgesCommits], Some(corrupt), forever);
    start(&corrupted).await;
    assert_eq!(
        (corrupted.head().height, corrupted.resumed_from()),
        (0, None),
        "corrupt"
    );
    corrupted.stop();
}
