//! Issue 3's network tests, with real `tiernet-node` processes on loopback:
//! tiers from genesis through the handshake, native clients over WebSocket
//! and WebRTC-direct, forged Hellos, and what survives a restart.

use std::path::Path;
use std::time::Duration;

use crate::common::{NodeProcess, Started, genesis, peers, wait_for_peers};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tiernet_core::identity::ZsiKeypair;
use tiernet_core::identity::hello::{HelloCheck, HelloInfo, build_hello, epoch_at, verify_hello};
use tiernet_core::wire::sign::SignedMessage;
use tiernet_core::wire::{NetworkId, proto};
use tiernet_node::protocol::{HANDSHAKE_PROTOCOL, HandshakeCodec};
use tiernet_node::transport::{self, TransportOptions};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a node for identity `i` of the genesis in `net`.
fn start_member(net: &Path, i: usize, bootstrap: &[String]) -> NodeProcess {
    let data = net.join(format!("node-{i}"));
    let genesis = net.join("genesis.json");
    let mut args = vec!["--genesis".to_owned(), genesis.display().to_string()];
    for addr in bootstrap {
        args.push("--bootstrap".into());
        args.push(addr.clone());
    }
    args.push("--listen".into());
    args.push("/ip4/127.0.0.1/tcp/0".into());
    args.push("run".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    NodeProcess::start(&data, &args)
}

fn started(process: NodeProcess) -> Started {
    Started::from(process, true)
}

#[test]
fn nodes_learn_each_others_tiers_from_genesis_and_an_unregistered_zsi_is_tl0() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    genesis(net, &["--validators", "2", "--members", "TL1"]);

    let a = started(start_member(net, 0, &[]));
    let b = started(start_member(net, 1, std::slice::from_ref(&a.tcp)));
    let c = started(start_member(net, 2, &[a.tcp.clone(), b.tcp.clone()]));
    // D has a ZSI of its own that genesis does not know.
    let d_dir = net.join("outsider");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_tiernet-node"))
        .arg("--data-dir")
        .arg(&d_dir)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let genesis_file = net.join("genesis.json").display().to_string();
    let d = started(NodeProcess::start(
        &d_dir,
        &[
            "--genesis",
            &genesis_file,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--bootstrap",
            &a.tcp,
            "--bootstrap",
            &b.tcp,
            "--bootstrap",
            &c.tcp,
            "run",
        ],
    ));

    let expected = [(&a, "TL3"), (&b, "TL3"), (&c, "TL1"), (&d, "TL0")];
    for observer in [&a, &b, &c, &d] {
        let others: Vec<_> = expected.iter().filter(|(n, _)| n.peer_id != observer.peer_id).collect();
        let seen = wait_for_peers(&observer.telemetry, "every other node verified", |peers| {
            others.iter().all(|(node, _)| {
                peers
                    .iter()
                    .any(|p| p.peer_id == node.peer_id && p.zsi_id.is_some() && p.connected)
            })
        });
        for (node, tier) in &others {
            let view = seen.iter().find(|p| p.peer_id == node.peer_id).unwrap();
            assert_eq!(&view.tier, tier, "{} as seen by {}", node.peer_id, observer.peer_id);
            assert_eq!(view.zsi_id, node.zsi_id, "the proven ZSI is the node's own");
            assert_eq!(view.transports, vec!["tcp".to_owned()]);
        }
    }
    drop((a.process, b.process, c.process, d.process));
}

/// A native client: request-response handshake over the node's transports.
struct Client {
    swarm: Swarm<request_response::Behaviour<HandshakeCodec>>,
}

impl Client {
    fn new() -> Self {
        Self::with_tls(None)
    }

    /// A client whose secure WebSocket dials trust `tls`.
    fn with_tls(websocket_tls: Option<libp2p::websocket::tls::Config>) -> Self {
        let key = Keypair::generate_ed25519();
        let certificate = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng()).unwrap();
        let transport = transport::build(
            &key,
            TransportOptions {
                webrtc_certificate: Some(certificate),
                websocket_tls,
            },
        )
        .unwrap();
        let behaviour = request_response::Behaviour::new(
            [(HANDSHAKE_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(CLIENT_TIMEOUT),
        );
        let mut swarm = Swarm::new(
            transport,
            behaviour,
            key.public().to_peer_id(),
            libp2p::swarm::Config::with_tokio_executor().with_idle_connection_timeout(CLIENT_TIMEOUT),
        );
        // libp2p-webrtc dials from its listening UDP socket: it needs one.
        swarm
            .listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap())
            .unwrap();
        Self { swarm }
    }

    fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Dials `addr`, sends the Hello `make(local, remote)` and returns the answer.
    async fn handshake(
        &mut self,
        addr: &str,
        make: impl FnOnce(PeerId, PeerId) -> proto::Hello,
    ) -> (PeerId, proto::HandshakeResponse) {
        let addr: Multiaddr = addr.parse().unwrap();
        self.swarm.dial(addr.clone()).unwrap();
        let remote = tokio::time::timeout(CLIENT_TIMEOUT, async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => return peer_id,
                    SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial {addr} failed: {error}"),
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no connection to {addr} within {CLIENT_TIMEOUT:?}"));
        let hello = make(self.peer_id(), remote);
        self.swarm.behaviour_mut().send_request(&remote, hello);
        let response = tokio::time::timeout(CLIENT_TIMEOUT, async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. },
                        ..
                    }) => return response,
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                        panic!("handshake request failed: {error}")
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("a handshake response");
        (remote, response)
    }

    /// Waits until the connection to `peer` is closed (by the node).
    async fn wait_closed(&mut self, peer: PeerId) {
        tokio::time::timeout(CLIENT_TIMEOUT, async {
            loop {
                if let SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } = self.swarm.select_next_some().await
                    && peer_id == peer
                {
                    return;
                }
            }
        })
        .await
        .expect("the node closes the connection");
    }
}

fn devnet() -> NetworkId {
    NetworkId::new("devnet").unwrap()
}

fn info() -> HelloInfo {
    HelloInfo {
        network: devnet(),
        epoch: epoch_at(tiernet_node::node::now_ms()),
        features: vec![],
        agent: "test-client/0".into(),
    }
}

/// The node's Hello in a response, verified from the client's side.
fn node_identity(response: &proto::HandshakeResponse, node: PeerId, client: PeerId) -> Option<String> {
    let Some(proto::handshake_response::Result::Hello(hello)) = &response.result else {
        panic!("expected the node's Hello, got {response:?}");
    };
    let network = devnet();
    let check = HelloCheck {
        network: &network,
        sender: node,
        receiver: client,
        current_epoch: info().epoch,
        epoch_tolerance: 1,
    };
    verify_hello(hello, &check)
        .expect("the node's Hello verifies")
        .identity
        .map(|i| i.zsi_id.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_client_handshakes_over_websocket_and_webrtc_direct_as_tl0() {
    let dir = tempfile::tempdir().unwrap();
    genesis(dir.path(), &["--validators", "1"]);
    let node = tokio::task::spawn_blocking({
        let net = dir.path().to_owned();
        move || {
            let mut process = start_member(&net, 0, &[]);
            let ws = process.addr_with("/ws/");
            let webrtc = process.addr_with("/webrtc-direct/");
            let s = started(process);
            (s, ws, webrtc)
        }
    })
    .await
    .unwrap();
    let (node, ws, webrtc) = node;
    assert!(webrtc.contains("/certhash/"), "{webrtc}");

    for (addr, transport) in [(&ws, "ws"), (&webrtc, "webrtc-direct")] {
        let mut client = Client::new();
        let (remote, response) = client
            .handshake(addr, |local, remote| build_hello(None, &info(), &local, &remote))
            .await;
        assert_eq!(remote.to_string(), node.peer_id);
        assert_eq!(node_identity(&response, remote, client.peer_id()), node.zsi_id);
        let telemetry = node.telemetry.clone();
        let me = client.peer_id().to_string();
        let views = tokio::task::spawn_blocking(move || {
            wait_for_peers(&telemetry, "the client is listed", |peers| {
                peers.iter().any(|p| p.peer_id == me && p.connected)
            })
        })
        .await
        .unwrap();
        let view = views
            .iter()
            .find(|p| p.peer_id == client.peer_id().to_string())
            .unwrap();
        assert_eq!(view.tier, "TL0");
        assert_eq!(view.zsi_id, None);
        assert_eq!(view.transports, vec![transport.to_owned()], "{view:?}");
    }
    drop(node.process);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_hellos_are_rejected_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    genesis(dir.path(), &["--validators", "1", "--members", "TL1"]);
    // The forger holds a real, registered identity (member-0), so only the
    // forgery itself can be the reason for a rejection.
    let identity = ZsiKeypair::load(&dir.path().join("node-1").join("zsi_key"))
        .unwrap()
        .unwrap();
    let node = tokio::task::spawn_blocking({
        let net = dir.path().to_owned();
        move || started(start_member(&net, 0, &[]))
    })
    .await
    .unwrap();
    let addr = node.tcp.clone();

    // A genuine Hello is accepted: the baseline.
    let mut honest = Client::new();
    let (_, response) = honest
        .handshake(&addr, |local, remote| {
            build_hello(Some(&identity), &info(), &local, &remote)
        })
        .await;
    assert!(matches!(
        response.result,
        Some(proto::handshake_response::Result::Hello(_))
    ));

    type Forge = Box<dyn FnOnce(PeerId, PeerId) -> proto::Hello>;
    let forgeries: Vec<(&str, Forge)> = vec![
        (
            "wrong signature",
            Box::new({
                let identity = identity.clone();
                move |local, remote| {
                    let mut hello = build_hello(Some(&identity), &info(), &local, &remote);
                    hello.signature[7] ^= 1;
                    hello
                }
            }),
        ),
        (
            "wrong VRF proof",
            Box::new({
                let identity = identity.clone();
                move |local, remote| {
                    let mut hello = build_hello(Some(&identity), &info(), &local, &remote);
                    hello.vrf_proof[7] ^= 1;
                    hello.sign_with(identity.identity_key());
                    hello
                }
            }),
        ),
        (
            "replayed from another connection",
            Box::new({
                let identity = identity.clone();
                move |_local, remote| {
                    // Made for another client's connection to the same node.
                    let other = PeerId::random();
                    build_hello(Some(&identity), &info(), &other, &remote)
                }
            }),
        ),
    ];
    for (what, forge) in forgeries {
        let mut client = Client::new();
        let (remote, response) = client.handshake(&addr, forge).await;
        match &response.result {
            Some(proto::handshake_response::Result::Rejected(reason)) => {
                assert!(!reason.is_empty(), "{what}: the rejection says why")
            }
            other => panic!("{what}: expected a rejection, got {other:?}"),
        }
        client.wait_closed(remote).await;
        let telemetry = node.telemetry.clone();
        let me = client.peer_id().to_string();
        tokio::task::spawn_blocking(move || {
            wait_for_peers(&telemetry, "the forger's score falls", |peers| {
                peers
                    .iter()
                    .any(|p| p.peer_id == me && p.score < 0.0 && p.tier == "TL0")
            })
        })
        .await
        .unwrap();
    }
    drop(node.process);
}

#[test]
fn a_restarted_node_keeps_its_identity_certhash_and_peerstore_and_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path();
    genesis(net, &["--validators", "2"]);
    let b = started(start_member(net, 1, &[]));
    let mut a_process = start_member(net, 0, std::slice::from_ref(&b.tcp));
    let certhash = |addr: &str| {
        addr.split("/certhash/")
            .nth(1)
            .map(|s| s.split('/').next().unwrap().to_owned())
    };
    let a_webrtc = a_process.addr_with("/webrtc-direct/");
    let a = started(a_process);
    wait_for_peers(&a.telemetry, "B verified", |peers| {
        peers
            .iter()
            .any(|p| p.peer_id == b.peer_id && p.tier == "TL3" && !p.addrs.is_empty())
    });
    a.process.terminate();
    let mut a_process = a.process;
    assert!(a_process.wait_exit().success());

    // No bootstrap this time: A must find B from its peerstore.
    let mut again = start_member(net, 0, &[]);
    let a2_webrtc = again.addr_with("/webrtc-direct/");
    let a2 = started(again);
    assert_eq!(a2.peer_id, a.peer_id, "same PeerId");
    assert_eq!(certhash(&a2_webrtc), certhash(&a_webrtc), "same certhash");
    assert!(certhash(&a2_webrtc).is_some());
    let known = peers(&a2.telemetry);
    let record = known
        .iter()
        .find(|p| p.peer_id == b.peer_id)
        .expect("B is in the restored peerstore");
    assert_eq!(record.tier, "TL3");
    wait_for_peers(&a2.telemetry, "A reconnects to B by itself", |peers| {
        peers.iter().any(|p| p.peer_id == b.peer_id && p.connected)
    });
    drop((a2.process, b.process));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_a_certificate_serves_secure_websocket() {
    let dir = tempfile::tempdir().unwrap();
    genesis(dir.path(), &["--validators", "1"]);
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    let config = dir.path().join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\ntls_ws = [\"/ip4/127.0.0.1/tcp/0/tls/ws\"]\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert_file.display(),
            key_file.display()
        ),
    )
    .unwrap();
    let (node, tls_ws) = tokio::task::spawn_blocking({
        let net = dir.path().to_owned();
        let config = config.display().to_string();
        move || {
            let data = net.join("node-0");
            let genesis = net.join("genesis.json").display().to_string();
            let mut process = NodeProcess::start(
                &data,
                &[
                    "--config",
                    &config,
                    "--genesis",
                    &genesis,
                    "--listen",
                    "/ip4/127.0.0.1/tcp/0",
                    "run",
                ],
            );
            let tls_ws = process.addr_with("/tls/ws/");
            (started(process), tls_ws)
        }
    })
    .await
    .unwrap();
    // Dial by name so the certificate's subject matches.
    let addr = tls_ws.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    let mut trust = libp2p::websocket::tls::Config::builder();
    trust
        .add_trust(&libp2p::websocket::tls::Certificate::new(cert.der().to_vec()))
        .unwrap();
    let mut client = Client::with_tls(Some(trust.finish()));
    let (remote, response) = client
        .handshake(&addr, |local, remote| build_hello(None, &info(), &local, &remote))
        .await;
    assert_eq!(remote.to_string(), node.peer_id);
    assert_eq!(node_identity(&response, remote, client.peer_id()), node.zsi_id);
    drop(node.process);
}
