//! Local peer reputation: what *this* node thinks of a peer from what the
//! peer did on its connections. It is separate from on-chain reputation
//! (which drives tiers) and never leaves the node.
//!
//! - Events ([`PeerEvent`]) add or subtract points.
//! - The score decays exponentially towards zero (half-life
//!   [`ReputationParams::half_life_ms`]), so old sins and old merits fade.
//! - When the score falls to [`ReputationParams::ban_threshold`] the peer is
//!   banned for a window that doubles with each repeat offence (capped), and
//!   its score restarts from zero for when the ban ends. Offences are
//!   forgotten after [`ReputationParams::offence_memory_ms`] without one.
//! - [`application_score`] turns tier and local score into gossipsub's
//!   application-specific score.
//!
//! Everything takes `now_ms` as an argument: there is no clock in here.

use crate::tier::Tier;

/// Something a peer did that changes its local score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerEvent {
    /// A message that failed decoding, validation or a signature check.
    InvalidMessage,
    /// A publish on a topic its tier may not publish on.
    UnauthorisedPublish,
    /// A message it had already sent (same content, or an old sequence number).
    Replay,
    /// More messages than its rate limit allows.
    RateLimitBreach,
    /// A Hello that failed verification.
    FailedHandshake,
    /// A sync response that failed verification.
    BadResponse,
    /// The first delivery of a valid message we had not seen.
    UsefulFirstDelivery,
    /// A valid sync response.
    GoodResponse,
}

impl PeerEvent {
    /// All events.
    pub const ALL: [PeerEvent; 8] = [
        PeerEvent::InvalidMessage,
        PeerEvent::UnauthorisedPublish,
        PeerEvent::Replay,
        PeerEvent::RateLimitBreach,
        PeerEvent::FailedHandshake,
        PeerEvent::BadResponse,
        PeerEvent::UsefulFirstDelivery,
        PeerEvent::GoodResponse,
    ];

    /// A short label for metrics and logs.
    pub const fn label(self) -> &'static str {
        match self {
            PeerEvent::InvalidMessage => "invalid_message",
            PeerEvent::UnauthorisedPublish => "unauthorised_publish",
            PeerEvent::Replay => "replay",
            PeerEvent::RateLimitBreach => "rate_limit_breach",
            PeerEvent::FailedHandshake => "failed_handshake",
            PeerEvent::BadResponse => "bad_response",
            PeerEvent::UsefulFirstDelivery => "useful_first_delivery",
            PeerEvent::GoodResponse => "good_response",
        }
    }

    /// Points this event adds (negative: subtracts).
    pub const fn points(self, params: &ReputationParams) -> f64 {
        match self {
            PeerEvent::InvalidMessage => params.invalid_message,
            PeerEvent::UnauthorisedPublish => params.unauthorised_publish,
            PeerEvent::Replay => params.replay,
            PeerEvent::RateLimitBreach => params.rate_limit_breach,
            PeerEvent::FailedHandshake => params.failed_handshake,
            PeerEvent::BadResponse => params.bad_response,
            PeerEvent::UsefulFirstDelivery => params.useful_first_delivery,
            PeerEvent::GoodResponse => params.good_response,
        }
    }
}

/// Weights, decay and ban policy. The defaults ban a peer after four
/// unauthorised publishes or five invalid messages in quick succession.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationParams {
    /// Points for [`PeerEvent::InvalidMessage`].
    pub invalid_message: f64,
    /// Points for [`PeerEvent::UnauthorisedPublish`].
    pub unauthorised_publish: f64,
    /// Points for [`PeerEvent::Replay`].
    pub replay: f64,
    /// Points for [`PeerEvent::RateLimitBreach`].
    pub rate_limit_breach: f64,
    /// Points for [`PeerEvent::FailedHandshake`].
    pub failed_handshake: f64,
    /// Points for [`PeerEvent::BadResponse`].
    pub bad_response: f64,
    /// Points for [`PeerEvent::UsefulFirstDelivery`].
    pub useful_first_delivery: f64,
    /// Points for [`PeerEvent::GoodResponse`].
    pub good_response: f64,
    /// Good behaviour is capped here, so that merit cannot be banked to
    /// absorb a later attack.
    pub max_score: f64,
    /// Score at or below which the peer is banned.
    pub ban_threshold: f64,
    /// Half-life of the score's decay towards zero.
    pub half_life_ms: u64,
    /// Length of the first ban.
    pub base_ban_ms: u64,
    /// Longest ban.
    pub max_ban_ms: u64,
    /// Offences are forgotten after this long without a new one.
    pub offence_memory_ms: u64,
}

impl Default for ReputationParams {
    fn default() -> Self {
        Self {
            invalid_message: -20.0,
            // Honest nodes check admission before they publish, so an
            // unauthorised publish is deliberate: four strikes.
            unauthorised_publish: -25.0,
            replay: -2.0,
            rate_limit_breach: -5.0,
            failed_handshake: -50.0,
            bad_response: -25.0,
            useful_first_delivery: 0.5,
            good_response: 0.5,
            max_score: 50.0,
            ban_threshold: -100.0,
            half_life_ms: 10 * 60 * 1000,
            base_ban_ms: 60 * 1000,
            max_ban_ms: 24 * 60 * 60 * 1000,
            offence_memory_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// What recording an event led to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The score changed; no ban.
    Scored {
        /// The score after the event.
        score: f64,
    },
    /// The score crossed the threshold: the peer is banned.
    Banned {
        /// When the ban ends.
        until_ms: u64,
        /// How many offences (bans) the peer now has on record.
        offences: u32,
    },
    /// The peer is already banned; the event changes nothing.
    AlreadyBanned {
        /// When the ban ends.
        until_ms: u64,
    },
}

/// One peer's local reputation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeerReputation {
    score: f64,
    updated_ms: u64,
    offences: u32,
    last_offence_ms: u64,
    banned_until_ms: u64,
}

impl PeerReputation {
    /// Restores a reputation from the peerstore (score at `updated_ms`).
    pub fn restore(score: f64, updated_ms: u64, offences: u32, last_offence_ms: u64, banned_until_ms: u64) -> Self {
        Self {
            score: if score.is_finite() { score } else { 0.0 },
            updated_ms,
            offences,
            last_offence_ms,
            banned_until_ms,
        }
    }

    /// The score at `now_ms`, with decay applied.
    pub fn score(&self, now_ms: u64, params: &ReputationParams) -> f64 {
        decayed(self.score, now_ms.saturating_sub(self.updated_ms), params.half_life_ms)
    }

    /// When the current ban ends, if the peer is banned at `now_ms`.
    pub fn banned_until(&self, now_ms: u64) -> Option<u64> {
        (self.banned_until_ms > now_ms).then_some(self.banned_until_ms)
    }

    /// Offences on record at `now_ms`.
    pub fn offences(&self, now_ms: u64, params: &ReputationParams) -> u32 {
        if self.offences > 0 && now_ms.saturating_sub(self.last_offence_ms) >= params.offence_memory_ms {
            0
        } else {
            self.offences
        }
    }

    /// Fields for persisting: (score, updated_ms, offences, last_offence_ms, banned_until_ms).
    pub fn to_parts(&self) -> (f64, u64, u32, u64, u64) {
        (
            self.score,
            self.updated_ms,
            self.offences,
            self.last_offence_ms,
            self.banned_until_ms,
        )
    }

    /// Records an event at `now_ms`.
    pub fn record(&mut self, event: PeerEvent, now_ms: u64, params: &ReputationParams) -> Outcome {
        if let Some(until_ms) = self.banned_until(now_ms) {
            return Outcome::AlreadyBanned { until_ms };
        }
        let score = (self.score(now_ms, params) + event.points(params)).min(params.max_score);
        self.updated_ms = now_ms;
        if score > params.ban_threshold {
            self.score = score;
            return Outcome::Scored { score };
        }
        self.offend(now_ms, params)
    }

    /// Bans the peer at `now_ms` for an offence whatever its score: the
    /// window grows with its offences as for a ban by score. For a
    /// violation after which the node would no longer see the peer's
    /// messages, so its score could not reach the threshold (the node's
    /// GossipSub graylist). An event this peer is already banned for
    /// changes nothing.
    pub fn ban_for_offence(&mut self, now_ms: u64, params: &ReputationParams) -> Outcome {
        if let Some(until_ms) = self.banned_until(now_ms) {
            return Outcome::AlreadyBanned { until_ms };
        }
        self.updated_ms = now_ms;
        self.offend(now_ms, params)
    }

    fn offend(&mut self, now_ms: u64, params: &ReputationParams) -> Outcome {
        let offences = self.offences(now_ms, params).saturating_add(1);
        let window = ban_window(offences, params);
        self.offences = offences;
        self.last_offence_ms = now_ms;
        self.banned_until_ms = now_ms.saturating_add(window);
        self.score = 0.0;
        Outcome::Banned {
            until_ms: self.banned_until_ms,
            offences,
        }
    }

    /// Bans the peer by operator decision until `until_ms`.
    pub fn ban_until(&mut self, until_ms: u64) {
        self.banned_until_ms = self.banned_until_ms.max(until_ms);
    }

    /// Lifts a ban (operator allowlist).
    pub fn unban(&mut self) {
        self.banned_until_ms = 0;
    }
}

/// `base · 2^(offences−1)`, capped at `max_ban_ms`.
pub fn ban_window(offences: u32, params: &ReputationParams) -> u64 {
    let doublings = offences.saturating_sub(1).min(63);
    params
        .base_ban_ms
        .saturating_mul(1u64 << doublings)
        .min(params.max_ban_ms)
}

fn decayed(score: f64, elapsed_ms: u64, half_life_ms: u64) -> f64 {
    if half_life_ms == 0 || score == 0.0 {
        return score;
    }
    let halvings = elapsed_ms as f64 / half_life_ms as f64;
    let value = score * 0.5f64.powf(halvings);
    if value.abs() < 1e-6 { 0.0 } else { value }
}

/// The application-score bonus of a tier: mesh weight grows with tier, as
/// DESIGN.md asks of TL4/TL5.
pub const fn tier_bonus(tier: Tier) -> f64 {
    match tier {
        Tier::TL0 => 0.0,
        Tier::TL1 => 2.0,
        Tier::TL2 => 5.0,
        Tier::TL3 => 10.0,
        Tier::TL4 => 15.0,
        Tier::TL5 => 20.0,
    }
}

/// The most that good local behaviour (relaying first deliveries, good
/// sync answers) adds to the application score: a TL3 tier bonus. Relaying
/// is cheap, so a TL0 sybil that relays a lot must never outweigh a peer
/// whose standing the chain gave it.
pub const MAX_EARNED_BONUS: f64 = tier_bonus(Tier::TL3);

/// Gossipsub's application-specific score of a peer: its tier bonus
/// ([`tier_bonus`]) plus its local reputation, whose positive part is capped
/// at [`MAX_EARNED_BONUS`]. Gossipsub multiplies it by `app_specific_weight`.
pub fn application_score(tier: Tier, local_score: f64) -> f64 {
    tier_bonus(tier) + local_score.min(MAX_EARNED_BONUS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> ReputationParams {
        ReputationParams::default()
    }

    #[test]
    fn events_move_the_score_and_good_behaviour_is_capped() {
        let mut r = PeerReputation::default();
        assert_eq!(
            r.record(PeerEvent::InvalidMessage, 0, &p()),
            Outcome::Scored { score: -20.0 }
        );
        for _ in 0..1000 {
            r.record(PeerEvent::UsefulFirstDelivery, 0, &p());
        }
        assert_eq!(r.score(0, &p()), p().max_score);
    }

    #[test]
    fn score_decays_by_half_each_half_life() {
        let mut r = PeerReputation::default();
        r.record(PeerEvent::FailedHandshake, 1_000, &p());
        let h = p().half_life_ms;
        assert!((r.score(1_000 + h, &p()) - -25.0).abs() < 1e-9);
        assert!((r.score(1_000 + 2 * h, &p()) - -12.5).abs() < 1e-9);
        assert_eq!(r.score(1_000 + 100 * h, &p()), 0.0);
    }

    #[test]
    fn a_ban_for_an_offence_ignores_merit_and_grows_like_a_ban_by_score() {
        let params = p();
        let mut r = PeerReputation::default();
        for _ in 0..200 {
            r.record(PeerEvent::UsefulFirstDelivery, 0, &params);
        }
        assert_eq!(r.score(0, &params), params.max_score);
        assert_eq!(
            r.ban_for_offence(10, &params),
            Outcome::Banned {
                until_ms: 10 + params.base_ban_ms,
                offences: 1
            }
        );
        assert_eq!(r.score(10, &params), 0.0, "merit is gone with the ban");
        assert_eq!(
            r.ban_for_offence(20, &params),
            Outcome::AlreadyBanned {
                until_ms: 10 + params.base_ban_ms
            }
        );
        let after = 10 + params.base_ban_ms;
        assert_eq!(
            r.ban_for_offence(after, &params),
            Outcome::Banned {
                until_ms: after + 2 * params.base_ban_ms,
                offences: 2
            }
        );
    }

    #[test]
    fn repeated_offences_ban_with_growing_windows() {
        let params = p();
        let mut r = PeerReputation::default();
        let mut now = 0;
        let mut windows = vec![];
        for _ in 0..4 {
            let outcome = loop {
                match r.record(PeerEvent::UnauthorisedPublish, now, &params) {
                    Outcome::Scored { .. } => now += 1,
                    other => break other,
                }
            };
            let Outcome::Banned { until_ms, offences } = outcome else {
                panic!("expected a ban, got {outcome:?}");
            };
            assert_eq!(offences as usize, windows.len() + 1);
            windows.push(until_ms - now);
            // While banned, events change nothing.
            assert_eq!(
                r.record(PeerEvent::InvalidMessage, now + 1, &params),
                Outcome::AlreadyBanned { until_ms }
            );
            assert!(r.banned_until(until_ms - 1).is_some());
            assert!(r.banned_until(until_ms).is_none());
            now = until_ms;
        }
        assert_eq!(windows, vec![60_000, 120_000, 240_000, 480_000]);
    }

    #[test]
    fn offences_are_forgotten_and_windows_capped() {
        let params = p();
        assert_eq!(ban_window(1, &params), 60_000);
        assert_eq!(ban_window(40, &params), params.max_ban_ms);
        assert_eq!(ban_window(u32::MAX, &params), params.max_ban_ms);
        let mut r = PeerReputation::default();
        r.record(PeerEvent::FailedHandshake, 0, &params);
        let Outcome::Banned { offences: 1, until_ms } = r.record(PeerEvent::FailedHandshake, 0, &params) else {
            panic!()
        };
        let later = until_ms + params.offence_memory_ms;
        assert_eq!(r.offences(later, &params), 0);
        r.record(PeerEvent::FailedHandshake, later, &params);
        assert!(matches!(
            r.record(PeerEvent::FailedHandshake, later, &params),
            Outcome::Banned { offences: 1, .. }
        ));
    }

    #[test]
    fn restore_round_trips_and_survives_nan() {
        let mut r = PeerReputation::default();
        r.record(PeerEvent::Replay, 5, &p());
        let (s, u, o, l, b) = r.to_parts();
        assert_eq!(PeerReputation::restore(s, u, o, l, b), r);
        assert_eq!(PeerReputation::restore(f64::NAN, 0, 0, 0, 0).score(0, &p()), 0.0);
    }

    #[test]
    fn application_score_rises_with_tier_and_falls_with_misbehaviour() {
        let mut last = f64::MIN;
        for tier in Tier::ALL {
            let s = application_score(tier, 0.0);
            assert!(s > last);
            last = s;
        }
        assert!(application_score(Tier::TL5, -100.0) < application_score(Tier::TL0, 0.0));
    }

    #[test]
    fn relaying_earns_no_more_than_a_tl3_bonus() {
        // A TL0 peer at the highest local score the params allow (it relayed
        // thousands of first deliveries) stays at or below a TL3 peer with no merit.
        let params = p();
        let mut r = PeerReputation::default();
        for i in 0..10_000 {
            r.record(PeerEvent::UsefulFirstDelivery, i, &params);
        }
        let earned = r.score(10_000, &params);
        assert!(
            earned > MAX_EARNED_BONUS,
            "the local score itself may be higher: {earned}"
        );
        assert!(application_score(Tier::TL0, earned) <= application_score(Tier::TL3, 0.0));
        assert!(application_score(Tier::TL2, earned) <= application_score(Tier::TL4, 0.0));
    }
}
