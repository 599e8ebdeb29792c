//! Tiers TL0..TL5 and the one tier function.
//!
//! | tier | name | condition (defaults in [`TierThresholds`]) |
//! |---|---|---|
//! | TL0 | observer | no verified, registered, unslashed ZSI |
//! | TL1 | registered | ZSI registered, not slashed |
//! | TL2 | available | TL1 and ≥ 24 h credited uptime |
//! | TL3 | committed | TL2 and score ≥ `committed_score` |
//! | TL4 | reliable | TL2 and score ≥ `reliable_score` |
//! | TL5 | trusted | TL2 and score ≥ `trusted_score` |
//!
//! The input is the *on-chain* reputation record, so every node computes the
//! same tier for a peer. What a peer claims about itself never counts.

use std::fmt;

use crate::wire::proto;

/// A participant's tier. Ordered: `Tier::TL0 < Tier::TL5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Observer: no verified ZSI (light clients, new or slashed nodes).
    TL0 = 0,
    /// Registered: ZSI in chain state, not slashed.
    TL1 = 1,
    /// Available: registered with enough credited uptime.
    TL2 = 2,
    /// Committed: available with a score over the first threshold.
    TL3 = 3,
    /// Reliable: a higher score.
    TL4 = 4,
    /// Trusted: the highest score.
    TL5 = 5,
}

impl Tier {
    /// All tiers, lowest first.
    pub const ALL: [Tier; 6] = [Tier::TL0, Tier::TL1, Tier::TL2, Tier::TL3, Tier::TL4, Tier::TL5];

    /// `"TL0"` .. `"TL5"`.
    pub const fn label(self) -> &'static str {
        match self {
            Tier::TL0 => "TL0",
            Tier::TL1 => "TL1",
            Tier::TL2 => "TL2",
            Tier::TL3 => "TL3",
            Tier::TL4 => "TL4",
            Tier::TL5 => "TL5",
        }
    }

    /// The tier's name: observer, registered, available, committed, reliable, trusted.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::TL0 => "observer",
            Tier::TL1 => "registered",
            Tier::TL2 => "available",
            Tier::TL3 => "committed",
            Tier::TL4 => "reliable",
            Tier::TL5 => "trusted",
        }
    }

    /// The tier with this number (0..=5).
    pub const fn from_u8(n: u8) -> Option<Tier> {
        match n {
            0 => Some(Tier::TL0),
            1 => Some(Tier::TL1),
            2 => Some(Tier::TL2),
            3 => Some(Tier::TL3),
            4 => Some(Tier::TL4),
            5 => Some(Tier::TL5),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A participant's on-chain reputation: the input of [`tier_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReputationRecord {
    /// Uptime credited by included uptime proofs, in minutes.
    pub uptime_minutes: u64,
    /// Precommits included in commit certificates.
    pub participation: u64,
    /// Score maintained by the chain rules.
    pub score: u64,
    /// Set by included slashing evidence.
    pub slashed: bool,
}

impl From<&proto::ReputationRecord> for ReputationRecord {
    fn from(r: &proto::ReputationRecord) -> Self {
        Self {
            uptime_minutes: r.uptime_minutes,
            participation: r.participation,
            score: r.score,
            slashed: r.slashed,
        }
    }
}

impl From<&ReputationRecord> for proto::ReputationRecord {
    fn from(r: &ReputationRecord) -> Self {
        Self {
            uptime_minutes: r.uptime_minutes,
            participation: r.participation,
            score: r.score,
            slashed: r.slashed,
        }
    }
}

/// The thresholds of the tier function (set in genesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierThresholds {
    /// Credited uptime for TL2, in minutes (default 24 h).
    pub available_uptime_minutes: u64,
    /// Score for TL3.
    pub committed_score: u64,
    /// Score for TL4.
    pub reliable_score: u64,
    /// Score for TL5.
    pub trusted_score: u64,
}

impl Default for TierThresholds {
    fn default() -> Self {
        Self {
            available_uptime_minutes: 24 * 60,
            committed_score: 100,
            reliable_score: 1_000,
            trusted_score: 10_000,
        }
    }
}

/// Thresholds that are not strictly increasing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tier thresholds must satisfy committed_score < reliable_score < trusted_score (got {committed} < {reliable} < {trusted})"
)]
pub struct ThresholdsError {
    /// committed_score.
    pub committed: u64,
    /// reliable_score.
    pub reliable: u64,
    /// trusted_score.
    pub trusted: u64,
}

impl TierThresholds {
    /// Checks that the score thresholds increase.
    pub fn validate(&self) -> Result<(), ThresholdsError> {
        if self.committed_score < self.reliable_score && self.reliable_score < self.trusted_score {
            Ok(())
        } else {
            Err(ThresholdsError {
                committed: self.committed_score,
                reliable: self.reliable_score,
                trusted: self.trusted_score,
            })
        }
    }
}

/// The one tier function. `None` means the peer has no verified, registered ZSI.
pub fn tier_of(record: Option<&ReputationRecord>, thresholds: &TierThresholds) -> Tier {
    let Some(record) = record else {
        return Tier::TL0;
    };
    if record.slashed {
        return Tier::TL0;
    }
    if record.uptime_minutes < thresholds.available_uptime_minutes {
        return Tier::TL1;
    }
    match record.score {
        s if s >= thresholds.trusted_score => Tier::TL5,
        s if s >= thresholds.reliable_score => Tier::TL4,
        s if s >= thresholds.committed_score => Tier::TL3,
        _ => Tier::TL2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uptime_minutes: u64, score: u64, slashed: bool) -> ReputationRecord {
        ReputationRecord {
            uptime_minutes,
            participation: 0,
            score,
            slashed,
        }
    }

    #[test]
    fn table() {
        let t = TierThresholds::default();
        let day = 24 * 60;
        let cases: &[(Option<ReputationRecord>, Tier)] = &[
            (None, Tier::TL0),
            (Some(record(0, 0, false)), Tier::TL1),
            (Some(record(day - 1, 1_000_000, false)), Tier::TL1),
            (Some(record(day, 0, false)), Tier::TL2),
            (Some(record(day, 99, false)), Tier::TL2),
            (Some(record(day, 100, false)), Tier::TL3),
            (Some(record(day, 999, false)), Tier::TL3),
            (Some(record(day, 1_000, false)), Tier::TL4),
            (Some(record(day, 9_999, false)), Tier::TL4),
            (Some(record(day, 10_000, false)), Tier::TL5),
            (Some(record(u64::MAX, u64::MAX, false)), Tier::TL5),
            (Some(record(u64::MAX, u64::MAX, true)), Tier::TL0),
            (Some(record(0, 0, true)), Tier::TL0),
        ];
        for (input, expected) in cases {
            assert_eq!(tier_of(input.as_ref(), &t), *expected, "{input:?}");
        }
    }

    #[test]
    fn custom_thresholds_are_honoured() {
        let t = TierThresholds {
            available_uptime_minutes: 0,
            committed_score: 1,
            reliable_score: 2,
            trusted_score: 3,
        };
        let tiers: Vec<Tier> = (0..5).map(|s| tier_of(Some(&record(0, s, false)), &t)).collect();
        assert_eq!(tiers, vec![Tier::TL2, Tier::TL3, Tier::TL4, Tier::TL5, Tier::TL5]);
        assert!(t.validate().is_ok());
        assert!(TierThresholds { reliable_score: 1, ..t }.validate().is_err());
    }

    #[test]
    fn tier_is_monotone_in_score_and_uptime() {
        let t = TierThresholds::default();
        let mut last = Tier::TL0;
        for score in (0..20_000).step_by(37) {
            let tier = tier_of(Some(&record(24 * 60, score, false)), &t);
            assert!(tier >= last);
            last = tier;
        }
        assert_eq!(Tier::from_u8(3), Some(Tier::TL3));
        assert_eq!(Tier::from_u8(6), None);
        assert_eq!(Tier::TL4.to_string(), "TL4");
    }
}
