//! Uptime earned by the node itself: witnessing peers' heartbeats,
//! countersigning their uptime claims, and assembling and submitting its
//! own uptime proof on a schedule.
//!
//! Sans-IO ([`UptimeDuty`]): the node feeds it the heartbeats it accepted
//! on `meta` ([`UptimeDuty::heard`]), the attestations it accepted
//! ([`UptimeDuty::on_attestation`]) and every new chain height
//! ([`UptimeDuty::on_height`]); it returns the attestations to publish on
//! `meta` and the proof envelope to submit on `proofs`.
//!
//! **Schedule.** Windows are aligned to the genesis window length `W`
//! (`uptime.window_blocks`): `[k·W + 1, (k+1)·W]`. A heartbeat heard while
//! our chain is at height `h` counts for height `h + 1` (the one being
//! decided). Heartbeats are counted once per slot of the genesis heartbeat
//! interval (`uptime.heartbeat_interval_ms`), so a node that sends faster
//! than the genesis interval earns no more than one that sends at it.
//! When our height reaches a window's end, we attest, for every subject
//! we heard in it, the claim `{network, subject, from, to, heartbeats =
//! possible}` with the heartbeats we saw (capped at `possible`). Every
//! honest witness builds the very same claim, so the subject can gather
//! their countersignatures into one proof. Two blocks after its window's
//! end, with at least `uptime.min_witnesses` witnesses, the subject builds
//! the `uptime/v1` envelope at its current height and submits it.
//!
//! Everything is bounded: subjects tracked ([`MAX_SUBJECTS`]), heartbeat
//! slots per subject ([`MAX_SLOTS_PER_SUBJECT`]), attestations published
//! per window ([`MAX_ATTESTATIONS_PER_WINDOW`]), own windows pending
//! ([`MAX_OWN_WINDOWS`]) and witnesses per window (`MAX_UPTIME_WITNESSES`).

use std::collections::{BTreeMap, VecDeque};

use prost::Message;
use tiernet_core::genesis::UptimeParams;
use tiernet_core::identity::{ZsiId, ZsiKeypair};
use tiernet_core::proof::uptime::{KIND, possible_heartbeats};
use tiernet_core::wire::NetworkId;
use tiernet_core::wire::limits::MAX_UPTIME_WITNESSES;
use tiernet_core::wire::proto;
use tiernet_core::wire::sign::{SignedMessage, sign_uptime_witness};

/// Most subjects whose heartbeats are counted.
pub const MAX_SUBJECTS: usize = 1024;
/// Most heartbeat slots remembered per subject.
pub const MAX_SLOTS_PER_SUBJECT: usize = 8192;
/// Most attestations published for one window (the best-witnessed
/// subjects). A witness publishes them at once, as messages of its own on
/// `meta`; with its heartbeat they must fit the burst its neighbours allow
/// a peer's own messages there (`tiernet_core::inbound::OwnLimit`, 50), or
/// they charge the excess to it as rate-limit breaches (at 64, −5 for each
/// of 14, every window).
pub const MAX_ATTESTATIONS_PER_WINDOW: usize = 40;
/// Most of our own windows waiting for witnesses.
pub const MAX_OWN_WINDOWS: usize = 16;
/// Blocks after a window's end before its proof is assembled (witnesses
/// that lag a block still get to attest).
pub const SETTLE_BLOCKS: u64 = 2;

/// The subjects a witness attests for the window ending at `end`: the
/// [`MAX_ATTESTATIONS_PER_WINDOW`] it heard most, ties broken by a hash of
/// the witness, the window and the subject. Every witness's own order
/// spreads the attestations of a network larger than the cap over all its
/// nodes; ties broken by id gave every witness the same lowest ids, and
/// the others never got a witness (nor uptime, nor a tier).
fn chosen(me: &ZsiId, end: u64, mut heard: Vec<(u64, ZsiId)>) -> Vec<(u64, ZsiId)> {
    let order = |subject: &ZsiId| {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"tiernet/uptime-witness-order/v1");
        hasher.update(me.as_bytes());
        hasher.update(&end.to_be_bytes());
        hasher.update(subject.as_bytes());
        *hasher.finalize().as_bytes()
    };
    heard.sort_by_cached_key(|(count, subject)| (std::cmp::Reverse(*count), order(subject)));
    heard.truncate(MAX_ATTESTATIONS_PER_WINDOW);
    heard
}

/// The node's uptime bookkeeping.
#[derive(Debug)]
pub struct UptimeDuty {
    network: NetworkId,
    me: Option<ZsiId>,
    params: UptimeParams,
    block_time_ms: u64,
    /// Per subject: (height it counted for, heartbeat slot), ascending.
    seen: BTreeMap<ZsiId, VecDeque<(u64, u64)>>,
    /// The end of the last window we attested.
    attested_to: u64,
    /// Our own windows: end → (claim, witnesses by id).
    own: BTreeMap<u64, (proto::UptimeClaim, BTreeMap<ZsiId, proto::UptimeWitness>)>,
    /// The end of the last window we submitted a proof for.
    submitted_to: u64,
}

impl UptimeDuty {
    /// The duty of a node with ZSI `me` (none: it only counts, never
    /// attests or claims) on a chain with these genesis parameters.
    pub fn new(network: NetworkId, me: Option<ZsiId>, params: UptimeParams, block_time_ms: u64) -> Self {
        Self {
            network,
            me,
            params,
            block_time_ms,
            seen: BTreeMap::new(),
            attested_to: 0,
            own: BTreeMap::new(),
            submitted_to: 0,
        }
    }

    fn window(&self) -> u64 {
        self.params.window_blocks.max(1)
    }

    /// The window `[from, to]` that contains `height` (≥ 1).
    pub fn window_of(&self, height: u64) -> (u64, u64) {
        let w = self.window();
        let k = height.saturating_sub(1) / w;
        (k * w + 1, (k + 1) * w)
    }

    /// The claim every honest witness builds for `subject` over `[from, to]`.
    pub fn claim(&self, subject: &ZsiId, from: u64, to: u64) -> proto::UptimeClaim {
        let blocks = to.saturating_sub(from).saturating_add(1);
        let possible = possible_heartbeats(blocks, self.block_time_ms, self.params.heartbeat_interval_ms);
        proto::UptimeClaim {
            network_id: self.network.to_string(),
            subject: subject.as_bytes().to_vec(),
            from_height: from,
            to_height: to,
            heartbeats: u32::try_from(possible).unwrap_or(u32::MAX),
        }
    }

    /// A heartbeat of `subject` accepted at `now` while our chain is at
    /// `height`.
    pub fn heard(&mut self, subject: ZsiId, height: u64, now: u64) {
        if Some(subject) == self.me {
            return;
        }
        if !self.seen.contains_key(&subject) && self.seen.len() >= MAX_SUBJECTS {
            return;
        }
        let slot = now / self.params.heartbeat_interval_ms.max(1);
        let counted = height.saturating_add(1);
        let slots = self.seen.entry(subject).or_default();
        if slots.back().is_some_and(|&(_, s)| s >= slot) {
            return;
        }
        if slots.len() >= MAX_SLOTS_PER_SUBJECT {
            slots.pop_front();
        }
        slots.push_back((counted, slot));
    }

    /// Heartbeat slots of `subject` counted in `[from, to]`.
    pub fn seen_in(&self, subject: &ZsiId, from: u64, to: u64) -> u64 {
        self.seen.get(subject).map_or(0, |slots| {
            slots.iter().filter(|(h, _)| (from..=to).contains(h)).count() as u64
        })
    }

    /// Our chain reached `height`: the attestations to publish (for the
    /// window that just ended) and, if one is due, our own proof envelope.
    /// `credited_to`: the end of our last window credited on chain.
    pub fn on_height(
        &mut self,
        height: u64,
        identity: Option<&ZsiKeypair>,
        credited_to: Option<u64>,
    ) -> (Vec<proto::UptimeAttestation>, Option<proto::ProofEnvelope>) {
        let w = self.window();
        let mut attestations = Vec::new();
        let end = (height / w) * w;
        if let Some(identity) = identity
            && end >= w
            && end > self.attested_to
        {
            self.attested_to = end;
            let from = end - w + 1;
            let heard: Vec<(u64, ZsiId)> = self
                .seen
                .keys()
                .map(|s| (self.seen_in(s, from, end), *s))
                .filter(|(n, _)| *n > 0)
                .collect();
            let me = identity.zsi_id();
            for (count, subject) in chosen(&me, end, heard) {
                let claim = self.claim(&subject, from, end);
                let seen = u32::try_from(count).unwrap_or(u32::MAX).min(claim.heartbeats);
                let witness = sign_uptime_witness(&claim, identity.zsi_id().as_bytes(), seen, identity.identity_key());
                attestations.push(proto::UptimeAttestation {
                    claim: Some(claim),
                    witness: Some(witness),
                });
            }
        }
        // Forget what no window we may still attest or claim needs.
        let keep_from = height.saturating_sub(w.saturating_mul(2));
        for slots in self.seen.values_mut() {
            while slots.front().is_some_and(|&(h, _)| h < keep_from) {
                slots.pop_front();
            }
        }
        self.seen.retain(|_, slots| !slots.is_empty());
        let proof = identity.and_then(|identity| self.due_proof(height, identity, credited_to));
        (attestations, proof)
    }

    /// An attestation accepted on `meta`: kept if it countersigns the claim
    /// we make for one of our windows.
    pub fn on_attestation(&mut self, attestation: &proto::UptimeAttestation) -> bool {
        let (Some(me), Some(claim), Some(witness)) = (self.me, &attestation.claim, &attestation.witness) else {
            return false;
        };
        if claim.subject != me.as_bytes() || claim.to_height <= self.submitted_to {
            return false;
        }
        let (from, to) = self.window_of(claim.to_height.max(1));
        if claim != &self.claim(&me, from, to) {
            return false;
        }
        let Some(witness_id) = ZsiId::from_slice(&witness.witness) else {
            return false;
        };
        if witness_id == me {
            return false;
        }
        if !self.own.contains_key(&to) && self.own.len() >= MAX_OWN_WINDOWS {
            // Make room by dropping the oldest window.
            let oldest = self.own.keys().next().copied();
            if let Some(oldest) = oldest {
                self.own.remove(&oldest);
            }
        }
        let (_, witnesses) = self.own.entry(to).or_insert_with(|| (claim.clone(), BTreeMap::new()));
        if witnesses.len() >= MAX_UPTIME_WITNESSES && !witnesses.contains_key(&witness_id) {
            return false;
        }
        witnesses.insert(witness_id, witness.clone());
        true
    }

    /// Our proof for the oldest window that has settled and has enough
    /// witnesses, signed at `height`.
    fn due_proof(
        &mut self,
        height: u64,
        identity: &ZsiKeypair,
        credited_to: Option<u64>,
    ) -> Option<proto::ProofEnvelope> {
        let floor = self.submitted_to.max(credited_to.unwrap_or(0));
        let too_old = height.saturating_sub(self.params.max_age_blocks);
        self.own.retain(|&to, _| to > floor && to >= too_old);
        let min = usize::try_from(self.params.min_witnesses).unwrap_or(usize::MAX);
        let to = self
            .own
            .iter()
            .find(|(to, (_, w))| to.saturating_add(SETTLE_BLOCKS) <= height && w.len() >= min)
            .map(|(to, _)| *to)?;
        let (claim, witnesses) = self.own.remove(&to)?;
        self.submitted_to = to;
        let mut witnesses: Vec<proto::UptimeWitness> = witnesses.into_values().collect();
        witnesses.sort_by(|a, b| {
            b.heartbeats_seen
                .cmp(&a.heartbeats_seen)
                .then(a.witness.cmp(&b.witness))
        });
        witnesses.truncate(MAX_UPTIME_WITNESSES);
        let mut envelope = proto::ProofEnvelope {
            kind: KIND.into(),
            statement: claim.encode_to_vec(),
            proof: proto::UptimeProof { witnesses }.encode_to_vec(),
            submitter: identity.zsi_id().as_bytes().to_vec(),
            height,
            signature: Vec::new(),
        };
        envelope.sign_with(identity.identity_key());
        Some(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::genesis::{Genesis, GenesisFile, GenesisIdentity, GenesisValidator, ReputationFile, TiersFile};
    use tiernet_core::identity::registry::IdentityRegistry;
    use tiernet_core::proof::{ProofContext, ProofEffect, VerifierRegistry};

    fn params() -> UptimeParams {
        UptimeParams {
            window_blocks: 5,
            max_age_blocks: 20,
            min_witnesses: 2,
            heartbeat_interval_ms: 1_000,
            minute_ms: 1_000,
        }
    }

    fn key(name: &str) -> ZsiKeypair {
        ZsiKeypair::from_seed(name.as_bytes()).unwrap()
    }

    /// Three nodes witness each other for two windows; the subject's own
    /// proof verifies with the genesis verifier and credits the window.
    #[test]
    fn a_witnesses_attestations_and_heartbeat_fit_what_its_neighbours_allow_its_own_messages() {
        use tiernet_core::inbound::OwnLimit;
        use tiernet_core::ratelimit::Limiter;
        use tiernet_core::wire::Topic;
        let mut neighbour = Limiter::<OwnLimit>::new(4);
        let witness = (libp2p::PeerId::random(), Topic::Meta);
        // All at once: the attestations of a window and the heartbeat.
        for sent in 0..=MAX_ATTESTATIONS_PER_WINDOW {
            assert!(neighbour.check(&witness, 1_000), "message {sent} charged");
        }
    }

    #[test]
    fn witnesses_of_a_network_larger_than_the_cap_spread_their_attestations_over_all_of_it() {
        let ids: Vec<ZsiId> = (0..100u32)
            .map(|i| ZsiId::from_slice(blake3::hash(&i.to_be_bytes()).as_bytes()).unwrap())
            .collect();
        let mut witnesses: BTreeMap<ZsiId, usize> = BTreeMap::new();
        for me in &ids {
            // Every node heard every other one equally.
            let heard = ids.iter().filter(|s| *s != me).map(|s| (5, *s)).collect();
            let picked = chosen(me, 100, heard);
            assert_eq!(picked.len(), MAX_ATTESTATIONS_PER_WINDOW);
            for (_, subject) in picked {
                *witnesses.entry(subject).or_default() += 1;
            }
        }
        let fewest = ids
            .iter()
            .map(|s| witnesses.get(s).copied().unwrap_or(0))
            .min()
            .unwrap();
        assert!(
            fewest as u64 >= params().min_witnesses,
            "a subject got {fewest} witnesses"
        );
        // The best-heard still come first.
        let mut heard: Vec<(u64, ZsiId)> = ids.iter().map(|s| (5, *s)).collect();
        heard[99].0 = 6;
        assert_eq!(chosen(&ids[0], 100, heard)[0].1, ids[99]);
    }

    #[test]
    fn witnesses_attest_and_the_subject_assembles_a_proof_that_verifies() {
        let net = NetworkId::new("devnet").unwrap();
        let keys = [key("a"), key("b"), key("c")];
        let mut duties: Vec<UptimeDuty> = keys
            .iter()
            .map(|k| UptimeDuty::new(net.clone(), Some(k.zsi_id()), params(), 1_000))
            .collect();
        // Heights 0..=4 at one block per second; two heartbeats per second each.
        for tick in 0..10u64 {
            let now = 1_000_000 + tick * 500;
            let height = tick / 2;
            for (i, duty) in duties.iter_mut().enumerate() {
                for (j, k) in keys.iter().enumerate() {
                    if i != j {
                        duty.heard(k.zsi_id(), height, now);
                    }
                }
            }
        }
        // Own heartbeats are never counted.
        assert_eq!(duties[0].seen_in(&keys[0].zsi_id(), 1, 5), 0);
        assert_eq!(
            duties[0].seen_in(&keys[1].zsi_id(), 1, 5),
            5,
            "one per slot, not per heartbeat"
        );
        let mut all = Vec::new();
        for (i, duty) in duties.iter_mut().enumerate() {
            let (atts, proof) = duty.on_height(5, Some(&keys[i]), None);
            assert!(proof.is_none());
            assert_eq!(atts.len(), 2);
            all.extend(atts);
            // Attested once per window.
            assert!(duty.on_height(5, Some(&keys[i]), None).0.is_empty());
        }
        let kept = all.iter().filter(|a| duties[0].on_attestation(a)).count();
        assert_eq!(kept, 2, "only the two attestations of a's claim");
        assert!(duties[0].on_height(6, Some(&keys[0]), None).1.is_none(), "not settled");
        let envelope = duties[0]
            .on_height(7, Some(&keys[0]), None)
            .1
            .expect("a proof at 5 + 2");
        assert!(
            duties[0].on_height(8, Some(&keys[0]), None).1.is_none(),
            "submitted once"
        );

        let mut identities: Vec<GenesisIdentity> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisIdentity::new(&format!("n{i}"), &k.public(), ReputationFile::default()))
            .collect();
        identities[2].validator = Some(GenesisValidator {
            consensus_key: hex::encode(keys[2].public().identity_key.as_bytes()),
            power: 1,
        });
        let genesis = Genesis::from_file(GenesisFile {
            network_id: "devnet".into(),
            genesis_time_ms: 0,
            tiers: TiersFile::default(),
            consensus: Default::default(),
            uptime: params(),
            identities,
            stark_programs: Vec::new(),
        })
        .unwrap();
        let registry: &dyn IdentityRegistry = &genesis.registry;
        let ctx = ProofContext {
            network: &net,
            registry: &registry,
            thresholds: &genesis.thresholds,
            height: 7,
            freshness_blocks: 10,
            block_time_ms: 1_000,
        };
        let verified = VerifierRegistry::with_uptime(&genesis.uptime)
            .check_envelope(&envelope, &ctx)
            .unwrap();
        // 5 s window, 6 heartbeats possible, 5 seen: 4166 ms → 4 "minutes".
        assert_eq!(
            verified.effect,
            ProofEffect::UptimeCredit {
                subject: keys[0].zsi_id(),
                minutes: 4,
                from_height: 1,
                to_height: 5
            }
        );
    }

    #[test]
    fn foreign_or_misaligned_attestations_are_not_kept() {
        let net = NetworkId::new("devnet").unwrap();
        let (a, b) = (key("a"), key("b"));
        let mut duty = UptimeDuty::new(net.clone(), Some(a.zsi_id()), params(), 1_000);
        let other = UptimeDuty::new(net, Some(b.zsi_id()), params(), 1_000);
        let mut misaligned = duty.claim(&a.zsi_id(), 2, 6);
        misaligned.heartbeats = 6;
        let att = |claim: proto::UptimeClaim| proto::UptimeAttestation {
            witness: Some(sign_uptime_witness(&claim, b.zsi_id().as_bytes(), 3, b.identity_key())),
            claim: Some(claim),
        };
        assert!(!duty.on_attestation(&att(misaligned)));
        assert!(
            !duty.on_attestation(&att(other.claim(&b.zsi_id(), 1, 5))),
            "b's own claim"
        );
        assert!(duty.on_attestation(&att(duty.claim(&a.zsi_id(), 1, 5))));
    }
}
