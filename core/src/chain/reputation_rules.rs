//! On-chain reputation transitions: how the reputation events that
//! consensus put into a block change a participant's
//! [`ReputationRecord`], and so its tier ([`crate::tier::tier_of`]).
//!
//! Pure functions; the state machine applies a block's events in block
//! order to the records in chain state, after checking that each event is
//! justified (an included uptime proof, a signer of the previous commit,
//! verified slashing evidence). Nothing here verifies evidence or proofs.
//!
//! ## The scoring rule
//!
//! All constants are in [`ScoringRules`] (defaults below); arithmetic
//! saturates, and the score never exceeds `max_score`.
//!
//! | event | effect |
//! |---|---|
//! | `uptime_minutes(m)` | credit `c = min(m, max_uptime_minutes_per_event)`: `uptime_minutes += c`; `score +=` the number of whole `minutes_per_point` periods the running uptime total crossed (so partial hours are never lost: two 30-minute credits earn one point) |
//! | `participation(n)` | credit `c = min(n, max_participation_per_event)`: `participation += c`; `score += c × points_per_precommit` |
//! | `slash(evidence)` | `slashed = true`, `score = 0`; uptime and participation are kept as history |
//!
//! A slashed record is frozen: later uptime and participation events change
//! nothing (a slashed identity is TL0 for good). An event without a kind
//! changes nothing.
//!
//! | constant | default | why |
//! |---|---|---|
//! | `minutes_per_point` | 60 | one point per hour of proven uptime |
//! | `max_uptime_minutes_per_event` | 10,080 (7 days) | an uptime proof covers a bounded height window; a larger claim is credited only this much |
//! | `points_per_precommit` | 1 | one point per precommit included in a commit |
//! | `max_participation_per_event` | 1,000 | one block credits each signer 1; this bounds a faulty event |
//! | `max_score` | 1,000,000,000 | keeps scores comparable; a tier threshold above it is unreachable |
//!
//! With the default tier thresholds, a newly registered node (TL1) reaches
//! TL2 after 24 h of credited uptime (which also earns 24 points) and TL3
//! once uptime and precommits together reach a score of 100.
//!
//! Participation credit: the proposer of block `h + 1` includes
//! [`participation_events`] of the commit that finalized block `h`, one
//! event with `participation = 1` per signer, in canonical (`zsi_id`
//! ascending) order, so two nodes holding certificates with the same
//! signers in another order build the same events.

use crate::chain::quorum::QuorumSummary;
use crate::identity::ZsiId;
use crate::tier::ReputationRecord;
use crate::wire::proto::{self, reputation_event};

/// Default points per `minutes_per_point` of credited uptime: one per hour.
pub const MINUTES_PER_POINT: u64 = 60;
/// Default most uptime minutes one event credits: 7 days.
pub const MAX_UPTIME_MINUTES_PER_EVENT: u64 = 7 * 24 * 60;
/// Default score per included precommit.
pub const POINTS_PER_PRECOMMIT: u64 = 1;
/// Default most precommits one participation event credits.
pub const MAX_PARTICIPATION_PER_EVENT: u64 = 1_000;
/// Default highest score.
pub const MAX_SCORE: u64 = 1_000_000_000;

/// The constants of the scoring rule (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoringRules {
    /// Minutes of credited uptime per point (0 disables uptime points).
    pub minutes_per_point: u64,
    /// Most uptime minutes one event credits.
    pub max_uptime_minutes_per_event: u64,
    /// Points per included precommit.
    pub points_per_precommit: u64,
    /// Most precommits one participation event credits.
    pub max_participation_per_event: u64,
    /// Highest score.
    pub max_score: u64,
}

impl Default for ScoringRules {
    fn default() -> Self {
        Self {
            minutes_per_point: MINUTES_PER_POINT,
            max_uptime_minutes_per_event: MAX_UPTIME_MINUTES_PER_EVENT,
            points_per_precommit: POINTS_PER_PRECOMMIT,
            max_participation_per_event: MAX_PARTICIPATION_PER_EVENT,
            max_score: MAX_SCORE,
        }
    }
}

impl ScoringRules {
    fn add_score(&self, score: u64, points: u64) -> u64 {
        score.saturating_add(points).min(self.max_score)
    }

    /// Whole points earned by `minutes` of uptime in total.
    fn uptime_points(&self, minutes: u64) -> u64 {
        minutes.checked_div(self.minutes_per_point).unwrap_or(0)
    }

    /// The record after `event`, by these rules. The event's `zsi_id` is
    /// not looked at: the caller applies it to the record it names.
    pub fn apply(&self, record: ReputationRecord, event: &proto::ReputationEvent) -> ReputationRecord {
        let mut next = record;
        match &event.kind {
            Some(reputation_event::Kind::Slash(_)) => {
                next.slashed = true;
                next.score = 0;
            }
            _ if record.slashed => {}
            Some(reputation_event::Kind::UptimeMinutes(minutes)) => {
                let credit = (*minutes).min(self.max_uptime_minutes_per_event);
                next.uptime_minutes = record.uptime_minutes.saturating_add(credit);
                let points = self
                    .uptime_points(next.uptime_minutes)
                    .saturating_sub(self.uptime_points(record.uptime_minutes));
                next.score = self.add_score(record.score, points);
            }
            Some(reputation_event::Kind::Participation(count)) => {
                let credit = (*count).min(self.max_participation_per_event);
                next.participation = record.participation.saturating_add(credit);
                next.score = self.add_score(record.score, credit.saturating_mul(self.points_per_precommit));
            }
            // Registration creates the record (the ledger does that); it
            // does not change one.
            Some(reputation_event::Kind::Registered(_)) | None => {}
        }
        next
    }
}

/// The record after `event`, by the default [`ScoringRules`].
pub fn apply_event(record: ReputationRecord, event: &proto::ReputationEvent) -> ReputationRecord {
    ScoringRules::default().apply(record, event)
}

/// The record of `zsi_id` after the events of a block that name it, in
/// block order, by the default [`ScoringRules`].
pub fn apply_events(record: ReputationRecord, zsi_id: &ZsiId, events: &[proto::ReputationEvent]) -> ReputationRecord {
    events
        .iter()
        .filter(|event| event.zsi_id.as_slice() == zsi_id.as_bytes())
        .fold(record, apply_event)
}

/// An event crediting `minutes` of proven uptime.
pub fn uptime_event(zsi_id: &ZsiId, minutes: u64) -> proto::ReputationEvent {
    proto::ReputationEvent {
        zsi_id: zsi_id.as_bytes().to_vec(),
        kind: Some(reputation_event::Kind::UptimeMinutes(minutes)),
    }
}

/// An event crediting `count` included precommits.
pub fn participation_event(zsi_id: &ZsiId, count: u64) -> proto::ReputationEvent {
    proto::ReputationEvent {
        zsi_id: zsi_id.as_bytes().to_vec(),
        kind: Some(reputation_event::Kind::Participation(count)),
    }
}

/// An event slashing `zsi_id` for `evidence` (verify it first with
/// [`crate::chain::verify_evidence`]).
pub fn slash_event(zsi_id: &ZsiId, evidence: proto::Evidence) -> proto::ReputationEvent {
    proto::ReputationEvent {
        zsi_id: zsi_id.as_bytes().to_vec(),
        kind: Some(reputation_event::Kind::Slash(evidence)),
    }
}

/// The participation credit for a verified commit: one event with
/// `participation = 1` per distinct signer, ordered by `zsi_id`. At most
/// one event per member of the set (a [`QuorumSummary`] lists each signer
/// once and the set is bounded).
pub fn participation_events(commit: &QuorumSummary) -> Vec<proto::ReputationEvent> {
    let mut signers = commit.signers.clone();
    signers.sort_unstable();
    signers.dedup();
    signers.iter().map(|signer| participation_event(signer, 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash32;

    fn id(seed: u8) -> ZsiId {
        ZsiId(Hash32([seed; 32]))
    }

    #[test]
    fn partial_hours_accumulate() {
        let mut record = ReputationRecord::default();
        record = apply_event(record, &uptime_event(&id(1), 30));
        assert_eq!((record.uptime_minutes, record.score), (30, 0));
        record = apply_event(record, &uptime_event(&id(1), 30));
        assert_eq!((record.uptime_minutes, record.score), (60, 1));
        record = apply_event(record, &uptime_event(&id(1), 179));
        assert_eq!((record.uptime_minutes, record.score), (239, 3));
    }

    #[test]
    fn credits_are_capped_and_saturate() {
        let record = apply_event(ReputationRecord::default(), &uptime_event(&id(1), u64::MAX));
        assert_eq!(record.uptime_minutes, MAX_UPTIME_MINUTES_PER_EVENT);
        assert_eq!(record.score, MAX_UPTIME_MINUTES_PER_EVENT / 60);
        let record = apply_event(record, &participation_event(&id(1), u64::MAX));
        assert_eq!(record.participation, MAX_PARTICIPATION_PER_EVENT);
        let near_max = ReputationRecord {
            uptime_minutes: u64::MAX - 100,
            participation: u64::MAX,
            score: MAX_SCORE - 1,
            slashed: false,
        };
        let record = apply_event(near_max, &participation_event(&id(1), 10));
        assert_eq!((record.participation, record.score), (u64::MAX, MAX_SCORE));
        let record = apply_event(near_max, &uptime_event(&id(1), 1_000));
        assert_eq!((record.uptime_minutes, record.score), (u64::MAX, MAX_SCORE));
    }

    #[test]
    fn slashed_records_are_frozen_and_kindless_events_do_nothing() {
        let evidence = proto::Evidence {
            first: None,
            second: None,
        };
        let record = ReputationRecord {
            uptime_minutes: 5_000,
            participation: 70,
            score: 150,
            slashed: false,
        };
        let slashed = apply_event(record, &slash_event(&id(1), evidence));
        assert_eq!(
            slashed,
            ReputationRecord {
                score: 0,
                slashed: true,
                ..record
            }
        );
        assert_eq!(apply_event(slashed, &uptime_event(&id(1), 600)), slashed);
        assert_eq!(apply_event(slashed, &participation_event(&id(1), 5)), slashed);
        let empty = proto::ReputationEvent {
            zsi_id: id(1).as_bytes().to_vec(),
            kind: None,
        };
        assert_eq!(apply_event(record, &empty), record);
    }

    #[test]
    fn zero_minutes_per_point_disables_uptime_points() {
        let rules = ScoringRules {
            minutes_per_point: 0,
            ..ScoringRules::default()
        };
        let record = rules.apply(ReputationRecord::default(), &uptime_event(&id(1), 600));
        assert_eq!((record.uptime_minutes, record.score), (600, 0));
    }

    #[test]
    fn apply_events_only_takes_the_named_identity() {
        let events = vec![
            uptime_event(&id(1), 120),
            participation_event(&id(2), 9),
            participation_event(&id(1), 3),
        ];
        let record = apply_events(ReputationRecord::default(), &id(1), &events);
        assert_eq!((record.uptime_minutes, record.participation, record.score), (120, 3, 5));
    }

    #[test]
    fn participation_events_are_canonical() {
        let summary = QuorumSummary {
            signed_power: 30,
            total_power: 40,
            signers: vec![id(3), id(1), id(2)],
        };
        let events = participation_events(&summary);
        let expected: Vec<_> = [1, 2, 3].iter().map(|&s| participation_event(&id(s), 1)).collect();
        assert_eq!(events, expected);
    }
}
