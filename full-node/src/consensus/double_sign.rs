//! The double-sign detector: votes seen on `votes`, remembered by slot
//! (height, round, vote type, validator), so that a second, different vote
//! in a slot becomes equivocation evidence.
//!
//! It is bounded on both sides of the live height (the height being
//! decided, one above the last decided one), and nobody's votes can push
//! out anybody else's:
//!
//! - **Heights** from `live − EVIDENCE_WINDOW_HEIGHTS` (a double-sign at a
//!   decided height is as slashable as one at the live height, and the
//!   likelier one to arrive late) up to `live + EVIDENCE_FUTURE_HEIGHTS`
//!   (a peer may be a height or two ahead of us). A vote outside is not
//!   looked at: one from far ahead could only take room. Heights that fall
//!   below the window as the chain moves on are dropped ([`DoubleSignDetector::prune`]).
//! - **Validators**: only members of the current set (evidence against
//!   anyone else does not verify).
//! - **Slots**: at most [`MAX_SLOTS_PER_VALIDATOR`] per validator and
//!   height. A validator that signs more (rounds only go up) displaces its
//!   own lowest slots at that height, never anyone else's.
//!
//! There is no global eviction, so a flood of votes, at any heights, by
//! any number of faulty validators, cannot evict an honest or faulty
//! validator's vote at the live height; the detector never holds more than
//! [`MAX_TRACKED_VOTES`] votes.

use std::collections::BTreeMap;

use tiernet_core::chain::ValidatorSet;
use tiernet_core::identity::ZsiId;
use tiernet_core::wire::limits::MAX_VALIDATORS;
use tiernet_core::wire::proto;

/// Heights below the live one whose votes are still compared.
pub const EVIDENCE_WINDOW_HEIGHTS: u64 = 16;
/// Heights above the live one whose votes are already compared.
pub const EVIDENCE_FUTURE_HEIGHTS: u64 = 2;
/// Slots (round × vote type) kept per validator and height: its latest four rounds.
pub const MAX_SLOTS_PER_VALIDATOR: usize = 8;
/// The most votes the detector can hold: every height of the window, every
/// validator a set may have, every slot.
pub const MAX_TRACKED_VOTES: usize =
    (EVIDENCE_WINDOW_HEIGHTS + 1 + EVIDENCE_FUTURE_HEIGHTS) as usize * MAX_VALIDATORS * MAX_SLOTS_PER_VALIDATOR;

/// What became of a vote shown to the detector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Outside the window, by a non-member, malformed, or below the slots
    /// its validator already has at that height: not tracked.
    Ignored,
    /// Remembered.
    New,
    /// The same vote (same value) as the one remembered in its slot.
    Same,
    /// A different vote than the one remembered in its slot (returned):
    /// the two are equivocation evidence.
    Conflict(proto::Vote),
}

/// `(round, vote type)`: a validator's slot at a height.
type Slot = (u32, i32);

/// Votes by height, then validator, then slot. See the [module docs](self).
#[derive(Debug, Default)]
pub struct DoubleSignDetector {
    votes: BTreeMap<u64, BTreeMap<ZsiId, BTreeMap<Slot, proto::Vote>>>,
    len: usize,
}

impl DoubleSignDetector {
    /// An empty detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Votes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no vote.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the vote in `slot` of `validator` at `height` is held.
    pub fn holds(&self, height: u64, validator: &ZsiId, round: u32, vote_type: i32) -> bool {
        self.votes
            .get(&height)
            .and_then(|by| by.get(validator))
            .is_some_and(|slots| slots.contains_key(&(round, vote_type)))
    }

    /// The heights whose votes are compared while `live` is being decided.
    pub fn window(live: u64) -> std::ops::RangeInclusive<u64> {
        live.saturating_sub(EVIDENCE_WINDOW_HEIGHTS)..=live.saturating_add(EVIDENCE_FUTURE_HEIGHTS)
    }

    /// Shows the detector a vote (its signature already checked) while
    /// `live` is the height being decided and `members` the current set.
    pub fn observe(&mut self, vote: &proto::Vote, live: u64, members: &ValidatorSet) -> Observed {
        if !Self::window(live).contains(&vote.height) {
            return Observed::Ignored;
        }
        let Some(validator) = ZsiId::from_slice(&vote.validator).filter(|v| members.contains(v)) else {
            return Observed::Ignored;
        };
        let slot = (vote.round, vote.vote_type);
        let slots = self.votes.entry(vote.height).or_default().entry(validator).or_default();
        if let Some(first) = slots.get(&slot) {
            return if first.block_hash == vote.block_hash {
                Observed::Same
            } else {
                Observed::Conflict(first.clone())
            };
        }
        if slots.len() >= MAX_SLOTS_PER_VALIDATOR {
            // Only this validator's own lowest slot makes room, and only
            // for a later one.
            match slots.first_key_value() {
                Some((lowest, _)) if *lowest < slot => {
                    slots.pop_first();
                    self.len -= 1;
                }
                _ => return Observed::Ignored,
            }
        }
        slots.insert(slot, vote.clone());
        self.len += 1;
        Observed::New
    }

    /// Drops the heights below the window of `live`.
    pub fn prune(&mut self, live: u64) {
        let keep = self.votes.split_off(Self::window(live).start());
        let dropped: usize = self.votes.values().flat_map(BTreeMap::values).map(BTreeMap::len).sum();
        self.len -= dropped;
        self.votes = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiernet_core::hash::Hash32;

    fn set(n: u8) -> ValidatorSet {
        let validators = (0..n)
            .map(|i| proto::Validator {
                zsi_id: vec![i + 10; 32],
                consensus_key: ed25519_dalek::SigningKey::from_bytes(&[i + 1; 32])
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
                power: 10,
            })
            .collect();
        ValidatorSet::new(proto::ValidatorSet { validators }).unwrap()
    }

    fn vote(validator: u8, height: u64, round: u32, vote_type: i32, value: u8) -> proto::Vote {
        proto::Vote {
            network_id: "unitnet".into(),
            vote_type,
            height,
            round,
            block_hash: vec![value; 32],
            validator: vec![validator + 10; 32],
            signature: vec![0; 64],
        }
    }

    fn id(validator: u8) -> ZsiId {
        ZsiId(Hash32([validator + 10; 32]))
    }

    #[test]
    fn a_second_different_vote_in_a_slot_conflicts() {
        let set = set(4);
        let mut d = DoubleSignDetector::new();
        let first = vote(1, 5, 0, 1, 0xaa);
        assert_eq!(d.observe(&first, 5, &set), Observed::New);
        assert_eq!(d.observe(&first, 5, &set), Observed::Same);
        assert_eq!(d.observe(&vote(1, 5, 0, 1, 0xbb), 5, &set), Observed::Conflict(first));
        // Another slot is another vote.
        assert_eq!(d.observe(&vote(1, 5, 0, 2, 0xbb), 5, &set), Observed::New);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn votes_outside_the_window_or_by_strangers_are_ignored() {
        let set = set(4);
        let mut d = DoubleSignDetector::new();
        let live = 100;
        let far = live + EVIDENCE_FUTURE_HEIGHTS + 1;
        assert_eq!(d.observe(&vote(1, far, 0, 1, 1), live, &set), Observed::Ignored);
        assert_eq!(d.observe(&vote(1, far, 0, 1, 2), live, &set), Observed::Ignored);
        assert_eq!(d.observe(&vote(1, u64::MAX, 0, 1, 2), live, &set), Observed::Ignored);
        let old = live - EVIDENCE_WINDOW_HEIGHTS - 1;
        assert_eq!(d.observe(&vote(1, old, 0, 1, 1), live, &set), Observed::Ignored);
        assert_eq!(d.observe(&vote(9, live, 0, 1, 1), live, &set), Observed::Ignored);
        let mut malformed = vote(1, live, 0, 1, 1);
        malformed.validator.pop();
        assert_eq!(d.observe(&malformed, live, &set), Observed::Ignored);
        assert!(d.is_empty());
        // Both edges of the window are in.
        assert_eq!(
            d.observe(&vote(1, live + EVIDENCE_FUTURE_HEIGHTS, 0, 1, 1), live, &set),
            Observed::New
        );
        assert_eq!(
            d.observe(&vote(1, live - EVIDENCE_WINDOW_HEIGHTS, 0, 1, 1), live, &set),
            Observed::New
        );
    }

    #[test]
    fn a_flood_displaces_only_the_flooders_own_votes() {
        let set = set(4);
        let mut d = DoubleSignDetector::new();
        let live = 50;
        let honest = vote(0, live, 0, 1, 0xaa);
        d.observe(&honest, live, &set);
        // Validator 2 signs every slot of every height of the window, and far beyond.
        for height in live - 40..live + 40 {
            for round in 0..200 {
                for vote_type in [1, 2] {
                    d.observe(&vote(2, height, round, vote_type, 7), live, &set);
                }
            }
        }
        let heights = (EVIDENCE_WINDOW_HEIGHTS + 1 + EVIDENCE_FUTURE_HEIGHTS) as usize;
        assert_eq!(d.len(), 1 + heights * MAX_SLOTS_PER_VALIDATOR);
        assert!(d.holds(live, &id(0), 0, 1));
        // It keeps its latest rounds, and an early round no longer gets in.
        assert!(d.holds(live, &id(2), 199, 2) && !d.holds(live, &id(2), 0, 1));
        assert_eq!(d.observe(&vote(2, live, 0, 1, 8), live, &set), Observed::Ignored);
        assert_eq!(
            d.observe(&vote(0, live, 0, 1, 0xbb), live, &set),
            Observed::Conflict(honest)
        );
    }

    #[test]
    fn pruning_follows_the_live_height() {
        let set = set(4);
        let mut d = DoubleSignDetector::new();
        for height in 1..=20 {
            d.observe(&vote(1, height, 0, 1, 1), 20, &set);
        }
        assert_eq!(d.len(), 17);
        d.prune(30);
        assert_eq!(d.len(), 7);
        assert!(d.holds(14, &id(1), 0, 1) && !d.holds(13, &id(1), 0, 1));
        d.prune(u64::MAX);
        assert!(d.is_empty());
    }
}
