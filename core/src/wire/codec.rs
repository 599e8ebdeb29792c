use prost::Message;

use super::error::DecodeError;
use super::limits;
use super::proto;
use super::topic::Topic;
use super::validate::Validate;

/// A top-level message: one that travels alone on a topic or a protocol,
/// with its own size cap.
pub trait WireMessage: Message + Default + Validate {
    /// Name used in errors.
    const NAME: &'static str;
    /// Largest encoding accepted.
    const MAX_SIZE: usize;
}

macro_rules! wire_message {
    ($ty:ty, $name:literal, $max:expr) => {
        impl WireMessage for $ty {
            const NAME: &'static str = $name;
            const MAX_SIZE: usize = $max;
        }
    };
}

wire_message!(proto::BlocksMessage, "BlocksMessage", Topic::Blocks.max_message_size());
wire_message!(proto::VotesMessage, "VotesMessage", Topic::Votes.max_message_size());
wire_message!(proto::ProofsMessage, "ProofsMessage", Topic::Proofs.max_message_size());
wire_message!(
    proto::SnapshotsMessage,
    "SnapshotsMessage",
    Topic::Snapshots.max_message_size()
);
wire_message!(proto::MetaMessage, "MetaMessage", Topic::Meta.max_message_size());
wire_message!(proto::Hello, "Hello", limits::MAX_HANDSHAKE_MESSAGE);
wire_message!(
    proto::HandshakeResponse,
    "HandshakeResponse",
    limits::MAX_HANDSHAKE_MESSAGE
);
wire_message!(proto::SyncRequest, "SyncRequest", limits::MAX_SYNC_REQUEST);
wire_message!(proto::SyncResponse, "SyncResponse", limits::MAX_SYNC_RESPONSE);
// Stored by nodes and served by the sync protocol; the same cap as on `blocks`.
wire_message!(
    proto::FinalizedBlock,
    "FinalizedBlock",
    Topic::Blocks.max_message_size()
);
wire_message!(proto::IdentityRecord, "IdentityRecord", limits::MAX_HANDSHAKE_MESSAGE);

/// Decodes and validates a top-level message.
///
/// The size cap is checked before prost sees the bytes, so no input can make
/// the decoder allocate more than a constant factor of `M::MAX_SIZE`.
///
/// Only the canonical encoding is accepted ([`DecodeError::NonCanonical`]):
/// the decoded message must encode back to exactly `bytes`. prost's
/// encoding is deterministic (fields in tag order, defaults omitted, packed
/// scalars, no maps in the schema), so every message has exactly one
/// accepted encoding, and a content-addressed id (the GossipSub message id)
/// names the content, not one of its many encodings.
pub fn decode<M: WireMessage>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > M::MAX_SIZE {
        return Err(DecodeError::TooLarge {
            message: M::NAME,
            len: bytes.len(),
            max: M::MAX_SIZE,
        });
    }
    let message = M::decode(bytes).map_err(|e| DecodeError::Malformed {
        message: M::NAME,
        reason: e.to_string(),
    })?;
    message.validate().map_err(|error| DecodeError::Invalid {
        message: M::NAME,
        error,
    })?;
    let canonical_len = message.encoded_len();
    if canonical_len != bytes.len() || message.encode_to_vec() != bytes {
        return Err(DecodeError::NonCanonical {
            message: M::NAME,
            len: bytes.len(),
            canonical_len,
        });
    }
    Ok(message)
}

/// The canonical encoding of a message (prost: fields in tag order, defaults omitted).
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}
