//! Restart time against chain length (issue 16): how long
//! [`Chain::open`] takes — what a restarting node does before it can run —
//! on a store holding 100 and 10,000 finalized blocks, beside a full replay
//! from genesis (`tiernet-node verify-chain`'s path, and what every restart
//! did before). The chain is the fixture chain (four validators, commit
//! certificates by three), built once per size in a temporary directory.
//!
//! Run: `cargo bench -p tiernet-node --bench restart`. Sizes:
//! `TIERNET_BENCH_BLOCKS` (comma list, default `100,10000`).

use std::time::{Duration, Instant};

use tiernet_node::consensus::chain::{Chain, OpenMode};
use tiernet_node::consensus::fixture;
use tiernet_node::store::Store;

/// Restarts measured per size (the median is printed).
const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let sizes: Vec<u64> = std::env::var("TIERNET_BENCH_BLOCKS")
        .unwrap_or_else(|_| "100,10000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("TIERNET_BENCH_BLOCKS: a comma list of block counts")
        })
        .collect();
    let keys = fixture::keys().expect("keys");
    let genesis = fixture::genesis(&keys).expect("genesis");
    println!(
        "| blocks | restart: chain open (ledger loaded from the state store), median of {RUNS} | of which: redb store open | full replay from genesis |"
    );
    println!("|---|---|---|---|");
    for blocks in sizes {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("node.redb");
        let built = Instant::now();
        drop(fixture::grow(&path, &genesis, &keys, blocks).expect("build the chain"));
        eprintln!("built {blocks} blocks in {:?}", built.elapsed());
        let mut restarts = Vec::with_capacity(RUNS);
        let mut store_opens = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let store = Store::open(&path).expect("store");
            let opened = started.elapsed();
            let chain = Chain::open(store, &genesis, None).expect("open");
            restarts.push(started.elapsed());
            store_opens.push(opened);
            assert_eq!(chain.ledger().height(), blocks);
        }
        let started = Instant::now();
        let store = Store::open(&path).expect("store");
        let chain = Chain::open_with(store, &genesis, None, OpenMode::Replay).expect("replay");
        let replay = started.elapsed();
        assert_eq!(chain.ledger().height(), blocks);
        println!(
            "| {blocks} | {:?} | {:?} | {replay:?} |",
            median(restarts),
            median(store_opens)
        );
    }
}
