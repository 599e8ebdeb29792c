//! Token buckets for per-peer, per-topic and per-request rate limits.
//!
//! Pure: the caller passes `now_ms`. A bucket holds at most `burst` tokens
//! and refills at `per_second`; each message takes one token (or a cost).
//! Buckets for many keys live in a [`RateLimiter`] with a bounded number of
//! keys, so a flood of new peer ids cannot grow memory without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

/// Rate and burst of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Largest number of tokens held (and the initial amount).
    pub burst: f64,
}

impl Rate {
    /// `per_second` tokens a second, bursts of `burst`.
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }
}

/// One token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    updated_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn full(rate: Rate, now_ms: u64) -> Self {
        Self {
            tokens: rate.burst,
            updated_ms: now_ms,
        }
    }

    fn refill(&mut self, rate: Rate, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    /// Takes `cost` tokens if there are enough; `false` (and nothing taken) if not.
    pub fn try_take(&mut self, rate: Rate, cost: f64, now_ms: u64) -> bool {
        self.refill(rate, now_ms);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Tokens available at `now_ms`.
    pub fn available(&self, rate: Rate, now_ms: u64) -> f64 {
        let mut copy = *self;
        copy.refill(rate, now_ms);
        copy.tokens
    }
}

/// Buckets for up to `max_keys` keys. When full, the bucket that has been
/// idle longest is dropped (it would have refilled anyway, so dropping it
/// only forgives a key that has been quiet).
#[derive(Debug, Clone)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, TokenBucket>,
    max_keys: usize,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter for at most `max_keys` keys (at least 1).
    pub fn new(max_keys: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// Takes one token from `key`'s bucket.
    pub fn check(&mut self, key: &K, rate: Rate, now_ms: u64) -> bool {
        self.check_cost(key, rate, 1.0, now_ms)
    }

    /// Takes `cost` tokens from `key`'s bucket.
    pub fn check_cost(&mut self, key: &K, rate: Rate, cost: f64, now_ms: u64) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            self.evict_idlest();
        }
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::full(rate, now_ms))
            .try_take(rate, cost, now_ms)
    }

    /// Forgets `key` (e.g. when its peer disconnects).
    pub fn remove(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    /// Forgets every key matching `predicate`.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.buckets.retain(|k, _| keep(k));
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn evict_idlest(&mut self) {
        if let Some(key) = self
            .buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.updated_ms)
            .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&key);
        }
    }
}

/// One rate limit: its key and its rate, as a type. Each limiter in a node
/// is a [`Limiter`] of its own `Limit`, so two limits can never share
/// buckets (a sync request spending a peer's gossip budget) or be checked
/// with each other's rates by mistake.
pub trait Limit {
    /// What is limited (a peer, a peer and topic, a connection, an author).
    type Key: Eq + Hash + Clone;
    /// A short name for logs and metrics.
    const NAME: &'static str;
    /// The rate for `key`.
    fn rate(key: &Self::Key) -> Rate;
}

/// Buckets of one [`Limit`] for at most `max_keys` keys (see [`RateLimiter`]).
#[derive(Debug, Clone)]
pub struct Limiter<L: Limit> {
    buckets: RateLimiter<L::Key>,
    limit: PhantomData<fn() -> L>,
}

impl<L: Limit> Limiter<L> {
    /// A limiter for at most `max_keys` keys (at least 1).
    pub fn new(max_keys: usize) -> Self {
        Self {
            buckets: RateLimiter::new(max_keys),
            limit: PhantomData,
        }
    }

    /// Takes one token from `key`'s bucket at the limit's rate.
    pub fn check(&mut self, key: &L::Key, now_ms: u64) -> bool {
        self.buckets.check(key, L::rate(key), now_ms)
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &L::Key) {
        self.buckets.remove(key);
    }

    /// Forgets every key not matching `keep`.
    pub fn retain(&mut self, keep: impl FnMut(&L::Key) -> bool) {
        self.buckets.retain(keep);
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slow;
    impl Limit for Slow {
        type Key = u8;
        const NAME: &'static str = "slow";
        fn rate(_: &u8) -> Rate {
            Rate::new(1.0, 1.0)
        }
    }

    struct Fast;
    impl Limit for Fast {
        type Key = u8;
        const NAME: &'static str = "fast";
        fn rate(_: &u8) -> Rate {
            Rate::new(100.0, 100.0)
        }
    }

    #[test]
    fn limiters_own_their_rates_and_buckets() {
        let mut slow = Limiter::<Slow>::new(8);
        let mut fast = Limiter::<Fast>::new(8);
        assert!(slow.check(&1, 0));
        assert!(!slow.check(&1, 0));
        // The same key in another limit has its own bucket and rate.
        assert_eq!((0..200).filter(|_| fast.check(&1, 0)).count(), 100);
        assert!(!slow.check(&1, 500));
        assert!(slow.check(&1, 1000));
    }

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let rate = Rate::new(2.0, 5.0);
        let mut b = TokenBucket::full(rate, 0);
        assert_eq!((0..10).filter(|_| b.try_take(rate, 1.0, 0)).count(), 5);
        assert!(!b.try_take(rate, 1.0, 400));
        assert!(b.try_take(rate, 1.0, 500));
        assert!(!b.try_take(rate, 1.0, 500));
        // Never more than the burst, however long it waits.
        assert_eq!(b.available(rate, 1_000_000), 5.0);
        // A clock going backwards takes nothing and adds nothing.
        let before = b.available(rate, 500);
        assert_eq!(b.available(rate, 100), before);
    }

    #[test]
    fn limiter_is_per_key_and_bounded() {
        let rate = Rate::new(1.0, 1.0);
        let mut l = RateLimiter::new(3);
        assert!(l.check(&"a", rate, 0));
        assert!(!l.check(&"a", rate, 0));
        assert!(l.check(&"b", rate, 0));
        for i in 0..100u64 {
            l.check(&"x", rate, i);
            l.check(&"y", rate, i);
        }
        assert!(l.len() <= 3);
        l.remove(&"x");
        assert!(l.len() <= 2);
    }
}
