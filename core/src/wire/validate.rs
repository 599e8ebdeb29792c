//! Structural validation of every wire message: fixed lengths of hashes,
//! keys and signatures, bounds on strings and repeated fields, known enum
//! values, required sub-messages. Runs after the size cap, so every bound
//! here applies to a message that is already bounded in bytes.

use super::error::{FieldError, FieldProblem};
use super::limits::*;
use super::proto::*;
use super::topic::check_network_id;

/// Bytes of a hash or id.
pub(crate) const HASH: usize = 32;
/// Bytes of an Ed25519 or sr25519 public key.
pub(crate) const KEY: usize = 32;
/// Bytes of an Ed25519 signature or a VRF proof.
pub(crate) const SIG: usize = 64;

type R = Result<(), FieldError>;

/// Structural rules of a wire message. `Ok` means every field has a legal
/// shape; it says nothing about signatures or chain rules.
pub trait Validate {
    /// Checks the message and all it contains.
    fn validate(&self) -> R;
}

fn fail(field: &str, problem: FieldProblem) -> R {
    Err(FieldError::new(field, problem))
}

fn fixed(field: &str, bytes: &[u8], len: usize) -> R {
    if bytes.len() != len {
        return fail(
            field,
            FieldProblem::WrongLength {
                expected: len,
                actual: bytes.len(),
            },
        );
    }
    Ok(())
}

fn fixed_or_empty(field: &str, bytes: &[u8], len: usize) -> R {
    if bytes.is_empty() {
        Ok(())
    } else {
        fixed(field, bytes, len)
    }
}

fn max_len(field: &str, len: usize, max: usize) -> R {
    if len > max {
        return fail(field, FieldProblem::TooLong { max, actual: len });
    }
    Ok(())
}

fn max_count(field: &str, count: usize, max: usize) -> R {
    if count > max {
        return fail(field, FieldProblem::TooMany { max, actual: count });
    }
    Ok(())
}

fn each<T: Validate>(field: &str, items: &[T], max: usize) -> R {
    max_count(field, items.len(), max)?;
    for (i, item) in items.iter().enumerate() {
        item.validate().map_err(|e| e.within(&format!("[{i}]")).within(field))?;
    }
    Ok(())
}

fn required<T: Validate>(field: &str, item: &Option<T>) -> R {
    match item {
        Some(item) => item.validate().map_err(|e| e.within(field)),
        None => fail(field, FieldProblem::Missing),
    }
}

fn optional<T: Validate>(field: &str, item: &Option<T>) -> R {
    match item {
        Some(item) => item.validate().map_err(|e| e.within(field)),
        None => Ok(()),
    }
}

fn network(field: &str, id: &str) -> R {
    check_network_id(id).map_err(|rule| FieldError::new(field, FieldProblem::Rule(rule)))
}

fn vote_type(field: &str, value: i32) -> R {
    match VoteType::try_from(value) {
        Ok(VoteType::Prevote | VoteType::Precommit) => Ok(()),
        _ => fail(field, FieldProblem::BadEnum(value)),
    }
}

fn missing_oneof(field: &str) -> R {
    fail(field, FieldProblem::Missing)
}

impl Validate for Header {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        if self.height == 0 {
            return fail("height", FieldProblem::Rule("must be at least 1"));
        }
        fixed("prev_hash", &self.prev_hash, HASH)?;
        fixed("proposer", &self.proposer, HASH)?;
        fixed("validators_hash", &self.validators_hash, HASH)?;
        fixed("next_validators_hash", &self.next_validators_hash, HASH)?;
        fixed("state_root", &self.state_root, HASH)?;
        fixed("proofs_root", &self.proofs_root, HASH)?;
        fixed("chain_commitment", &self.chain_commitment, HASH)
    }
}

impl Validate for Validator {
    fn validate(&self) -> R {
        fixed("zsi_id", &self.zsi_id, HASH)?;
        fixed("consensus_key", &self.consensus_key, KEY)?;
        if self.power == 0 {
            return fail("power", FieldProblem::Rule("must be positive"));
        }
        Ok(())
    }
}

impl Validate for ValidatorSet {
    fn validate(&self) -> R {
        if self.validators.is_empty() {
            return fail("validators", FieldProblem::Rule("must not be empty"));
        }
        each("validators", &self.validators, MAX_VALIDATORS)?;
        // Total power must not overflow; quorum math relies on it.
        let mut total: u64 = 0;
        for v in &self.validators {
            total = total
                .checked_add(v.power)
                .ok_or_else(|| FieldError::new("validators", FieldProblem::Rule("total power overflows u64")))?;
        }
        // Each validator once (the set is bounded, so this allocation is too).
        let mut seen = std::collections::BTreeSet::new();
        if !self.validators.iter().all(|v| seen.insert(v.zsi_id.as_slice())) {
            return fail("validators", FieldProblem::Rule("must not list a zsi_id twice"));
        }
        // Canonical order: power descending, then zsi_id ascending.
        for pair in self.validators.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let ordered = a.power > b.power || (a.power == b.power && a.zsi_id < b.zsi_id);
            if !ordered {
                return fail(
                    "validators",
                    FieldProblem::Rule("must be sorted by power descending then zsi_id ascending"),
                );
            }
        }
        Ok(())
    }
}

impl Validate for CommitSignature {
    fn validate(&self) -> R {
        fixed("validator", &self.validator, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for CommitCertificate {
    fn validate(&self) -> R {
        fixed("block_hash", &self.block_hash, HASH)?;
        each("signatures", &self.signatures, MAX_VALIDATORS)
    }
}

impl Validate for ReputationRecord {
    fn validate(&self) -> R {
        Ok(())
    }
}

impl Validate for IdentityRecord {
    fn validate(&self) -> R {
        fixed("zsi_id", &self.zsi_id, HASH)?;
        fixed("identity_key", &self.identity_key, KEY)?;
        fixed("vrf_key", &self.vrf_key, KEY)?;
        required("reputation", &self.reputation)
    }
}

impl Validate for ReputationEvent {
    fn validate(&self) -> R {
        fixed("zsi_id", &self.zsi_id, HASH)?;
        match &self.kind {
            Some(reputation_event::Kind::Slash(evidence)) => evidence.validate().map_err(|e| e.within("slash")),
            Some(_) => Ok(()),
            None => missing_oneof("kind"),
        }
    }
}

impl Validate for Evidence {
    fn validate(&self) -> R {
        required("first", &self.first)?;
        required("second", &self.second)
    }
}

impl Validate for Block {
    fn validate(&self) -> R {
        required("header", &self.header)?;
        each("proofs", &self.proofs, MAX_PROOFS_PER_BLOCK)?;
        each(
            "reputation_events",
            &self.reputation_events,
            MAX_REPUTATION_EVENTS_PER_BLOCK,
        )?;
        optional("next_validators", &self.next_validators)?;
        optional("last_commit", &self.last_commit)
    }
}

impl Validate for FinalizedBlock {
    fn validate(&self) -> R {
        required("block", &self.block)?;
        required("commit", &self.commit)
    }
}

impl Validate for SignedHeader {
    fn validate(&self) -> R {
        required("header", &self.header)?;
        required("commit", &self.commit)
    }
}

impl Validate for Vote {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        vote_type("vote_type", self.vote_type)?;
        fixed_or_empty("block_hash", &self.block_hash, HASH)?;
        fixed("validator", &self.validator, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for Proposal {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        if self.pol_round_plus_one > self.round {
            return fail(
                "pol_round_plus_one",
                FieldProblem::Rule("proof-of-lock round must be below the round"),
            );
        }
        required("block", &self.block)?;
        fixed("proposer", &self.proposer, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for VoteSignature {
    fn validate(&self) -> R {
        fixed("validator", &self.validator, HASH)?;
        vote_type("vote_type", self.vote_type)?;
        fixed_or_empty("block_hash", &self.block_hash, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for PolkaCertificate {
    fn validate(&self) -> R {
        fixed("block_hash", &self.block_hash, HASH)?;
        each("signatures", &self.signatures, MAX_VALIDATORS)
    }
}

impl Validate for RoundCertificate {
    fn validate(&self) -> R {
        match RoundCertificateKind::try_from(self.kind) {
            Ok(RoundCertificateKind::Precommit | RoundCertificateKind::Skip) => {}
            _ => return fail("kind", FieldProblem::BadEnum(self.kind)),
        }
        each("signatures", &self.signatures, MAX_VALIDATORS * 2)
    }
}

impl Validate for ProofEnvelope {
    fn validate(&self) -> R {
        if self.kind.is_empty() {
            return fail("kind", FieldProblem::Missing);
        }
        max_len("kind", self.kind.len(), MAX_PROOF_KIND_LEN)?;
        max_len("statement", self.statement.len(), MAX_PROOF_STATEMENT)?;
        max_len("proof", self.proof.len(), MAX_PROOF_BYTES)?;
        fixed("submitter", &self.submitter, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for UptimeClaim {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        fixed("subject", &self.subject, HASH)?;
        if self.from_height > self.to_height {
            return fail("to_height", FieldProblem::Rule("must not be below from_height"));
        }
        Ok(())
    }
}

impl Validate for UptimeWitness {
    fn validate(&self) -> R {
        fixed("witness", &self.witness, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for UptimeAttestation {
    fn validate(&self) -> R {
        required("claim", &self.claim)?;
        required("witness", &self.witness)
    }
}

impl Validate for UptimeProof {
    fn validate(&self) -> R {
        each("witnesses", &self.witnesses, MAX_UPTIME_WITNESSES)
    }
}

impl Validate for SnapshotManifest {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        fixed("state_root", &self.state_root, HASH)?;
        max_count("chunk_hashes", self.chunk_hashes.len(), MAX_SNAPSHOT_CHUNKS)?;
        if self.chunk_hashes.len() != self.chunk_count as usize {
            return fail("chunk_hashes", FieldProblem::Rule("must have chunk_count items"));
        }
        for (i, hash) in self.chunk_hashes.iter().enumerate() {
            fixed(&format!("chunk_hashes[{i}]"), hash, HASH)?;
        }
        Ok(())
    }
}

impl Validate for SnapshotAnnouncement {
    fn validate(&self) -> R {
        required("manifest", &self.manifest)?;
        fixed("announcer", &self.announcer, HASH)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for StateEntry {
    fn validate(&self) -> R {
        max_len("key", self.key.len(), MAX_STATE_KEY)?;
        max_len("value", self.value.len(), MAX_STATE_VALUE)
    }
}

impl Validate for LeafNode {
    fn validate(&self) -> R {
        fixed("key_hash", &self.key_hash, HASH)?;
        fixed("value_hash", &self.value_hash, HASH)
    }
}

impl Validate for StateProof {
    fn validate(&self) -> R {
        optional("leaf", &self.leaf)?;
        siblings("siblings", &self.siblings)
    }
}

fn siblings(field: &str, hashes: &[Vec<u8>]) -> R {
    max_count(field, hashes.len(), MAX_PROOF_SIBLINGS)?;
    for (i, hash) in hashes.iter().enumerate() {
        fixed(&format!("{field}[{i}]"), hash, HASH)?;
    }
    Ok(())
}

impl Validate for SnapshotChunk {
    fn validate(&self) -> R {
        each("entries", &self.entries, MAX_CHUNK_ENTRIES)?;
        optional("last_entry_proof", &self.last_entry_proof)?;
        siblings("right_siblings", &self.right_siblings)
    }
}

impl Validate for Heartbeat {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        fixed_or_empty("zsi_id", &self.zsi_id, HASH)?;
        fixed_or_empty("head_hash", &self.head_hash, HASH)?;
        max_len("agent", self.agent.len(), MAX_AGENT_LEN)?;
        max_count("rtts", self.rtts.len(), MAX_HEARTBEAT_RTTS)?;
        for (i, rtt) in self.rtts.iter().enumerate() {
            max_len(&format!("rtts[{i}].peer_id"), rtt.peer_id.len(), MAX_RTT_PEER_ID_LEN)?;
        }
        if self.zsi_id.is_empty() {
            max_len("signature", self.signature.len(), 0)
        } else {
            fixed("signature", &self.signature, SIG)
        }
    }
}

impl Validate for BlocksMessage {
    fn validate(&self) -> R {
        match &self.kind {
            Some(blocks_message::Kind::Proposal(m)) => m.validate().map_err(|e| e.within("proposal")),
            Some(blocks_message::Kind::Finalized(m)) => m.validate().map_err(|e| e.within("finalized")),
            None => missing_oneof("kind"),
        }
    }
}

impl Validate for VotesMessage {
    fn validate(&self) -> R {
        if self.rebroadcast_ms == 0 {
            if !self.rebroadcast_signature.is_empty() {
                return fail(
                    "rebroadcast_signature",
                    FieldProblem::Rule("must be empty when rebroadcast_ms is 0"),
                );
            }
        } else {
            if !matches!(self.kind, Some(votes_message::Kind::Vote(_))) {
                return fail("rebroadcast_ms", FieldProblem::Rule("only a vote can be rebroadcast"));
            }
            fixed("rebroadcast_signature", &self.rebroadcast_signature, SIG)?;
        }
        match &self.kind {
            Some(votes_message::Kind::Vote(m)) => m.validate().map_err(|e| e.within("vote")),
            Some(votes_message::Kind::Polka(m)) => m.validate().map_err(|e| e.within("polka")),
            Some(votes_message::Kind::RoundCertificate(m)) => m.validate().map_err(|e| e.within("round_certificate")),
            Some(votes_message::Kind::Evidence(m)) => m.validate().map_err(|e| e.within("evidence")),
            None => missing_oneof("kind"),
        }
    }
}

impl Validate for ProofsMessage {
    fn validate(&self) -> R {
        required("envelope", &self.envelope)
    }
}

impl Validate for SnapshotsMessage {
    fn validate(&self) -> R {
        required("announcement", &self.announcement)
    }
}

impl Validate for MetaMessage {
    fn validate(&self) -> R {
        match &self.kind {
            Some(meta_message::Kind::Heartbeat(m)) => m.validate().map_err(|e| e.within("heartbeat")),
            Some(meta_message::Kind::Attestation(m)) => m.validate().map_err(|e| e.within("attestation")),
            None => missing_oneof("kind"),
        }
    }
}

impl Validate for Hello {
    fn validate(&self) -> R {
        network("network_id", &self.network_id)?;
        max_count("features", self.features.len(), MAX_FEATURES)?;
        for (i, feature) in self.features.iter().enumerate() {
            max_len(&format!("features[{i}]"), feature.len(), MAX_FEATURE_LEN)?;
        }
        max_len("agent", self.agent.len(), MAX_AGENT_LEN)?;
        if self.zsi_id.is_empty() {
            // An observer (TL0) carries no identity material at all.
            for (field, bytes) in [
                ("identity_key", &self.identity_key),
                ("vrf_key", &self.vrf_key),
                ("vrf_output", &self.vrf_output),
                ("vrf_proof", &self.vrf_proof),
                ("signature", &self.signature),
            ] {
                if !bytes.is_empty() {
                    return fail(field, FieldProblem::Rule("must be empty when zsi_id is empty"));
                }
            }
            return Ok(());
        }
        fixed("zsi_id", &self.zsi_id, HASH)?;
        fixed("identity_key", &self.identity_key, KEY)?;
        fixed("vrf_key", &self.vrf_key, KEY)?;
        fixed("vrf_output", &self.vrf_output, HASH)?;
        fixed("vrf_proof", &self.vrf_proof, SIG)?;
        fixed("signature", &self.signature, SIG)
    }
}

impl Validate for HandshakeResponse {
    fn validate(&self) -> R {
        match &self.result {
            Some(handshake_response::Result::Hello(m)) => m.validate().map_err(|e| e.within("hello")),
            Some(handshake_response::Result::Rejected(reason)) => max_len("rejected", reason.len(), MAX_ERROR_MESSAGE),
            None => missing_oneof("result"),
        }
    }
}

impl Validate for SyncRequest {
    fn validate(&self) -> R {
        use sync_request::Kind;
        match &self.kind {
            Some(Kind::Headers(r)) => {
                if r.count == 0 {
                    return fail("headers.count", FieldProblem::Rule("must be positive"));
                }
                max_count("headers.count", r.count as usize, MAX_HEADERS_PER_RESPONSE)
            }
            Some(Kind::Block(_) | Kind::SnapshotManifest(_) | Kind::SnapshotChunk(_)) => Ok(()),
            Some(Kind::ChainProof(r)) => {
                if r.target_height != 0 && r.target_height < r.trusted_height {
                    return fail(
                        "chain_proof.target_height",
                        FieldProblem::Rule("must not be below trusted_height"),
                    );
                }
                Ok(())
            }
            Some(Kind::State(r)) => max_len("state.key", r.key.len(), MAX_STATE_KEY),
            Some(Kind::SubmitProof(r)) => match &r.envelope {
                Some(envelope) => envelope.validate().map_err(|e| e.within("submit_proof.envelope")),
                None => Ok(()),
            },
            Some(Kind::Peers(_)) => Ok(()),
            None => missing_oneof("kind"),
        }
    }
}

impl Validate for ChainProofStep {
    fn validate(&self) -> R {
        required("header", &self.header)?;
        required("validators", &self.validators)
    }
}

impl Validate for ChainProof {
    fn validate(&self) -> R {
        if self.steps.is_empty() {
            return fail("steps", FieldProblem::Rule("must not be empty"));
        }
        each("steps", &self.steps, MAX_CHAIN_PROOF_STEPS)
    }
}

impl Validate for StateValueResponse {
    fn validate(&self) -> R {
        max_len("key", self.key.len(), MAX_STATE_KEY)?;
        if let Some(value) = &self.value {
            max_len("value", value.len(), MAX_STATE_VALUE)?;
        }
        required("proof", &self.proof)?;
        required("header", &self.header)
    }
}

impl Validate for SyncError {
    fn validate(&self) -> R {
        match SyncErrorCode::try_from(self.code) {
            Ok(SyncErrorCode::Unspecified) | Err(_) => return fail("code", FieldProblem::BadEnum(self.code)),
            Ok(_) => {}
        }
        max_len("message", self.message.len(), MAX_ERROR_MESSAGE)
    }
}

impl Validate for SyncResponse {
    fn validate(&self) -> R {
        use sync_response::Kind;
        match &self.kind {
            Some(Kind::Headers(r)) => each("headers.headers", &r.headers, MAX_HEADERS_PER_RESPONSE),
            Some(Kind::Block(m)) => m.validate().map_err(|e| e.within("block")),
            Some(Kind::ChainProof(m)) => m.validate().map_err(|e| e.within("chain_proof")),
            Some(Kind::State(m)) => m.validate().map_err(|e| e.within("state")),
            Some(Kind::SnapshotManifest(m)) => m.validate().map_err(|e| e.within("snapshot_manifest")),
            Some(Kind::SnapshotChunk(m)) => m.validate().map_err(|e| e.within("snapshot_chunk")),
            Some(Kind::Error(m)) => m.validate().map_err(|e| e.within("error")),
            Some(Kind::SubmitProof(m)) => max_len("submit_proof.reason", m.reason.len(), MAX_ERROR_MESSAGE),
            Some(Kind::Peers(m)) => {
                max_count("peers.addrs", m.addrs.len(), super::limits::MAX_PEERS_PER_RESPONSE)?;
                for addr in &m.addrs {
                    max_len("peers.addrs", addr.len(), super::limits::MAX_PEER_ADDR_LEN)?;
                }
                Ok(())
            }
            None => missing_oneof("kind"),
        }
    }
}
