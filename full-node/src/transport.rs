//! The node's transports: TCP, WebSocket (plain and TLS) and WebRTC-direct,
//! each authenticated and multiplexed where the transport needs it.
//!
//! | transport | address | security | muxer |
//! |---|---|---|---|
//! | TCP | `/ip4/…/tcp/<port>` | Noise XX | Yamux |
//! | WebSocket | `/ip4/…/tcp/<port>/ws` | Noise XX | Yamux |
//! | secure WebSocket | `/ip4/…/tcp/<port>/tls/ws` | TLS + Noise XX | Yamux |
//! | WebRTC-direct | `/ip4/…/udp/<port>/webrtc-direct/certhash/…` | DTLS (built in) | SCTP data channels (built in) |
//!
//! [`build`] is used by the node and by native clients (tests, tools), so
//! both sides speak exactly the same stack.

use std::path::Path;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Transport, dns, noise, tcp, websocket, yamux};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What goes into the transport stack.
pub struct TransportOptions {
    /// WebRTC-direct certificate; `None` leaves WebRTC out.
    pub webrtc_certificate: Option<libp2p_webrtc::tokio::Certificate>,
    /// TLS server configuration for `/tls/ws` listeners (and the trust anchors
    /// for dialing them); `None` for plain WebSocket only.
    pub websocket_tls: Option<websocket::tls::Config>,
}

/// A transport stack that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The Noise configuration could not be derived from the key.
    #[error("cannot set up Noise")]
    Noise(#[source] noise::Error),
    /// The system DNS configuration could not be read.
    #[error("cannot set up DNS resolution")]
    Dns(#[source] std::io::Error),
    /// A TLS certificate or key file could not be read or parsed.
    #[error("TLS {what} {path}: {reason}")]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// TCP settings shared by the TCP and WebSocket transports.
fn tcp_config() -> tcp::Config {
    tcp::Config::default().nodelay(true)
}

/// Builds the transport stack for `key`.
pub fn build(key: &Keypair, options: TransportOptions) -> Result<Boxed<(PeerId, StreamMuxerBox)>, TransportError> {
    let noise = || noise::Config::new(key).map_err(TransportError::Noise);
    // DNS sits *under* WebSocket: the WebSocket layer must see the host name
    // of `/dns4/<name>/tcp/<port>/tls/ws` to send it as the TLS server name
    // and check the certificate against it; only then is it resolved.
    let dns_tcp =
        || dns::tokio::Transport::system(tcp::tokio::Transport::new(tcp_config())).map_err(TransportError::Dns);
    let tcp = dns_tcp()?
        .upgrade(Version::V1Lazy)
        .authenticate(noise()?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let mut ws = websocket::Config::new(dns_tcp()?);
    if let Some(tls) = options.websocket_tls {
        ws.set_tls_config(tls);
    }
    let ws = ws
        .upgrade(Version::V1Lazy)
        .authenticate(noise()?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    // WebSocket first: the plain TCP transport refuses `/ws` addresses anyway,
    // but this keeps the intent obvious.
    let stream_transports = ws.or_transport(tcp).map(|either, _| either.into_inner());
    Ok(match options.webrtc_certificate {
        Some(certificate) => libp2p_webrtc::tokio::Transport::new(key.clone(), certificate)
            .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
            .or_transport(stream_transports)
            .map(|either, _| either.into_inner())
            .boxed(),
        None => stream_transports.boxed(),
    })
}

/// Upgrades a byte-stream transport with the node's stack, Noise XX then
/// Yamux, for transports of the caller's (the network simulator's links
/// with latency): they authenticate and multiplex exactly like TCP.
pub fn secure_stream<T>(raw: T, key: &Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, TransportError>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
    T::Error: Send + Sync + 'static,
{
    Ok(raw
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key).map_err(TransportError::Noise)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

/// Reads a PEM certificate chain and private key for secure WebSocket.
pub fn load_websocket_tls(cert_file: &Path, key_file: &Path) -> Result<websocket::tls::Config, TransportError> {
    let tls_error = |what, path: &Path, reason: String| TransportError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| tls_error("certificate", cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("certificate", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_error("certificate", cert_file, "no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| tls_error("key", key_file, e.to_string()))?;
    // `tls::PrivateKey::new` panics on a key it cannot classify; the PEM
    // parser above already classified it, so re-checking here keeps that
    // from ever happening.
    let der = key.secret_der().to_vec();
    PrivateKeyDer::try_from(der.clone()).map_err(|e| tls_error("key", key_file, e.to_string()))?;
    websocket::tls::Config::new(
        websocket::tls::PrivateKey::new(der),
        certs.into_iter().map(|c| websocket::tls::Certificate::new(c.to_vec())),
    )
    .map_err(|e| tls_error("certificate", cert_file, e.to_string()))
}

/// The transport an address belongs to: `tcp`, `ws`, `tls-ws`, `webrtc-direct` or `other`.
pub fn transport_name(addr: &Multiaddr) -> &'static str {
    let mut name = "other";
    for protocol in addr.iter() {
        name = match protocol {
            Protocol::Tcp(_) if name == "other" => "tcp",
            Protocol::Ws(_) if name == "tls" => "tls-ws",
            Protocol::Ws(_) => "ws",
            Protocol::Tls => "tls",
            Protocol::WebRTCDirect => "webrtc-direct",
            _ => name,
        };
    }
    if name == "tls" { "other" } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names() {
        let name = |s: &str| transport_name(&s.parse().unwrap());
        assert_eq!(name("/ip4/127.0.0.1/tcp/1"), "tcp");
        assert_eq!(name("/ip4/127.0.0.1/tcp/1/ws"), "ws");
        assert_eq!(name("/ip4/127.0.0.1/tcp/1/tls/ws"), "tls-ws");
        assert_eq!(name("/ip4/127.0.0.1/udp/1/webrtc-direct"), "webrtc-direct");
        assert_eq!(name("/ip4/127.0.0.1/udp/1/quic-v1"), "other");
    }

    /// What a browser sends to a WebRTC-direct listener, and what it answers.
    mod ice {
        use libp2p::{futures::StreamExt, swarm::SwarmEvent};
        use webrtc::{
            ice::{control::AttrControlling, priority::PriorityAttr, use_candidate::UseCandidateAttr},
            stun::{
                agent::TransactionId,
                attributes::ATTR_USERNAME,
                fingerprint::FINGERPRINT,
                integrity::MessageIntegrity,
                message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter},
                textattrs::Username,
                xoraddr::XorMappedAddress,
            },
        };

        use super::*;

        /// A node's transport listening on WebRTC-direct, driven by a task:
        /// its UDP port and the task.
        pub async fn listener() -> (u16, tokio::task::JoinHandle<()>) {
            listener_with(libp2p::swarm::dummy::Behaviour).await
        }

        /// As [`listener`], with `behaviour` judging the connections.
        pub async fn listener_with<B>(behaviour: B) -> (u16, tokio::task::JoinHandle<()>)
        where
            B: libp2p::swarm::NetworkBehaviour + Send + 'static,
            B::ToSwarm: Send,
        {
            let key = Keypair::generate_ed25519();
            let certificate = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng()).unwrap();
            let options = TransportOptions {
                webrtc_certificate: Some(certificate),
                websocket_tls: None,
            };
            let mut swarm = libp2p::Swarm::new(
                build(&key, options).unwrap(),
                behaviour,
                key.public().to_peer_id(),
                libp2p::swarm::Config::with_tokio_executor(),
            );
            swarm
                .listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap())
                .unwrap();
            let port = loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    break address
                        .iter()
                        .find_map(|p| match p {
                            libp2p::multiaddr::Protocol::Udp(port) => Some(port),
                            _ => None,
                        })
                        .unwrap();
                }
            };
            let task = tokio::spawn(async move {
                loop {
                    swarm.select_next_some().await;
                }
            });
            (port, task)
        }

        /// A browser's connectivity check (controlling; `nominate` adds
        /// USE-CANDIDATE), for a connection of its own: in libp2p's
        /// WebRTC-direct both sides use the dialer's ufrag, and the password
        /// is the ufrag.
        pub fn check(nominate: bool) -> Message {
            let ufrag = format!("libp2p+webrtc+v1/{:032x}", rand::random::<u128>());
            let mut setters: Vec<Box<dyn Setter>> = vec![
                Box::new(BINDING_REQUEST),
                Box::new(TransactionId::new()),
                Box::new(Username::new(ATTR_USERNAME, format!("{ufrag}:{ufrag}"))),
                Box::new(AttrControlling(7)),
                Box::new(PriorityAttr(1_845_501_695)),
            ];
            if nominate {
                setters.push(Box::new(UseCandidateAttr::new()));
            }
            setters.push(Box::new(MessageIntegrity::new_short_term_integrity(ufrag)));
            setters.push(Box::new(FINGERPRINT));
            let mut message = Message::new();
            message.build(&setters).unwrap();
            message
        }

        /// The browser's success answer to the node's check `request`, seen
        /// from `from` (signed with the browser's password: its ufrag, the
        /// first part of the check's user name).
        pub fn success(request: &Message, from: std::net::SocketAddr) -> Message {
            let username = Username::get_from_as(request, ATTR_USERNAME).unwrap().to_string();
            let ufrag = username.split(':').next().unwrap().to_owned();
            let mut message = Message::new();
            message
                .build(&[
                    Box::new(BINDING_SUCCESS),
                    Box::new(request.transaction_id),
                    Box::new(XorMappedAddress {
                        ip: from.ip(),
                        port: from.port(),
                    }),
                    Box::new(MessageIntegrity::new_short_term_integrity(ufrag)),
                    Box::new(FINGERPRINT),
                ])
                .unwrap();
            message
        }

        /// The next STUN message on `socket` (other datagrams are returned as `Err`).
        pub async fn receive(socket: &tokio::net::UdpSocket) -> Result<Message, Vec<u8>> {
            let mut buf = [0u8; 1500];
            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
            let mut message = Message::new();
            message.raw = buf[..n].to_vec();
            match message.decode() {
                Ok(()) => Ok(message),
                Err(_) => Err(buf[..n].to_vec()),
            }
        }

        /// A DTLS 1.2 ClientHello offering what a browser offers for WebRTC.
        pub fn client_hello() -> Vec<u8> {
            let mut body = vec![0xfe, 0xfd]; // DTLS 1.2
            body.extend_from_slice(&[7u8; 32]); // random
            body.push(0); // session id
            body.push(0); // cookie
            body.extend_from_slice(&[0, 2, 0xc0, 0x2b]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            body.extend_from_slice(&[1, 0]); // no compression
            let extensions: Vec<u8> = [
                &[0x00, 0x0a, 0, 4, 0, 2, 0x00, 0x17][..], // supported groups: P-256
                &[0x00, 0x0b, 0, 2, 1, 0][..],             // point formats: uncompressed
                &[0x00, 0x0d, 0, 4, 0, 2, 0x04, 0x03][..], // signatures: ECDSA P-256 SHA-256
                &[0x00, 0x17, 0, 0][..],                   // extended master secret
            ]
            .concat();
            body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
            body.extend_from_slice(&extensions);
            let len = (body.len() as u32).to_be_bytes();
            let mut handshake = vec![1, len[1], len[2], len[3], 0, 0, 0, 0, 0, len[1], len[2], len[3]];
            handshake.extend_from_slice(&body);
            let mut record = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
            record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
            record.extend_from_slice(&handshake);
            record
        }

        /// Refuses the first inbound connection, as a node at its limits does.
        #[derive(Default)]
        pub struct RefuseFirst {
            refused: bool,
        }

        impl libp2p::swarm::NetworkBehaviour for RefuseFirst {
            type ConnectionHandler = libp2p::swarm::dummy::ConnectionHandler;
            type ToSwarm = std::convert::Infallible;

            fn handle_pending_inbound_connection(
                &mut self,
                _: libp2p::swarm::ConnectionId,
                _: &libp2p::Multiaddr,
                _: &libp2p::Multiaddr,
            ) -> Result<(), libp2p::swarm::ConnectionDenied> {
                if self.refused {
                    return Ok(());
                }
                self.refused = true;
                Err(libp2p::swarm::ConnectionDenied::new(std::io::Error::other(
                    "at the limit",
                )))
            }

            fn handle_established_inbound_connection(
                &mut self,
                _: libp2p::swarm::ConnectionId,
                _: PeerId,
                _: &libp2p::Multiaddr,
                _: &libp2p::Multiaddr,
            ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
                Ok(libp2p::swarm::dummy::ConnectionHandler)
            }

            fn handle_established_outbound_connection(
                &mut self,
                _: libp2p::swarm::ConnectionId,
                _: PeerId,
                _: &libp2p::Multiaddr,
                _: libp2p::core::Endpoint,
                _: libp2p::core::transport::PortUse,
            ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
                Ok(libp2p::swarm::dummy::ConnectionHandler)
            }

            fn on_swarm_event(&mut self, _: libp2p::swarm::FromSwarm) {}

            fn on_connection_handler_event(
                &mut self,
                _: PeerId,
                _: libp2p::swarm::ConnectionId,
                event: libp2p::swarm::THandlerOutEvent<Self>,
            ) {
                match event {}
            }

            fn poll(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<libp2p::swarm::ToSwarm<Self::ToSwarm, libp2p::swarm::THandlerInEvent<Self>>>
            {
                std::task::Poll::Pending
            }
        }

        /// Whether `message` is a binding request (the node checking back).
        pub fn is_request(message: &Message) -> bool {
            message.typ == BINDING_REQUEST
        }

        /// How a test source behaves.
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub enum Source {
            /// Sends its check once and answers nothing.
            Once,
            /// Sends its check every 100 ms while unanswered, answers nothing.
            Repeating,
            /// Sends its check every 100 ms while unanswered and answers the
            /// node's checks, as a browser does.
            Answering,
        }

        /// Sends `check` from `socket` to the listener at `port` as `source`
        /// does and says whether the check was answered within 3 s.
        pub async fn answered(socket: &tokio::net::UdpSocket, port: u16, check: &Message, source: Source) -> bool {
            let id: TransactionId = check.transaction_id;
            let local = socket.local_addr().unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(3), async {
                let mut sent = false;
                loop {
                    if source != Source::Once || !sent {
                        socket.send_to(&check.raw, ("127.0.0.1", port)).await.unwrap();
                        sent = true;
                    }
                    let received = tokio::time::timeout(std::time::Duration::from_millis(100), receive(socket));
                    let Ok(Ok(message)) = received.await else { continue };
                    if message.typ == BINDING_SUCCESS && message.transaction_id == id {
                        return;
                    }
                    if source == Source::Answering && is_request(&message) {
                        let answer = success(&message, local);
                        socket.send_to(&answer.raw, ("127.0.0.1", port)).await.unwrap();
                    }
                }
            })
            .await
            .is_ok()
        }
    }

    /// A browser's first ICE check reaches a node's WebRTC-direct listener
    /// before the listener has a connection for it. libp2p-webrtc 0.10.0-alpha
    /// drops that request, so every browser connection waited for Chromium's
    /// retransmission (48 ms); the patched copy in third_party hands it to the
    /// connection once created. One request, never repeated, must be answered.
    #[tokio::test]
    async fn the_first_ice_check_to_a_webrtc_listener_is_answered() {
        let (port, node) = ice::listener().await;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let answered = ice::answered(&socket, port, &ice::check(false), ice::Source::Once).await;
        node.abort();
        assert!(answered, "the single binding request went unanswered");
    }

    /// A browser whose first connection attempt the node refused (at its
    /// limits) can try again from the same address. libp2p-webrtc
    /// 0.10.0-alpha kept a reported address until a connection registered
    /// it, so after a refusal that source was never heard again (and refused
    /// sources piled up without bound); the patched copy forgets the address
    /// when its attempt ends.
    #[tokio::test]
    async fn a_webrtc_source_refused_once_can_connect_again() {
        let (port, node) = ice::listener_with(ice::RefuseFirst::default()).await;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let refused = ice::check(false);
        socket.send_to(&refused.raw, ("127.0.0.1", port)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let answered = ice::answered(&socket, port, &ice::check(false), ice::Source::Repeating).await;
        node.abort();
        assert!(answered, "a source refused once is never answered again");
    }

    /// Binding requests from sources that never receive anything (spoofed
    /// source addresses) start at most `UNPROVEN_ATTEMPTS` (8) connection
    /// attempts at once; beyond them a new source is reported only after it
    /// answered a check of ours. libp2p-webrtc 0.10.0-alpha reported every
    /// new source at once, each attempt holding one of the node's pending
    /// slots (16 by default, shared with TCP and WebSocket) for up to the
    /// handshake timeout: ~2 spoofed datagrams a second kept every newcomer out.
    #[tokio::test]
    async fn spoofed_webrtc_sources_hold_few_attempts_and_real_ones_still_get_in() {
        let (port, node) = ice::listener().await;
        let mut deaf = Vec::new();
        for _ in 0..8 {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket
                .send_to(&ice::check(false).raw, ("127.0.0.1", port))
                .await
                .unwrap();
            deaf.push(socket);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let ninth = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let deaf_admitted = ice::answered(&ninth, port, &ice::check(false), ice::Source::Repeating).await;
        let browser = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let browser_admitted = ice::answered(&browser, port, &ice::check(false), ice::Source::Answering).await;
        node.abort();
        assert!(!deaf_admitted, "a ninth source that answers nothing started an attempt");
        assert!(browser_admitted, "a source that answers the node's check was kept out");
    }

    /// The node's ICE-lite agent starts DTLS once a pair is checked both ways,
    /// without waiting for the browser's nomination (which Chromium sends only
    /// with its next check, ~50 ms later): after one check each way, a
    /// ClientHello gets an answer. webrtc-ice 0.17.2 waits for USE-CANDIDATE
    /// and never answers here; the patched copy in third_party does.
    #[tokio::test]
    async fn a_webrtc_listener_starts_dtls_on_the_first_pair_checked_both_ways() {
        let (port, node) = ice::listener().await;
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let check = ice::check(false);
        let dtls_answer = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            let mut sent_hello = false;
            loop {
                // Checks repeated as a browser does until one is answered
                // (this test is about what follows the answer).
                if !sent_hello {
                    socket.send_to(&check.raw, ("127.0.0.1", port)).await.unwrap();
                }
                let received = tokio::time::timeout(std::time::Duration::from_millis(50), ice::receive(&socket));
                let Ok(received) = received.await else { continue };
                match received {
                    Ok(message) if ice::is_request(&message) => {
                        // The node checks back: answer, then start DTLS as a browser does.
                        let answer = ice::success(&message, local);
                        socket.send_to(&answer.raw, ("127.0.0.1", port)).await.unwrap();
                        if !sent_hello {
                            sent_hello = true;
                            socket.send_to(&ice::client_hello(), ("127.0.0.1", port)).await.unwrap();
                        }
                    }
                    Ok(_) => {}
                    // A DTLS record (content types 20..=63): DTLS has started.
                    Err(datagram) if (20..=63).contains(&datagram[0]) => return datagram[0],
                    Err(_) => {}
                }
            }
        })
        .await;
        node.abort();
        assert!(dtls_answer.is_ok(), "no DTLS answer without a nomination");
    }

    #[test]
    fn tls_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "not pem").unwrap();
        let err = load_websocket_tls(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("cert.pem"), "{err}");
    }
}
