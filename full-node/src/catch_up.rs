//! Catch-up: which peer to ask for the next finalized block when this node
//! is behind, and what to make of its answer. A sans-IO state machine: the
//! node passes `now` and its connected peers in, sends the request it is
//! told to, and reports the answer back.
//!
//! - **Who is asked.** Validators first (they have every block), then the
//!   other peers by local score. The peer whose message showed the gap is
//!   just one candidate: an attacker that gossips a far-ahead vote cannot
//!   make itself the one asked.
//! - **One request in flight**, with a deadline of [`REQUEST_TIMEOUT_MS`]. A
//!   peer that lets it pass, answers with another height, says it has no
//!   such block, or fails the request rests for a while ([`Rest`]), and the
//!   next candidate is asked at once. A peer that never answers therefore
//!   holds a lagging node back for one timeout at most, then not at all
//!   until its rest is over.
//! - **An invalid answer** (a block whose certificate does not verify or
//!   that does not extend our head) is the responder's fault: the node
//!   records [`PeerEvent::BadResponse`] against it, and it rests longest.
//! - After each block the next one is asked for while the highest height
//!   seen ahead is above our head.

use std::collections::HashMap;

use libp2p::PeerId;
use tiernet_core::reputation::PeerEvent;

/// How long a catch-up request may take before the next peer is asked.
pub const REQUEST_TIMEOUT_MS: u64 = 2_000;

/// Most peers remembered as resting (each entry is a PeerId and two u64s).
pub const MAX_RESTING: usize = 1024;

/// How long a peer is not asked again after each kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// It did not have the block (it may be behind too).
    NotFound,
    /// It let the deadline pass, or the request failed.
    Silent,
    /// It answered with a block that does not verify.
    Invalid,
}

impl Answer {
    /// A short label for metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Answer::Applied => "applied",
            Answer::Unusable => "unusable",
            Answer::NotFound => "not_found",
            Answer::Invalid => "invalid",
            Answer::Failed => "failed",
        }
    }
}

impl Rest {
    /// The rest, in ms.
    pub const fn ms(self) -> u64 {
        match self {
            Rest::NotFound => 3_000,
            Rest::Silent => 30_000,
            Rest::Invalid => 300_000,
        }
    }
}

/// A connected peer that could be asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// Whether its verified ZSI is in the current validator set.
    pub validator: bool,
    /// Its local reputation score.
    pub score: f64,
}

/// A request the node must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// To whom.
    pub peer: PeerId,
    /// The height of the finalized block to ask for.
    pub height: u64,
}

/// What a response turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The block was applied: our head moved.
    Applied,
    /// A block that verifies but is not the one asked for, or that we could
    /// not use (our head moved meanwhile): no one's fault.
    Unusable,
    /// The peer does not have it.
    NotFound,
    /// A block that fails verification against our head and validator set.
    Invalid,
    /// The request failed (connection closed, timeout in the transport).
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct InFlight<R> {
    request: R,
    peer: PeerId,
    height: u64,
    deadline_ms: u64,
}

/// The catch-up state. `R` is the transport's request id.
#[derive(Debug)]
pub struct CatchUp<R> {
    /// The highest height seen in an authentic message ahead of us.
    target: u64,
    /// Requests whose deadline passed without an answer.
    silent: u64,
    in_flight: Option<InFlight<R>>,
    /// Peer → until when it is not asked.
    resting: HashMap<PeerId, u64>,
}

impl<R> Default for CatchUp<R> {
    fn default() -> Self {
        Self {
            target: 0,
            silent: 0,
            in_flight: None,
            resting: HashMap::new(),
        }
    }
}

impl<R: Copy + PartialEq> CatchUp<R> {
    /// Notes that an authentic message showed block `finalized` to be
    /// finalized (a finalized block at that height, or a vote or proposal
    /// for the height after it).
    pub fn saw(&mut self, finalized: u64) {
        self.target = self.target.max(finalized);
    }

    /// How many requests passed their deadline unanswered so far.
    pub fn silent(&self) -> u64 {
        self.silent
    }

    /// The highest height known finalized elsewhere.
    pub fn target(&self) -> u64 {
        self.target
    }

    /// Whether a request is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The request to send now, if any: when our head (`head`) is below the
    /// target and nothing is in flight (or the request in flight passed its
    /// deadline, whose peer then rests), the best candidate not resting is
    /// asked for the block at `head + 1`. The caller sends it and reports
    /// its id with [`CatchUp::sent`].
    pub fn poll(&mut self, head: u64, candidates: &[Candidate], now_ms: u64) -> Option<Ask> {
        if let Some(in_flight) = &self.in_flight {
            if now_ms < in_flight.deadline_ms {
                return None;
            }
            let peer = in_flight.peer;
            self.in_flight = None;
            self.silent = self.silent.saturating_add(1);
            self.rest(peer, Rest::Silent, now_ms);
        }
        if head >= self.target {
            return None;
        }
        self.resting.retain(|_, until| *until > now_ms);
        let best = candidates
            .iter()
            .filter(|c| !self.resting.contains_key(&c.peer))
            .max_by(|a, b| {
                a.validator
                    .cmp(&b.validator)
                    .then(a.score.partial_cmp(&b.score).unwrap_or(std::cmp::Ordering::Equal))
            })?;
        Some(Ask {
            peer: best.peer,
            height: head.saturating_add(1),
        })
    }

    /// The request for `ask` went out as `request` at `now_ms`.
    pub fn sent(&mut self, ask: Ask, request: R, now_ms: u64) {
        self.in_flight = Some(InFlight {
            request,
            peer: ask.peer,
            height: ask.height,
            deadline_ms: now_ms.saturating_add(REQUEST_TIMEOUT_MS),
        });
    }

    /// The height `request` asked for, if it is the request in flight (an
    /// answer to anything else is dropped).
    pub fn asked(&self, request: R) -> Option<u64> {
        self.in_flight.filter(|f| f.request == request).map(|f| f.height)
    }

    /// The answer to `request`; returns the reputation event for its peer.
    /// Answers to requests not in flight (late, after a rotation) change
    /// nothing.
    pub fn answered(&mut self, request: R, answer: Answer, now_ms: u64) -> Option<PeerEvent> {
        let in_flight = self.in_flight.filter(|f| f.request == request)?;
        self.in_flight = None;
        let peer = in_flight.peer;
        match answer {
            Answer::Applied => Some(PeerEvent::GoodResponse),
            Answer::Unusable => None,
            Answer::NotFound => {
                self.rest(peer, Rest::NotFound, now_ms);
                None
            }
            Answer::Failed => {
                self.rest(peer, Rest::Silent, now_ms);
                None
            }
            Answer::Invalid => {
                self.rest(peer, Rest::Invalid, now_ms);
                Some(PeerEvent::BadResponse)
            }
        }
    }

    fn rest(&mut self, peer: PeerId, rest: Rest, now_ms: u64) {
        if self.resting.len() >= MAX_RESTING && !self.resting.contains_key(&peer) {
            // Forget the one whose rest ends first.
            if let Some(first) = self.resting.iter().min_by_key(|(_, until)| **until).map(|(p, _)| *p) {
                self.resting.remove(&first);
            }
        }
        self.resting.insert(peer, now_ms.saturating_add(rest.ms()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(validator: bool, score: f64) -> Candidate {
        Candidate {
            peer: PeerId::random(),
            validator,
            score,
        }
    }

    #[test]
    fn nothing_to_do_when_not_behind() {
        let mut c = CatchUp::<u32>::default();
        let peers = [candidate(true, 0.0)];
        assert_eq!(c.poll(5, &peers, 0), None);
        c.saw(5);
        assert_eq!(c.poll(5, &peers, 0), None);
        c.saw(7);
        assert_eq!(c.poll(5, &peers, 0).map(|a| a.height), Some(6));
    }

    #[test]
    fn validators_first_then_score() {
        let mut c = CatchUp::<u32>::default();
        c.saw(10);
        let stranger = candidate(false, 50.0);
        let validator = candidate(true, -5.0);
        let ask = c.poll(1, &[stranger, validator], 0).unwrap();
        assert_eq!(ask.peer, validator.peer);
        let other = candidate(false, 1.0);
        let mut c = CatchUp::<u32>::default();
        c.saw(10);
        assert_eq!(c.poll(1, &[other, stranger], 0).unwrap().peer, stranger.peer);
    }

    #[test]
    fn a_silent_peer_holds_catch_up_for_one_timeout_only() {
        // The silent peer is the only validator, so it is asked first.
        let silent = candidate(true, 0.0);
        let honest = candidate(false, 0.0);
        let peers = [silent, honest];
        let mut c = CatchUp::<u32>::default();
        c.saw(3);
        let ask = c.poll(0, &peers, 0).unwrap();
        assert_eq!(ask.peer, silent.peer);
        c.sent(ask, 1, 0);
        assert_eq!(
            c.poll(0, &peers, REQUEST_TIMEOUT_MS - 1),
            None,
            "waits for the deadline"
        );
        let ask = c.poll(0, &peers, REQUEST_TIMEOUT_MS).unwrap();
        assert_eq!(ask.peer, honest.peer, "rotates at the deadline");
        c.sent(ask, 2, REQUEST_TIMEOUT_MS);
        assert_eq!(
            c.answered(1, Answer::Applied, REQUEST_TIMEOUT_MS + 1),
            None,
            "late answer ignored"
        );
        assert_eq!(
            c.answered(2, Answer::Applied, REQUEST_TIMEOUT_MS + 1),
            Some(PeerEvent::GoodResponse)
        );
        // The next block goes to the honest peer again: the silent one rests.
        let ask = c.poll(1, &peers, REQUEST_TIMEOUT_MS + 2).unwrap();
        assert_eq!(ask.peer, honest.peer);
        assert_eq!(ask.height, 2);
    }

    #[test]
    fn an_invalid_answer_costs_the_peer_and_rotates() {
        let liar = candidate(true, 10.0);
        let honest = candidate(true, 0.0);
        let peers = [liar, honest];
        let mut c = CatchUp::<u32>::default();
        c.saw(2);
        let ask = c.poll(0, &peers, 0).unwrap();
        assert_eq!(ask.peer, liar.peer);
        c.sent(ask, 7, 0);
        assert_eq!(c.answered(7, Answer::Invalid, 10), Some(PeerEvent::BadResponse));
        assert_eq!(c.poll(0, &peers, 11).unwrap().peer, honest.peer);
        // A peer that did not have the block is asked again after a short rest.
        let mut c = CatchUp::<u32>::default();
        c.saw(2);
        let ask = c.poll(0, &[honest], 0).unwrap();
        c.sent(ask, 1, 0);
        assert_eq!(c.answered(1, Answer::NotFound, 0), None);
        assert_eq!(c.poll(0, &[honest], 1), None);
        assert!(c.poll(0, &[honest], Rest::NotFound.ms()).is_some());
    }

    #[test]
    fn resting_is_bounded() {
        let mut c = CatchUp::<u32>::default();
        for i in 0..(MAX_RESTING as u64 + 100) {
            c.rest(PeerId::random(), Rest::Silent, i);
        }
        assert!(c.resting.len() <= MAX_RESTING);
    }
}
