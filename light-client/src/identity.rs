//! ZSI identities read from proven state: the record under
//! `id/<zsi id>` decoded, and its tier computed with the chain's tier
//! thresholds (from the genesis the client was built with, or else proven
//! from the chain parameters under `params` at the same head).
//!
//! [`crate::LightClient::lookup_identity`] is the one place the bindings
//! (wasm, uniffi) read identities from.

use tiernet_core::chain::decode_params;
use tiernet_core::identity::ZsiId;
use tiernet_core::tier::{ReputationRecord, Tier, TierThresholds, tier_of};
use tiernet_core::wire::{decode, proto};

use crate::sync::VerifiedHead;

/// A ZSI identity's record, proven against a verified head's state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenIdentity {
    /// The identity.
    pub id: ZsiId,
    /// Its on-chain reputation.
    pub reputation: ReputationRecord,
    /// Its tier under the chain's thresholds.
    pub tier: Tier,
    /// The head whose state root the record was proven against.
    pub head: VerifiedHead,
}

/// Proven bytes that do not decode: the chain's rules differ from this
/// client's (an upgrade is due); nothing a peer can cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the proven {what} does not decode: {reason}")]
pub struct UndecodableState {
    /// What was read.
    pub what: &'static str,
    /// Why it does not decode.
    pub reason: String,
}

/// Decodes a proven identity record and computes its tier.
pub fn identity_from_record(
    id: ZsiId,
    bytes: &[u8],
    thresholds: &TierThresholds,
    head: VerifiedHead,
) -> Result<ProvenIdentity, UndecodableState> {
    let record = decode::<proto::IdentityRecord>(bytes).map_err(|e| UndecodableState {
        what: "identity record",
        reason: e.to_string(),
    })?;
    let reputation = record
        .reputation
        .as_ref()
        .map(ReputationRecord::from)
        .unwrap_or_default();
    Ok(ProvenIdentity {
        id,
        tier: tier_of(Some(&reputation), thresholds),
        reputation,
        head,
    })
}

/// The tier thresholds in a proven `params` value.
pub fn thresholds_from_params(bytes: &[u8]) -> Result<TierThresholds, UndecodableState> {
    decode_params(bytes)
        .map(|(thresholds, _)| thresholds)
        .ok_or_else(|| UndecodableState {
            what: "chain parameters",
            reason: format!("{} bytes of an unknown version or length", bytes.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::chain::encode_params;
    use tiernet_core::hash::Hash32;
    use tiernet_core::wire::encode;

    fn head() -> VerifiedHead {
        VerifiedHead {
            height: 7,
            hash: Hash32([1; 32]),
            state_root: Hash32([2; 32]),
            time_ms: 0,
        }
    }

    #[test]
    fn a_record_decodes_with_its_tier() {
        let thresholds = TierThresholds::default();
        let id = ZsiId(Hash32([3; 32]));
        let record = proto::IdentityRecord {
            zsi_id: id.0.0.to_vec(),
            identity_key: vec![4; 32],
            vrf_key: vec![5; 32],
            reputation: Some(proto::ReputationRecord {
                uptime_minutes: thresholds.available_uptime_minutes,
                ..Default::default()
            }),
        };
        let proven = identity_from_record(id, &encode(&record), &thresholds, head()).unwrap();
        assert_eq!(proven.tier, Tier::TL2);
        assert_eq!(proven.reputation.uptime_minutes, thresholds.available_uptime_minutes);
        assert_eq!(proven.head.height, 7);
        let error = identity_from_record(id, &[0xff, 0xff, 0xff], &thresholds, head()).unwrap_err();
        assert_eq!(error.what, "identity record");
    }

    #[test]
    fn thresholds_come_from_the_chain_parameters() {
        let thresholds = TierThresholds {
            available_uptime_minutes: 11,
            committed_score: 22,
            reliable_score: 33,
            trusted_score: 44,
        };
        let bytes = encode_params(
            &thresholds,
            &tiernet_core::genesis::ConsensusParams::default(),
            &tiernet_core::genesis::UptimeParams::default(),
        );
        assert_eq!(thresholds_from_params(&bytes).unwrap(), thresholds);
        assert!(thresholds_from_params(&bytes[1..]).is_err());
    }
}
