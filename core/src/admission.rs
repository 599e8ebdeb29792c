//! Topic × tier admission policy.
//!
//! Every tier may subscribe to every topic (reading is TL0's right).
//! Publishing:
//!
//! | topic | needs |
//! |---|---|
//! | `meta` | any tier; TL0 gets the strict observer rate class |
//! | `proofs` | TL1 |
//! | `snapshots` | TL2 |
//! | `blocks`, `votes` | TL3 and membership of the validator set |
//!
//! Decisions carry their reason so that the node can count them by reason
//! and report them to the peer. The policy is checked at gossipsub
//! validation, at the rate limiter and in the application handler; a peer
//! whose tier drops loses its rights on the very next check.

use std::fmt;

use crate::tier::Tier;
use crate::wire::Topic;

/// Who wants to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publisher {
    /// Its tier now.
    pub tier: Tier,
    /// Whether it is in the current validator set.
    pub in_validator_set: bool,
}

/// How a publish is rate-limited once allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// Observers: a strict per-peer budget.
    Observer,
    /// Registered participants: the topic's normal budget.
    Participant,
}

impl RateClass {
    /// `"observer"` or `"participant"`.
    pub const fn label(self) -> &'static str {
        match self {
            RateClass::Observer => "observer",
            RateClass::Participant => "participant",
        }
    }
}

/// Why a publish is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The publisher's tier is below the topic's minimum.
    TierTooLow {
        /// The topic's minimum.
        required: Tier,
        /// The publisher's tier.
        actual: Tier,
    },
    /// The topic is for validators and the publisher is not in the set.
    NotInValidatorSet,
}

impl DenyReason {
    /// A short label for metrics: `tier_too_low`, `not_validator`.
    pub const fn label(self) -> &'static str {
        match self {
            DenyReason::TierTooLow { .. } => "tier_too_low",
            DenyReason::NotInValidatorSet => "not_validator",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::TierTooLow { required, actual } => {
                write!(f, "tier {actual} is below the required {required}")
            }
            DenyReason::NotInValidatorSet => f.write_str("publisher is not in the validator set"),
        }
    }
}

/// An admission decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed, under this rate class.
    Allow(RateClass),
    /// Refused, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub const fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// A short label for metrics: `allow` or the deny reason's label.
    pub const fn label(self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny(reason) => reason.label(),
        }
    }
}

/// What one topic requires of publishers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRule {
    /// Lowest tier that may publish.
    pub min_tier: Tier,
    /// Whether the publisher must also be in the validator set.
    pub validators_only: bool,
}

/// The publish policy for all topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// `blocks` rule.
    pub blocks: TopicRule,
    /// `votes` rule.
    pub votes: TopicRule,
    /// `proofs` rule.
    pub proofs: TopicRule,
    /// `snapshots` rule.
    pub snapshots: TopicRule,
    /// `meta` rule.
    pub meta: TopicRule,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        let validators = TopicRule {
            min_tier: Tier::TL3,
            validators_only: true,
        };
        let open = |min_tier| TopicRule {
            min_tier,
            validators_only: false,
        };
        Self {
            blocks: validators,
            votes: validators,
            proofs: open(Tier::TL1),
            snapshots: open(Tier::TL2),
            meta: open(Tier::TL0),
        }
    }
}

impl AdmissionPolicy {
    /// The rule for a topic.
    pub const fn rule(&self, topic: Topic) -> TopicRule {
        match topic {
            Topic::Blocks => self.blocks,
            Topic::Votes => self.votes,
            Topic::Proofs => self.proofs,
            Topic::Snapshots => self.snapshots,
            Topic::Meta => self.meta,
        }
    }

    /// Every tier may subscribe to every topic.
    pub const fn may_subscribe(&self, _topic: Topic, tier: Tier) -> Decision {
        Decision::Allow(rate_class(tier))
    }

    /// May `publisher` publish on `topic`?
    pub const fn may_publish(&self, topic: Topic, publisher: Publisher) -> Decision {
        let rule = self.rule(topic);
        if (publisher.tier as u8) < (rule.min_tier as u8) {
            return Decision::Deny(DenyReason::TierTooLow {
                required: rule.min_tier,
                actual: publisher.tier,
            });
        }
        if rule.validators_only && !publisher.in_validator_set {
            return Decision::Deny(DenyReason::NotInValidatorSet);
        }
        Decision::Allow(rate_class(publisher.tier))
    }
}

const fn rate_class(tier: Tier) -> RateClass {
    match tier {
        Tier::TL0 => RateClass::Observer,
        _ => RateClass::Participant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table of DESIGN.md: every tier × topic × validator flag.
    #[test]
    fn publish_table() {
        use DenyReason::*;
        use Tier::*;
        let policy = AdmissionPolicy::default();
        let low = |required, actual| Decision::Deny(TierTooLow { required, actual });
        let obs = Decision::Allow(RateClass::Observer);
        let ok = Decision::Allow(RateClass::Participant);
        let not_val = Decision::Deny(NotInValidatorSet);
        // (tier, validator, [blocks, votes, proofs, snapshots, meta])
        let table = [
            (
                TL0,
                false,
                [low(TL3, TL0), low(TL3, TL0), low(TL1, TL0), low(TL2, TL0), obs],
            ),
            (
                TL0,
                true,
                [low(TL3, TL0), low(TL3, TL0), low(TL1, TL0), low(TL2, TL0), obs],
            ),
            (TL1, false, [low(TL3, TL1), low(TL3, TL1), ok, low(TL2, TL1), ok]),
            (TL1, true, [low(TL3, TL1), low(TL3, TL1), ok, low(TL2, TL1), ok]),
            (TL2, false, [low(TL3, TL2), low(TL3, TL2), ok, ok, ok]),
            (TL2, true, [low(TL3, TL2), low(TL3, TL2), ok, ok, ok]),
            (TL3, false, [not_val, not_val, ok, ok, ok]),
            (TL3, true, [ok, ok, ok, ok, ok]),
            (TL4, false, [not_val, not_val, ok, ok, ok]),
            (TL4, true, [ok, ok, ok, ok, ok]),
            (TL5, false, [not_val, not_val, ok, ok, ok]),
            (TL5, true, [ok, ok, ok, ok, ok]),
        ];
        assert_eq!(table.len(), Tier::ALL.len() * 2);
        for (tier, in_validator_set, expected) in table {
            let publisher = Publisher { tier, in_validator_set };
            for (topic, want) in Topic::ALL.into_iter().zip(expected) {
                assert_eq!(
                    policy.may_publish(topic, publisher),
                    want,
                    "{tier} validator={in_validator_set} {topic}"
                );
            }
        }
    }

    #[test]
    fn every_tier_may_subscribe_everywhere() {
        let policy = AdmissionPolicy::default();
        for tier in Tier::ALL {
            for topic in Topic::ALL {
                assert!(policy.may_subscribe(topic, tier).is_allowed());
            }
        }
    }

    #[test]
    fn a_downgrade_takes_rights_away_at_once() {
        let policy = AdmissionPolicy::default();
        let mut publisher = Publisher {
            tier: Tier::TL3,
            in_validator_set: true,
        };
        assert!(policy.may_publish(Topic::Votes, publisher).is_allowed());
        publisher.tier = Tier::TL0;
        assert_eq!(policy.may_publish(Topic::Votes, publisher).label(), "tier_too_low");
        assert_eq!(policy.may_publish(Topic::Proofs, publisher).label(), "tier_too_low");
        assert!(policy.may_publish(Topic::Meta, publisher).is_allowed());
    }

    #[test]
    fn reasons_read_well() {
        let reason = DenyReason::TierTooLow {
            required: Tier::TL2,
            actual: Tier::TL1,
        };
        assert_eq!(reason.to_string(), "tier TL1 is below the required TL2");
        assert_eq!(DenyReason::NotInValidatorSet.label(), "not_validator");
    }
}
