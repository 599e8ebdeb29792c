use std::fmt;
use std::path::Path;

use libp2p_identity::{Keypair, PeerId, ed25519};

use super::keyfile::{self, KeyFileError, KeyOrigin, ParseError};

const MAGIC: &str = "tiernet-node-key/v1";
const LABEL: &str = "ed25519";
const HEADER: &str = "tiernet node key (Ed25519): the secret behind this node's PeerId.\nKeep it private; losing it changes the node's identity on the network.";

/// The Ed25519 key behind a node's libp2p PeerId.
#[derive(Clone)]
pub struct NodeKeypair {
    keypair: ed25519::Keypair,
}

impl NodeKeypair {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            keypair: ed25519::Keypair::generate(),
        }
    }

    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> Result<Self, ParseError> {
        let mut secret = zeroize::Zeroizing::new(secret);
        let secret = ed25519::SecretKey::try_from_bytes(secret.as_mut())
            .map_err(|e| ParseError(format!("not an Ed25519 secret key: {e}")))?;
        Ok(Self {
            keypair: ed25519::Keypair::from(secret),
        })
    }

    /// The PeerId derived from the public key.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(&self.keypair.public().into())
    }

    /// The libp2p keypair, for building a swarm.
    pub fn to_libp2p(&self) -> Keypair {
        Keypair::from(self.keypair.clone())
    }

    /// The key in the key file format.
    pub fn to_file_contents(&self) -> zeroize::Zeroizing<String> {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(self.keypair.secret().as_ref());
        keyfile::format_secrets(HEADER, MAGIC, &[(LABEL, &secret)])
    }

    /// Parses the key file format.
    pub fn from_file_contents(contents: &str) -> Result<Self, ParseError> {
        let [secret] = keyfile::parse_secrets(contents, MAGIC, [LABEL])?;
        Self::from_secret(*secret)
    }

    /// Loads the key at `path`, or creates it (mode 0600) if there is no file.
    /// A file that exists but does not parse is an error and stays as it is.
    pub fn load_or_create(path: &Path) -> Result<(Self, KeyOrigin), KeyFileError> {
        if let Some(contents) = keyfile::read(path)? {
            let key = Self::from_file_contents(&contents).map_err(|e| KeyFileError::Corrupt {
                path: path.to_owned(),
                kind: "node",
                reason: e.0,
            })?;
            return Ok((key, KeyOrigin::Loaded));
        }
        let key = Self::generate();
        keyfile::write_new(path, &key.to_file_contents())?;
        Ok((key, KeyOrigin::Created))
    }
}

impl fmt::Debug for NodeKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeypair")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_contents_round_trip() {
        let key = NodeKeypair::generate();
        let text = key.to_file_contents();
        assert!(text.starts_with("# tiernet node key"));
        let back = NodeKeypair::from_file_contents(&text).unwrap();
        assert_eq!(back.peer_id(), key.peer_id());
    }

    #[test]
    fn load_or_create_keeps_the_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("node_key");
        let (first, origin) = NodeKeypair::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let (second, origin) = NodeKeypair::load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(first.peer_id(), second.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_key");
        std::fs::write(&path, "tiernet-node-key/v1 ed25519 zz\n").unwrap();
        let err = NodeKeypair::load_or_create(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(matches!(err, KeyFileError::Corrupt { .. }));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "tiernet-node-key/v1 ed25519 zz\n"
        );
    }
}
