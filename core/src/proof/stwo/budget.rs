//! A bounded verification budget: per key (a submitter, or the peer that
//! relayed an unregistered submitter's proof) and in total, per window of
//! time. Pure: `now_ms` is passed in.
//!
//! Each verification costs its program's cost units (for
//! [`super::posw`], the measured verification time in microseconds:
//! `tiernet-prove bench`). A key that would go over its budget in the
//! current window is refused without verifying (the caller turns this into
//! `Ignore`, not `Reject`: the proof may be valid), and so is everyone once
//! the global budget of the window is spent. So a flood of heavy proofs
//! costs at most `global_units` of verification per window, and one source
//! at most `per_key_units`.

use std::collections::BTreeMap;

/// Why a verification was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// This key spent its budget in this window.
    #[error("verification budget of this submitter spent ({spent}/{budget} units this window)")]
    Key {
        /// Spent so far.
        spent: u64,
        /// Its budget.
        budget: u64,
    },
    /// Everyone's budget for this window is spent.
    #[error("global verification budget spent ({spent}/{budget} units this window)")]
    Global {
        /// Spent so far.
        spent: u64,
        /// The budget.
        budget: u64,
    },
    /// Too many keys tracked in this window.
    #[error("too many submitters this window")]
    Keys,
}

/// The budget state machine.
#[derive(Debug, Clone)]
pub struct VerifyBudget<K: Ord + Clone> {
    window_ms: u64,
    per_key_units: u64,
    global_units: u64,
    max_keys: usize,
    window: u64,
    global_spent: u64,
    spent: BTreeMap<K, u64>,
}

impl<K: Ord + Clone> VerifyBudget<K> {
    /// A budget of `per_key_units` per key and `global_units` in total per
    /// `window_ms`, tracking at most `max_keys` keys per window.
    pub fn new(window_ms: u64, per_key_units: u64, global_units: u64, max_keys: usize) -> Self {
        Self {
            window_ms: window_ms.max(1),
            per_key_units,
            global_units,
            max_keys,
            window: 0,
            global_spent: 0,
            spent: BTreeMap::new(),
        }
    }

    fn roll(&mut self, now_ms: u64) {
        let window = now_ms / self.window_ms;
        if window != self.window {
            self.window = window;
            self.global_spent = 0;
            self.spent.clear();
        }
    }

    /// Spends `cost` for `key` at `now_ms` if both its and the global
    /// budget allow; otherwise spends nothing.
    pub fn try_spend(&mut self, key: &K, cost: u64, now_ms: u64) -> Result<(), OverBudget> {
        self.roll(now_ms);
        let spent = self.spent.get(key).copied();
        if spent.is_none() && self.spent.len() >= self.max_keys {
            return Err(OverBudget::Keys);
        }
        let spent = spent.unwrap_or(0);
        if spent.saturating_add(cost) > self.per_key_units {
            return Err(OverBudget::Key {
                spent,
                budget: self.per_key_units,
            });
        }
        if self.global_spent.saturating_add(cost) > self.global_units {
            return Err(OverBudget::Global {
                spent: self.global_spent,
                budget: self.global_units,
            });
        }
        self.global_spent += cost;
        self.spent.insert(key.clone(), spent + cost);
        Ok(())
    }

    /// Units spent in the current window (as of the last call).
    pub fn global_spent(&self) -> u64 {
        self.global_spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_key_budget_then_refill_next_window() {
        let mut b = VerifyBudget::new(1_000, 30, 1_000, 8);
        assert!(b.try_spend(&1u8, 10, 0).is_ok());
        assert!(b.try_spend(&1u8, 20, 10).is_ok());
        assert_eq!(b.try_spend(&1u8, 1, 20), Err(OverBudget::Key { spent: 30, budget: 30 }));
        // Another key is unaffected.
        assert!(b.try_spend(&2u8, 30, 30).is_ok());
        // Next window: refilled.
        assert!(b.try_spend(&1u8, 30, 1_000).is_ok());
    }

    #[test]
    fn a_flood_from_many_keys_is_capped_globally() {
        let mut b = VerifyBudget::new(1_000, 100, 250, 1_000);
        let accepted = (0..100u32).filter(|k| b.try_spend(k, 100, 5).is_ok()).count();
        assert_eq!(accepted, 2);
        assert!(b.global_spent() <= 250);
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let mut b = VerifyBudget::new(1_000, 100, u64::MAX, 3);
        for k in 0..3u32 {
            assert!(b.try_spend(&k, 1, 0).is_ok());
        }
        assert_eq!(b.try_spend(&99, 1, 0), Err(OverBudget::Keys));
        assert!(b.try_spend(&0, 1, 0).is_ok());
    }
}
