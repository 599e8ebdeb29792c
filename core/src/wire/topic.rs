//! Topic names: `/tiernet/<network_id>/<name>/1`.

use std::fmt;
use std::str::FromStr;

use super::limits;

/// The five gossip topics. Each carries one protobuf payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Proposals and finalized blocks ([`super::proto::BlocksMessage`]).
    Blocks,
    /// Votes and round certificates ([`super::proto::VotesMessage`]).
    Votes,
    /// Proof envelopes ([`super::proto::ProofsMessage`]).
    Proofs,
    /// Snapshot announcements ([`super::proto::SnapshotsMessage`]).
    Snapshots,
    /// Heartbeats and uptime witnesses ([`super::proto::MetaMessage`]).
    Meta,
}

impl Topic {
    /// All topics, in a fixed order.
    pub const ALL: [Topic; 5] = [
        Topic::Blocks,
        Topic::Votes,
        Topic::Proofs,
        Topic::Snapshots,
        Topic::Meta,
    ];

    /// The short name used in the topic string.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Blocks => "blocks",
            Topic::Votes => "votes",
            Topic::Proofs => "proofs",
            Topic::Snapshots => "snapshots",
            Topic::Meta => "meta",
        }
    }

    /// The size cap of one message on this topic.
    pub const fn max_message_size(self) -> usize {
        match self {
            Topic::Blocks => limits::MAX_BLOCKS_MESSAGE,
            Topic::Votes => limits::MAX_VOTES_MESSAGE,
            Topic::Proofs => limits::MAX_PROOFS_MESSAGE,
            Topic::Snapshots => limits::MAX_SNAPSHOTS_MESSAGE,
            Topic::Meta => limits::MAX_META_MESSAGE,
        }
    }

    /// The full topic string for a network: `/tiernet/<network_id>/<name>/1`.
    pub fn topic_string(self, network: &NetworkId) -> String {
        format!("/tiernet/{}/{}/1", network.as_str(), self.name())
    }

    /// Parses a full topic string of `network`; `None` if it is not one of ours.
    pub fn from_topic_string(network: &NetworkId, topic: &str) -> Option<Topic> {
        let rest = topic.strip_prefix("/tiernet/")?.strip_prefix(network.as_str())?;
        let name = rest.strip_prefix('/')?.strip_suffix("/1")?;
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated network id: 1 to 32 characters of `[a-z0-9-]`, not starting
/// or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(String);

/// A string that is not a valid network id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network id {id:?}: {reason}")]
pub struct InvalidNetworkId {
    /// The rejected input (truncated to 64 characters).
    pub id: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

impl NetworkId {
    /// Checks the rules and wraps the id.
    pub fn new(id: &str) -> Result<Self, InvalidNetworkId> {
        check_network_id(id).map_err(|reason| InvalidNetworkId {
            id: id.chars().take(64).collect(),
            reason,
        })?;
        Ok(NetworkId(id.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NetworkId {
    type Err = InvalidNetworkId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetworkId::new(s)
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The network id rules, as a reason on failure.
pub(crate) fn check_network_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > limits::MAX_NETWORK_ID_LEN {
        return Err("it is longer than 32 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("only a-z, 0-9 and '-' are allowed");
    }
    if id.starts_with('-') || id.ends_with('-') {
        return Err("it may not start or end with '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_strings_round_trip() {
        let net = NetworkId::new("devnet-1").unwrap();
        for topic in Topic::ALL {
            let s = topic.topic_string(&net);
            assert_eq!(s, format!("/tiernet/devnet-1/{}/1", topic.name()));
            assert_eq!(Topic::from_topic_string(&net, &s), Some(topic));
        }
        let other = NetworkId::new("devnet-2").unwrap();
        assert_eq!(Topic::from_topic_string(&other, "/tiernet/devnet-1/blocks/1"), None);
        assert_eq!(Topic::from_topic_string(&net, "/tiernet/devnet-1/blocks/2"), None);
        assert_eq!(Topic::from_topic_string(&net, "/tiernet/devnet-1/nope/1"), None);
        assert_eq!(Topic::from_topic_string(&net, "/tiernet/devnet-1x/blocks/1"), None);
    }

    #[test]
    fn network_id_rules() {
        for ok in ["a", "devnet", "main-1", "0123456789abcdef0123456789abcdef"] {
            assert!(NetworkId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Dev", "a_b", "-a", "a-", "a/b", "0123456789abcdef0123456789abcdef0"] {
            assert!(NetworkId::new(bad).is_err(), "{bad}");
        }
    }
}
