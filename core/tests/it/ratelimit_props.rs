//! Property tests of the rate limiter: a bucket never grants more than
//! `burst + rate × t` over any window of length `t`, whatever the order of
//! costs and times (a clock going back included); a limiter never tracks
//! more keys than its bound; and each key's budget is its own.

use proptest::prelude::*;
use tiernet_core::ratelimit::{Rate, RateLimiter, TokenBucket};

/// Slack for floating-point sums of at most a few hundred small terms.
const EPS: f64 = 1e-6;

fn rate() -> impl Strategy<Value = Rate> {
    (
        prop_oneof![0.0..0.01f64, 0.01..10.0f64, 10.0..1_000.0f64],
        prop_oneof![Just(1.0f64), 1.0..50.0f64],
    )
        .prop_map(|(per_second, burst)| Rate::new(per_second, burst))
}

fn cost() -> impl Strategy<Value = f64> {
    prop_oneof![4 => Just(1.0f64), 1 => Just(0.5f64), 1 => 1.0..4.0f64]
}

/// Requests as (gap in ms since the previous one, cost).
fn requests() -> impl Strategy<Value = Vec<(u64, f64)>> {
    prop::collection::vec((prop_oneof![3 => 0..50u64, 1 => 0..5_000u64], cost()), 1..150)
}

fn bound(rate: Rate, from_ms: u64, to_ms: u64) -> f64 {
    rate.burst + rate.per_second * (to_ms - from_ms) as f64 / 1000.0 + EPS
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// On a clock that only moves forward: for every window of requests
    /// `i..=j`, the costs granted are at most `burst + rate × (t_j − t_i)`.
    #[test]
    fn a_bucket_never_grants_more_than_burst_plus_rate_over_any_window(
        rate in rate(),
        start in 0..1_000_000_000u64,
        requests in requests(),
    ) {
        let mut bucket = TokenBucket::full(rate, start);
        let mut now = start;
        let mut granted: Vec<(u64, f64)> = Vec::new();
        for (gap, cost) in requests {
            now += gap;
            let before = bucket.available(rate, now);
            let ok = bucket.try_take(rate, cost, now);
            prop_assert_eq!(ok, before >= cost, "granted {} with {} available", cost, before);
            prop_assert!(bucket.available(rate, now) <= rate.burst + EPS);
            prop_assert!(bucket.available(rate, now) >= -EPS);
            granted.push((now, if ok { cost } else { 0.0 }));
        }
        for i in 0..granted.len() {
            let mut sum = 0.0;
            for j in i..granted.len() {
                sum += granted[j].1;
                let limit = bound(rate, granted[i].0, granted[j].0);
                prop_assert!(sum <= limit, "{} granted in [{}, {}] ms, limit {}", sum, granted[i].0, granted[j].0, limit);
            }
        }
    }

    /// With a clock that jumps back and forth, the total granted is at most
    /// `burst + rate × (latest time seen − creation time)`: going back in
    /// time adds nothing, and coming back to the present adds nothing twice.
    #[test]
    fn a_clock_going_back_grants_nothing_extra(
        rate in rate(),
        start in 10_000_000u64..1_000_000_000u64,
        requests in prop::collection::vec((-10_000i64..10_000i64, cost()), 1..150),
    ) {
        let mut bucket = TokenBucket::full(rate, start);
        let mut latest = start;
        let mut total = 0.0;
        for (offset, cost) in requests {
            let now = start.saturating_add_signed(offset * 10);
            latest = latest.max(now);
            if bucket.try_take(rate, cost, now) {
                total += cost;
            }
            prop_assert!(total <= bound(rate, start, latest), "{} granted up to {} ms after creation", total, latest - start);
        }
    }

    /// However many keys come, the limiter tracks at most `max_keys`; a key
    /// that is tracked throughout keeps to its own bucket's bound.
    #[test]
    fn the_limiter_is_bounded_and_per_key(
        rate in rate(),
        max_keys in 0..12usize,
        requests in prop::collection::vec((0..40u32, prop_oneof![0..20u64, 0..2_000u64], cost()), 1..300),
    ) {
        let mut limiter = RateLimiter::new(max_keys);
        let mut now = 0u64;
        for (key, gap, cost) in &requests {
            now += gap;
            limiter.check_cost(key, rate, *cost, now);
            prop_assert!(limiter.len() <= max_keys.max(1), "{} keys tracked, bound {}", limiter.len(), max_keys);
        }

        // With room for every key, no bucket is ever dropped: each key's
        // grants obey the single-bucket bound over its whole life.
        let keys: std::collections::BTreeSet<u32> = requests.iter().map(|r| r.0).collect();
        let mut limiter = RateLimiter::new(keys.len());
        let mut now = 0u64;
        let mut per_key: std::collections::BTreeMap<u32, (u64, f64)> = std::collections::BTreeMap::new();
        for (key, gap, cost) in &requests {
            now += gap;
            let ok = limiter.check_cost(key, rate, *cost, now);
            let entry = per_key.entry(*key).or_insert((now, 0.0));
            if ok {
                entry.1 += cost;
            }
            prop_assert!(entry.1 <= bound(rate, entry.0, now), "key {} got {} since {} ms", key, entry.1, entry.0);
        }
        prop_assert_eq!(limiter.len(), keys.len());
    }
}
