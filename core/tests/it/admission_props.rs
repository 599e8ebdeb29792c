//! Property tests of admission: random tier, topic and validator membership
//! against a reference table written out here, and publish rights from a
//! random on-chain record and thresholds against the rules of DESIGN.md
//! stated directly on the record's fields (no tiers involved).

use proptest::prelude::*;
use tiernet_core::admission::{AdmissionPolicy, Decision, DenyReason, Publisher, RateClass};
use tiernet_core::tier::{ReputationRecord, Tier, TierThresholds, tier_of};
use tiernet_core::wire::Topic;

/// What the reference expects: `None` for allowed, else the deny label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allow,
    TooLow,
    NotValidator,
}

/// The publish table of DESIGN.md, one row per tier TL0..TL5, columns
/// blocks, votes, proofs, snapshots, meta; `(outsider, validator)`.
const TABLE: [[(Want, Want); 5]; 6] = {
    use Want::*;
    const LOW: (Want, Want) = (TooLow, TooLow);
    const OK: (Want, Want) = (Allow, Allow);
    const SET: (Want, Want) = (NotValidator, Allow);
    [
        [LOW, LOW, LOW, LOW, OK], // TL0
        [LOW, LOW, OK, LOW, OK],  // TL1
        [LOW, LOW, OK, OK, OK],   // TL2
        [SET, SET, OK, OK, OK],   // TL3
        [SET, SET, OK, OK, OK],   // TL4
        [SET, SET, OK, OK, OK],   // TL5
    ]
};

fn column(topic: Topic) -> usize {
    match topic {
        Topic::Blocks => 0,
        Topic::Votes => 1,
        Topic::Proofs => 2,
        Topic::Snapshots => 3,
        Topic::Meta => 4,
    }
}

fn tier() -> impl Strategy<Value = Tier> {
    prop::sample::select(Tier::ALL.to_vec())
}

fn topic() -> impl Strategy<Value = Topic> {
    prop::sample::select(Topic::ALL.to_vec())
}

/// Increasing score thresholds and an uptime threshold, spread so that
/// random records land on every side of each.
fn thresholds() -> impl Strategy<Value = TierThresholds> {
    (0..3_000u64, 0..2_000u64, 1..2_000u64, 1..20_000u64).prop_map(|(uptime, committed, a, b)| TierThresholds {
        available_uptime_minutes: uptime,
        committed_score: committed,
        reliable_score: committed + a,
        trusted_score: committed + a + b,
    })
}

/// `None`: no registered ZSI. Values cluster near the thresholds' ranges.
fn record() -> impl Strategy<Value = Option<ReputationRecord>> {
    let value = prop_oneof![0..30_000u64, Just(0), Just(u64::MAX)];
    prop::option::weighted(
        0.85,
        (value.clone(), value, any::<u64>(), prop::bool::weighted(0.2)).prop_map(
            |(uptime_minutes, score, participation, slashed)| ReputationRecord {
                uptime_minutes,
                participation,
                score,
                slashed,
            },
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `may_publish` agrees with the reference table for every tier, topic and membership.
    #[test]
    fn publish_decisions_match_the_reference_table(tier in tier(), topic in topic(), in_set in any::<bool>()) {
        let decision = AdmissionPolicy::default().may_publish(topic, Publisher { tier, in_validator_set: in_set });
        let (outsider, validator) = TABLE[tier as usize][column(topic)];
        let want = if in_set { validator } else { outsider };
        match (want, decision) {
            (Want::Allow, Decision::Allow(class)) => {
                let observer = tier == Tier::TL0;
                prop_assert_eq!(class == RateClass::Observer, observer, "rate class of {}", tier);
            }
            (Want::TooLow, Decision::Deny(DenyReason::TierTooLow { actual, required })) => {
                prop_assert_eq!(actual, tier);
                prop_assert!(required > tier, "{} required for {} at {}", required, topic, tier);
            }
            (Want::NotValidator, Decision::Deny(DenyReason::NotInValidatorSet)) => {}
            (want, got) => prop_assert!(false, "{} in_set={} on {}: want {:?}, got {:?}", tier, in_set, topic, want, got),
        }
        // Every tier may subscribe everywhere.
        prop_assert!(AdmissionPolicy::default().may_subscribe(topic, tier).is_allowed());
    }

    /// A higher tier never loses a right a lower one has (same topic and membership).
    #[test]
    fn rights_grow_with_the_tier(a in tier(), b in tier(), topic in topic(), in_set in any::<bool>()) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let policy = AdmissionPolicy::default();
        let allowed = |tier| policy.may_publish(topic, Publisher { tier, in_validator_set: in_set }).is_allowed();
        prop_assert!(!allowed(low) || allowed(high), "{} may publish on {} but {} may not", low, topic, high);
    }

    /// From the on-chain record to a decision, against DESIGN.md's rules
    /// stated on the record itself: registered and not slashed for
    /// `proofs`; plus 24 h of uptime for `snapshots`; plus the committed
    /// score and membership for `blocks` and `votes`; `meta` for all, with
    /// the observer class for those without a standing identity.
    #[test]
    fn rights_follow_the_record(
        record in record(),
        thresholds in thresholds(),
        topic in topic(),
        in_set in any::<bool>(),
    ) {
        let tier = tier_of(record.as_ref(), &thresholds);
        let decision = AdmissionPolicy::default().may_publish(topic, Publisher { tier, in_validator_set: in_set });
        let standing = record.is_some_and(|r| !r.slashed);
        let available = standing && record.is_some_and(|r| r.uptime_minutes >= thresholds.available_uptime_minutes);
        let committed = available && record.is_some_and(|r| r.score >= thresholds.committed_score);
        let allowed = match topic {
            Topic::Meta => true,
            Topic::Proofs => standing,
            Topic::Snapshots => available,
            Topic::Blocks | Topic::Votes => committed && in_set,
        };
        prop_assert_eq!(decision.is_allowed(), allowed, "{:?} with {:?} ({}) on {}, in_set={}", record, thresholds, tier, topic, in_set);
        if let Decision::Allow(class) = decision {
            prop_assert_eq!(class == RateClass::Observer, !standing);
        }
    }
}
