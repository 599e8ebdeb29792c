//! The WebRTC-direct certificate, kept in the store so that the node's
//! `/certhash` (the certificate's fingerprint in its listen address) stays the
//! same across restarts, and browsers given that address can keep dialling it.
//!
//! It is created on first start and loaded afterwards. A stored certificate
//! that does not parse is an error: it is never silently replaced, because a
//! new one would change the certhash every peer and browser knows.

use std::path::PathBuf;

use libp2p_webrtc::tokio::Certificate;
use libp2p_webrtc::tokio::certificate::Error as CertificateError;

use crate::store::{Store, StoreError};

/// The `meta` key holding the certificate and its private key, PEM.
pub const CERTIFICATE_META_KEY: &str = "webrtc_certificate_pem";

/// Errors loading or creating the WebRTC certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored certificate does not parse.
    #[error(
        "the WebRTC certificate stored in {path} (meta key `{CERTIFICATE_META_KEY}`) is unusable: {reason}. \
         It is not replaced automatically, because a new certificate changes this node's /certhash; \
         restore {path} from a backup, or move it aside to start with a new store and certificate"
    )]
    Invalid {
        /// The store's file.
        path: PathBuf,
        /// Why it does not parse.
        reason: String,
    },
    /// A new certificate could not be generated.
    #[error("cannot generate a WebRTC certificate for {path}: {source}")]
    Generate {
        /// The store's file.
        path: PathBuf,
        /// What libp2p-webrtc said.
        source: CertificateError,
    },
}

/// Loads the node's WebRTC certificate from `store`, or creates and stores
/// one if there is none. The `bool` is `true` when it was created now.
pub fn load_or_create_certificate(store: &Store) -> Result<(Certificate, bool), CertError> {
    if let Some(bytes) = store.get_meta(CERTIFICATE_META_KEY)? {
        let invalid = |reason: String| CertError::Invalid {
            path: store.path().to_path_buf(),
            reason,
        };
        let pem = std::str::from_utf8(&bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
        let certificate = Certificate::from_pem(pem).map_err(|e| invalid(format!("not a PEM certificate: {e:?}")))?;
        return Ok((certificate, false));
    }
    let certificate = Certificate::generate(&mut rand::rng()).map_err(|source| CertError::Generate {
        path: store.path().to_path_buf(),
        source,
    })?;
    store.put_meta(CERTIFICATE_META_KEY, certificate.serialize_pem().as_bytes())?;
    Ok((certificate, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::STORE_FILE;

    #[test]
    fn the_certificate_is_created_once_and_kept_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        let first = {
            let store = Store::open(&path).unwrap();
            let (cert, created) = load_or_create_certificate(&store).unwrap();
            assert!(created);
            let (again, created) = load_or_create_certificate(&store).unwrap();
            assert!(!created);
            assert_eq!(again.fingerprint(), cert.fingerprint());
            cert.fingerprint()
        };
        let store = Store::open(&path).unwrap();
        let (cert, created) = load_or_create_certificate(&store).unwrap();
        assert!(!created);
        assert_eq!(cert.fingerprint(), first);
    }

    #[test]
    fn a_corrupt_certificate_is_an_error_and_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(STORE_FILE)).unwrap();
        store.put_meta(CERTIFICATE_META_KEY, b"-----BEGIN garbage").unwrap();
        let err = load_or_create_certificate(&store).unwrap_err();
        assert!(matches!(err, CertError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("not replaced automatically"), "{err}");
        assert_eq!(
            store.get_meta(CERTIFICATE_META_KEY).unwrap().as_deref(),
            Some(&b"-----BEGIN garbage"[..])
        );
        store.put_meta(CERTIFICATE_META_KEY, &[0xff, 0xfe]).unwrap();
        assert!(matches!(
            load_or_create_certificate(&store),
            Err(CertError::Invalid { .. })
        ));
    }
}
