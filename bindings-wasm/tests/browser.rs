//! Runs in headless Chromium (`wasm-bindgen-test`, `make test`):
//! `tiernet_core::verify` compiled to wasm32, and the light client on the
//! page's event loop (spawned tasks, timers, channels) over an in-memory
//! transport with real signatures.

#![cfg(target_arch = "wasm32")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tiernet_core::verify::{TrustedState, verify_chain_proof, verify_next};
use tiernet_core::wire::proto;
use tiernet_light::testing::{MemoryTransport, PeerBehaviour, TestChain};
use tiernet_light::transport::TransportEvent;
use tiernet_light::{Event, LightClient};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn trusted(chain: &TestChain) -> TrustedState {
    TrustedState::from_anchor(chain.anchor.clone(), chain.set.clone()).unwrap()
}

fn signed(block: &proto::FinalizedBlock) -> proto::SignedHeader {
    proto::SignedHeader {
        header: block.block.as_ref().and_then(|b| b.header.clone()),
        commit: block.commit.clone(),
    }
}

fn chain_proof(chain: &TestChain, trusted_height: u64) -> proto::ChainProof {
    match chain.chain_proof(trusted_height).kind {
        Some(proto::sync_response::Kind::ChainProof(proof)) => proof,
        other => panic!("no chain proof: {other:?}"),
    }
}

#[wasm_bindgen_test]
fn headers_verify_one_after_another_in_the_browser() {
    let chain = TestChain::new(3);
    let mut state = trusted(&chain);
    for height in 1..=3 {
        state = verify_next(&state, &signed(chain.at(height)), None, &chain.network).unwrap();
        assert_eq!(state.height(), height);
    }
}

#[wasm_bindgen_test]
fn a_chain_proof_verifies_and_a_forged_commit_is_invalid() {
    let chain = TestChain::new(5);
    let proof = chain_proof(&chain, 0);
    assert_eq!(
        verify_chain_proof(&trusted(&chain), &proof, &chain.network)
            .unwrap()
            .height(),
        5
    );

    let mut forged = proof.clone();
    let commit = forged.steps[0].header.as_mut().unwrap().commit.as_mut().unwrap();
    commit.signatures[1].signature[7] ^= 0x40;
    let error = verify_chain_proof(&trusted(&chain), &forged, &chain.network).unwrap_err();
    assert!(error.is_invalid(), "{error}");
}

#[wasm_bindgen_test]
fn too_little_power_is_not_enough_trust_rather_than_invalid() {
    let chain = TestChain::new(1);
    let mut short = signed(chain.at(1));
    short.commit.as_mut().unwrap().signatures.truncate(2);
    let error = verify_next(&trusted(&chain), &short, None, &chain.network).unwrap_err();
    assert!(error.is_not_enough_trust() && !error.is_invalid(), "{error}");
}

async fn sleep(ms: u64) {
    tiernet_light::rt::sleep(Duration::from_millis(ms)).await;
}

#[wasm_bindgen_test]
async fn the_light_client_runs_on_the_page_event_loop_and_drops_a_forger() {
    let chain = Arc::new(Mutex::new(TestChain::new(4)));
    let (checkpoint, network) = {
        let chain = chain.lock().unwrap();
        (chain.checkpoint(), chain.network.clone())
    };
    let transport = MemoryTransport::new(
        Arc::clone(&chain),
        &[PeerBehaviour::Honest, PeerBehaviour::ForgesCommits],
    );
    let (forger, _) = transport.peers()[1];
    let gossip = transport.gossip();
    let client = LightClient::builder()
        .network(network)
        .checkpoint(checkpoint)
        .transport(Box::new(transport))
        .build()
        .unwrap();
    let mut events = client.events();
    assert_eq!(client.start().await.unwrap().height, 4);
    // Questions rotate over the peers: within two new heights the forger
    // has been asked, and its forged proof is rejected.
    for _ in 0..2 {
        if client.is_rejected(&forger) {
            break;
        }
        chain.lock().unwrap().extend();
        client.sync_to_latest().await.unwrap();
    }
    assert!(client.is_rejected(&forger));
    let mut rejected = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::PeerRejected { peer, reason } = event {
            rejected.push((peer, reason));
        }
    }
    assert!(
        rejected.iter().any(|(p, r)| *p == forger && r.contains("commit")),
        "{rejected:?}"
    );
    // A gossiped block is verified by the client's background task.
    let honest = client.peers()[0];
    let height = client.head().height + 1;
    let block = chain.lock().unwrap().extend().clone();
    gossip
        .send(TransportEvent::Block {
            from: honest,
            block: Box::new(block),
        })
        .await
        .unwrap();
    for _ in 0..100 {
        if client.head().height == height {
            break;
        }
        sleep(10).await;
    }
    assert_eq!(client.head().height, height);
}

#[wasm_bindgen_test]
async fn the_js_wrapper_reports_peers_and_heads_to_its_listener() {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    let chain = Arc::new(Mutex::new(TestChain::new(2)));
    let (checkpoint, network) = {
        let chain = chain.lock().unwrap();
        (chain.checkpoint(), chain.network.clone())
    };
    let transport = MemoryTransport::new(Arc::clone(&chain), &[PeerBehaviour::Honest]);
    let inner = LightClient::builder()
        .network(network)
        .checkpoint(checkpoint)
        .transport(Box::new(transport))
        .build()
        .unwrap();
    let client = tiernet_wasm::LightClient::with_inner(inner);
    let seen = js_sys::Array::new();
    let sink = seen.clone();
    let listener = Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
        sink.push(&event);
    });
    client.on_event(listener.as_ref().unchecked_ref::<js_sys::Function>().clone());
    let head = wasm_bindgen_futures::JsFuture::from(client.start()).await.unwrap();
    let height = js_sys::Reflect::get(&head, &"height".into()).unwrap();
    assert_eq!(height.as_f64(), Some(2.0));
    sleep(50).await;
    let types: Vec<String> = seen
        .iter()
        .map(|e| js_sys::Reflect::get(&e, &"type".into()).unwrap().as_string().unwrap())
        .collect();
    assert!(types.contains(&"peerConnected".to_owned()), "{types:?}");
    assert!(types.contains(&"headVerified".to_owned()), "{types:?}");
    let peers = js_sys::Array::from(&client.peers().unwrap());
    assert_eq!(peers.length(), 1);
    let state = js_sys::Reflect::get(&peers.get(0), &"state".into()).unwrap();
    assert_eq!(state.as_string().as_deref(), Some("connected"));
    let transports = js_sys::Array::from(&js_sys::Reflect::get(&peers.get(0), &"transports".into()).unwrap());
    assert_eq!(
        transports.get(0).as_string().as_deref(),
        Some("other"),
        "a /memory address"
    );
    // A bad ZSI id is a typed error, not a panic.
    let error = wasm_bindgen_futures::JsFuture::from(client.lookup_identity("xyz".into()))
        .await
        .unwrap_err();
    let kind = js_sys::Reflect::get(&error, &"kind".into()).unwrap();
    assert_eq!(kind.as_string().as_deref(), Some("BadInput"));
    // Stopped: calls are refused with a kind, the head stays readable.
    client.stop();
    let error = wasm_bindgen_futures::JsFuture::from(client.sync_to_latest())
        .await
        .unwrap_err();
    let kind = js_sys::Reflect::get(&error, &"kind".into()).unwrap();
    assert_eq!(kind.as_string().as_deref(), Some("NotStarted"));
    let head = client.head().unwrap();
    assert_eq!(
        js_sys::Reflect::get(&head, &"height".into()).unwrap().as_f64(),
        Some(2.0)
    );
}
