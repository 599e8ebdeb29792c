//! Property tests of local peer reputation: the score decays monotonically
//! toward zero as time passes, ban windows never shrink as offences repeat,
//! and every ban ends (no later than `max_ban_ms` after it began).

use proptest::prelude::*;
use tiernet_core::reputation::{Outcome, PeerEvent, PeerReputation, ReputationParams, ban_window};

fn event() -> impl Strategy<Value = PeerEvent> {
    prop::sample::select(PeerEvent::ALL.to_vec())
}

/// Default weights with random decay and ban policy.
fn params() -> impl Strategy<Value = ReputationParams> {
    (
        prop_oneof![Just(0u64), 1..10_000u64, 10_000..10_000_000u64],
        prop_oneof![Just(0u64), 1..100_000u64],
        prop_oneof![1..10_000_000u64, Just(u64::MAX)],
        1..100_000_000u64,
    )
        .prop_map(
            |(half_life_ms, base_ban_ms, max_ban_ms, offence_memory_ms)| ReputationParams {
                half_life_ms,
                base_ban_ms,
                max_ban_ms,
                offence_memory_ms,
                ..ReputationParams::default()
            },
        )
}

/// Events with the gap (ms) since the previous one; mostly quick
/// succession so that bans happen, sometimes long pauses.
fn history() -> impl Strategy<Value = Vec<(u64, PeerEvent)>> {
    prop::collection::vec((prop_oneof![4 => 0..1_000u64, 1 => 0..10_000_000u64], event()), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any history, the score read later is never further from zero
    /// than the score read earlier, and never changes sign.
    #[test]
    fn the_score_decays_monotonically_toward_zero(
        params in params(),
        history in history(),
        probes in prop::collection::vec(0..100_000_000u64, 1..20),
    ) {
        let mut peer = PeerReputation::default();
        let mut now = 1_000u64;
        for (gap, event) in history {
            now += gap;
            peer.record(event, now, &params);
        }
        let mut times: Vec<u64> = probes.iter().map(|p| now + p).collect();
        times.sort_unstable();
        let mut last = peer.score(now, &params);
        prop_assert!(last.is_finite());
        for t in times {
            let score = peer.score(t, &params);
            prop_assert!(score.abs() <= last.abs(), "|score| grew from {} to {} at {}", last, score, t);
            prop_assert!(score * last >= 0.0, "score changed sign from {} to {}", last, score);
            last = score;
        }
    }

    /// The ban window never shrinks as the offence count grows, and never
    /// exceeds `max_ban_ms`.
    #[test]
    fn ban_windows_never_shrink_with_offences(params in params(), offences in 0..200u32) {
        let a = ban_window(offences, &params);
        let b = ban_window(offences.saturating_add(1), &params);
        prop_assert!(b >= a, "{} offences: {} ms, {}: {} ms", offences, a, offences + 1, b);
        prop_assert!(b <= params.max_ban_ms);
        prop_assert!(ban_window(u32::MAX, &params) >= b);
    }

    /// Along a random history: while offences are remembered, each ban is
    /// at least as long as the one before; every ban ends within
    /// `max_ban_ms`, and is over at its end time.
    #[test]
    fn repeated_bans_grow_and_every_ban_ends(params in params(), history in history()) {
        let mut peer = PeerReputation::default();
        let mut now = 1_000u64;
        let mut last_ban: Option<(u64, u32)> = None;
        for (gap, event) in history {
            now += gap;
            match peer.record(event, now, &params) {
                Outcome::Banned { until_ms, offences } => {
                    let window = until_ms - now;
                    prop_assert!(window <= params.max_ban_ms, "a {} ms ban over the {} ms cap", window, params.max_ban_ms);
                    prop_assert_eq!(window, ban_window(offences, &params));
                    prop_assert_eq!(peer.banned_until(until_ms), None, "the ban does not end at its end time");
                    if let Some((previous, previous_offences)) = last_ban
                        && offences > previous_offences
                    {
                        prop_assert!(window >= previous, "ban {} lasted {} ms after one of {} ms", offences, window, previous);
                    }
                    last_ban = Some((window, offences));
                }
                Outcome::AlreadyBanned { until_ms } => {
                    prop_assert!(until_ms > now);
                    prop_assert!(until_ms - now <= params.max_ban_ms);
                }
                Outcome::Scored { score } => prop_assert!(score > params.ban_threshold),
            }
            // Whatever happened, the peer is free again within max_ban_ms.
            prop_assert_eq!(peer.banned_until(now.saturating_add(params.max_ban_ms)), None);
        }
    }
}
