//! Issue 18 with real processes: a light client that a wallet keeps open.
//! A malicious bootstrap node cannot get it banned by honest nodes (it does
//! not forward gossip it cannot verify) and it ends on the honest head; a
//! node serving an old chain is reported stale, not current; when its only
//! peer dies it reconnects to a peer learned from full nodes ("get peers")
//! and resumes verified heads within 5 s.

use std::path::Path;
use std::time::{Duration, Instant};

use tiernet_core::genesis::Genesis;
use tiernet_light::{Checkpoint, Event, Freshness, LightClient, SyncStatus};

use crate::chain::{Member, PROGRESS, network_with, wait_height};
use crate::common::{http_post, peers};

fn genesis(net: &Path) -> Genesis {
    Genesis::from_json(&std::fs::read_to_string(net.join("genesis.json")).unwrap()).unwrap()
}

fn client(net: &Path, bootstrap: &[&Member], freshness: Freshness, min_peers: usize) -> LightClient {
    client_at(
        net,
        bootstrap.iter().map(|m| m.node.tcp.clone()).collect(),
        freshness,
        min_peers,
    )
}

fn client_at(net: &Path, bootstrap: Vec<String>, freshness: Freshness, min_peers: usize) -> LightClient {
    let genesis = genesis(net);
    LightClient::builder()
        .network(genesis.network.clone())
        .bootstrap(bootstrap)
        .checkpoint(Checkpoint::genesis(&genesis).unwrap())
        .freshness(freshness)
        .min_peers(min_peers)
        .build()
        .unwrap()
}

async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The malicious node M is the client's first bootstrap peer and is
/// connected to no one else; it publishes garbage on `blocks`. Before the
/// fix the client forwarded it unvalidated to the honest node H, which
/// penalised and banned the client as its propagation source, leaving the
/// client alone with M.
#[test]
fn a_malicious_bootstrap_node_cannot_get_the_client_banned_and_the_client_ends_on_the_honest_head() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let v = network_with(net, &[], &[]);
    wait_height(&[&v[0], &v[1]], 3, "the chain runs");
    // Isolated (no bootstrap, so its chain is empty), test API on.
    let m = Member::start(net, "malicious", None, &[]);
    let honest = &v[1];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // min_peers 2: the bootstrap pair only (no learned peers dialled),
        // so H is the client's only honest link.
        let client = client(net, &[&m, honest], Freshness::default(), 2);
        let mut events = client.events();
        client.start().await.unwrap();
        let me = client.local_peer_id().unwrap().to_string();

        until("both peers connected", Duration::from_secs(10), || {
            client.connections().len() == 2
        })
        .await;
        // Garbage on `blocks`: up to 8 distinct messages (5 would get a
        // forwarder banned). M learns the client's subscription a moment
        // after connecting; once the client drops M, M has no subscriber.
        let mut published = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while published < 8 {
            let path = format!("/testing/publish?topic=blocks&data=ff{published:02x}00ff{published:02x}");
            let (status, body) = http_post(&m.node.telemetry, &path);
            if status == 200 {
                published += 1;
                continue;
            }
            assert!(body.contains("NoPeersSubscribedToTopic"), "publish: {status} {body}");
            if published > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "M never saw the client subscribe");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The client blames M.
        let m_id = m.node.peer_id.clone();
        let mut rejected = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while rejected.is_none() && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(Ok(Event::PeerRejected { peer, reason })) if peer.to_string() == m_id => rejected = Some(reason),
                _ => {}
            }
        }
        let reason = rejected.expect("the client did not blame the malicious node");
        assert!(!client.peers().iter().any(|p| p.to_string() == m_id), "{reason}");
        // Give H time to judge anything forwarded to it.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let view = peers(&honest.node.telemetry)
            .into_iter()
            .find(|p| p.peer_id == me)
            .expect("H knows the client");
        assert!(
            view.banned_until_ms.is_none() && view.score >= 0.0 && view.connected,
            "the honest node penalised the client for M's garbage: {view:?}"
        );
        // The client follows the honest head.
        let height = honest.height();
        let head = client.wait_for_height(height + 1).await.unwrap();
        assert_eq!(head.hash.to_string(), honest.block(head.height).hash);
    });
}

/// A node that follows the chain until every validator is gone serves an
/// old chain. A client whose only peer it is verifies its head but
/// reports it stale (the block time is older than the maximum head age),
/// never current.
#[test]
fn a_client_whose_only_peer_serves_an_old_chain_reports_it_stale() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let mut v = network_with(net, &[], &[]);
    let old = Member::start(net, "old", None, &[&v[0].node.tcp]);
    wait_height(&[&v[0], &old], 3, "the follower has the chain");
    for member in &mut v {
        member.kill();
    }
    let max_head_age_ms = 2_000;
    std::thread::sleep(Duration::from_millis(max_head_age_ms + 500));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let freshness = Freshness {
            max_head_age_ms,
            ..Freshness::default()
        };
        let client = client(net, &[&old], freshness, 1);
        let mut events = client.events();
        let head = client.start().await.unwrap();
        assert_eq!(head.hash.to_string(), old.block(head.height).hash, "verified");
        // However long it waits and asks: stale, not current.
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let status = client.status();
            assert!(
                matches!(status, SyncStatus::Stale { age_ms } if age_ms > max_head_age_ms),
                "{status:?}"
            );
            while let Ok(event) = events.try_recv() {
                if let Event::Status(s) = event {
                    seen.push(s);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!seen.contains(&SyncStatus::Current), "{seen:?}");
        assert!(seen.iter().any(|s| matches!(s, SyncStatus::Stale { .. })), "{seen:?}");
    });
}

/// The client's only connected peer (its bootstrap node, a follower, named
/// by a `/dns4/localhost` address) is killed; the validators, learned
/// through "get peers", are dialled and verified heads resume within 5 s.
#[test]
fn when_its_only_peer_dies_the_client_reconnects_to_a_learned_peer_within_5_s() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    let v = network_with(net, &[], &[]);
    let mut follower = Member::start(net, "follower", None, &[&v[0].node.tcp]);
    wait_height(&[&v[0], &follower], 3, "the chain runs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A DNS name (resolved by the system resolver; localhost only).
        let by_name = follower.node.tcp.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
        assert!(by_name.starts_with("/dns4/localhost/tcp/"), "{by_name}");
        let client = client_at(net, vec![by_name], Freshness::default(), 1);
        client.start().await.unwrap();
        let others: Vec<String> = v.iter().map(|m| m.node.peer_id.clone()).collect();
        until("addresses of other nodes learned", Duration::from_secs(10), || {
            client
                .known_addresses()
                .iter()
                .any(|a| others.iter().any(|o| a.to_string().ends_with(o.as_str())))
        })
        .await;
        assert_eq!(client.connections().len(), 1, "min_peers 1: only the bootstrap node");
        follower.kill();
        let killed = Instant::now();
        let height = client.head().height;
        let head = tokio::time::timeout(PROGRESS, client.wait_for_height(height + 1))
            .await
            .unwrap()
            .unwrap();
        let waited = killed.elapsed();
        assert!(
            waited <= Duration::from_secs(5),
            "verified heads resumed after {waited:?}"
        );
        assert_eq!(head.hash.to_string(), v[1].block(head.height).hash);
        assert!(client.peers().iter().any(|p| others.contains(&p.to_string())));
        eprintln!(
            "reconnected and verified height {} {waited:?} after the kill",
            head.height
        );
    });
}
