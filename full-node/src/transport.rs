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

    /// A browser's first ICE check reaches a node's WebRTC-direct listener
    /// before the listener has a connection for it. libp2p-webrtc 0.10.0-alpha
    /// drops that request, so every browser connection waited for Chromium's
    /// retransmission (48 ms); the patched copy in third_party hands it to the
    /// connection once created. One request, never repeated, must be answered.
    #[tokio::test]
    async fn the_first_ice_check_to_a_webrtc_listener_is_answered() {
        use libp2p::{futures::StreamExt, swarm::SwarmEvent};
        use webrtc::{
            ice::{control::AttrControlling, priority::PriorityAttr},
            stun::{
                agent::TransactionId,
                attributes::ATTR_USERNAME,
                fingerprint::FINGERPRINT,
                integrity::MessageIntegrity,
                message::{BINDING_REQUEST, BINDING_SUCCESS, Message},
                textattrs::Username,
            },
        };

        let key = Keypair::generate_ed25519();
        let certificate = libp2p_webrtc::tokio::Certificate::generate(&mut rand::rng()).unwrap();
        let options = TransportOptions {
            webrtc_certificate: Some(certificate),
            websocket_tls: None,
        };
        let mut swarm = libp2p::Swarm::new(
            build(&key, options).unwrap(),
            libp2p::swarm::dummy::Behaviour,
            key.public().to_peer_id(),
            libp2p::swarm::Config::with_tokio_executor(),
        );
        swarm.listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()).unwrap();
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
        let node = tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });

        // What a browser sends: in libp2p's WebRTC-direct both sides use the
        // dialer's ufrag, and the password is the ufrag.
        let ufrag = "libp2p+webrtc+v1/tiernettestufragtiernettestufrag12";
        let mut request = Message::new();
        request
            .build(&[
                Box::new(BINDING_REQUEST),
                Box::new(TransactionId::new()),
                Box::new(Username::new(ATTR_USERNAME, format!("{ufrag}:{ufrag}"))),
                Box::new(AttrControlling(7)),
                Box::new(PriorityAttr(1_845_501_695)),
                Box::new(MessageIntegrity::new_short_term_integrity(ufrag.to_owned())),
                Box::new(FINGERPRINT),
            ])
            .unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&request.raw, ("127.0.0.1", port)).await.unwrap();

        // The node answers (and, as webrtc-rs does, checks back): wait for the success.
        let answered = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            let mut buf = [0u8; 1500];
            loop {
                let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                let mut reply = Message::new();
                reply.raw = buf[..n].to_vec();
                if reply.decode().is_ok() && reply.typ == BINDING_SUCCESS {
                    return reply.transaction_id == request.transaction_id;
                }
            }
        })
        .await;
        node.abort();
        assert_eq!(answered, Ok(true), "the single binding request went unanswered");
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
