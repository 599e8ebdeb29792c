//! Batch Ed25519 verification against a validator set's precomputed keys.
//!
//! [`verify_batch`] returns exactly what `ed25519_dalek::verify_batch`
//! (ed25519-dalek 2.2, `src/batch.rs`) returns for the same messages,
//! signatures and keys: the same transcript (merlin, `"ed25519 batch
//! verification"`, every `H(R ‖ A ‖ M)` as `"hram"`, then every `s` as
//! `"sig.s"`), the same 128-bit coefficients `z_i` drawn from it, the same
//! refusal of a non-canonical `s` and of an `R` that does not decompress,
//! and the same equation, checked without the cofactor:
//!
//! ```text
//! −(∑ z_i·s_i)·B + ∑ z_i·R_i + ∑ (z_i·H(R_i ‖ A_i ‖ M_i))·A_i = identity
//! ```
//!
//! Only the multiscalar multiplication differs. `B` and the keys `A_j` of
//! the whole set are fixed, so their multiples are tabulated once per set
//! ([`KeyTable`], curve25519-dalek's `VartimeEdwardsPrecomputation`, width-8
//! NAF tables) and the `R_i` are the only points tabulated per call; a key
//! that signs twice (a round certificate's two votes) gets the sum of its
//! coefficients. The sum is the same group element either way, so the
//! verdict is too (the tests compare both on valid and forged input).
//!
//! A table costs 64 inversions per key to build (for 100 keys, 1–5 ms
//! natively and 25–50 ms in wasm, by machine load) and about 7.5 KB per
//! key, so a
//! [`ValidatorSet`](super::ValidatorSet) builds it only on the second
//! verification for a trusted state (see
//! [`ValidatorSet::note_trusted_use`](super::ValidatorSet::note_trusted_use)):
//! a set that signs one chain-proof step never pays for it.

use std::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimePrecomputedMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use merlin::Transcript;
use sha2::{Digest, Sha512};

/// The precomputed multiples of the basepoint and of every key of a set,
/// in the set's canonical order (position `j` is static point `j + 1`).
pub(crate) struct KeyTable {
    keys: usize,
    table: VartimeEdwardsPrecomputation,
}

impl KeyTable {
    /// Tabulates `B` and `keys`; `None` if a key does not decompress (a
    /// checked set's keys always do).
    pub(crate) fn new(keys: &[VerifyingKey]) -> Option<Self> {
        let points = keys
            .iter()
            .map(|key| CompressedEdwardsY(key.to_bytes()).decompress())
            .collect::<Option<Vec<EdwardsPoint>>>()?;
        Some(Self {
            keys: points.len(),
            table: VartimeEdwardsPrecomputation::new(once(ED25519_BASEPOINT_POINT).chain(points)),
        })
    }
}

/// One signature of a batch: by the key at `position` of the tabulated set.
pub(crate) struct BatchItem<'a> {
    /// The signer's position in the set (its key's row of the table).
    pub(crate) position: usize,
    /// The signer's key; must be the set's key at `position`.
    pub(crate) key: &'a VerifyingKey,
    /// The signed message.
    pub(crate) message: &'a [u8],
    /// The signature.
    pub(crate) signature: &'a Signature,
}

/// ed25519-dalek's `ZeroRng`: merlin's transcript RNG wants an outside RNG;
/// this one adds nothing, so the coefficients depend on the inputs only.
struct ZeroRng;

impl rand_core::RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, _dest: &mut [u8]) {}

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for ZeroRng {}

fn gen_u128<R: rand_core::RngCore>(rng: &mut R) -> u128 {
    let mut buf = [0u8; 16];
    rng.fill_bytes(&mut buf);
    u128::from_le_bytes(buf)
}

/// `ed25519_dalek::verify_batch(messages, signatures, keys).is_ok()` for
/// `items`, computed with `table`. False as well if an item's position is
/// outside the table (a caller's bug, never a forgery that passes).
pub(crate) fn verify_batch(table: &KeyTable, items: &[BatchItem<'_>]) -> bool {
    let mut transcript = Transcript::new(b"ed25519 batch verification");
    let hrams: Vec<[u8; 64]> = items
        .iter()
        .map(|item| {
            let mut h = Sha512::default();
            h.update(item.signature.r_bytes());
            h.update(item.key.as_bytes());
            h.update(item.message);
            let digest = h.finalize();
            let hram: &[u8; 64] = digest.as_ref();
            *hram
        })
        .collect();
    for hram in &hrams {
        transcript.append_message(b"hram", hram);
    }
    for item in items {
        transcript.append_message(b"sig.s", item.signature.s_bytes());
    }
    let mut rng = transcript.build_rng().finalize(&mut ZeroRng);

    // `s` must be canonical (< ℓ), as in ed25519-dalek's `InternalSignature`.
    let Some(s) = items
        .iter()
        .map(|item| Option::<Scalar>::from(Scalar::from_canonical_bytes(*item.signature.s_bytes())))
        .collect::<Option<Vec<Scalar>>>()
    else {
        return false;
    };
    let zs: Vec<Scalar> = items.iter().map(|_| Scalar::from(gen_u128(&mut rng))).collect();
    let b_coefficient: Scalar = s.iter().zip(&zs).map(|(s, z)| z * s).sum();

    let mut static_scalars = vec![Scalar::ZERO; table.keys + 1];
    if let Some(b) = static_scalars.first_mut() {
        *b = -b_coefficient;
    }
    for ((item, hram), z) in items.iter().zip(&hrams).zip(&zs) {
        let Some(slot) = static_scalars.get_mut(item.position + 1) else {
            return false;
        };
        *slot += Scalar::from_bytes_mod_order_wide(hram) * z;
    }
    let rs = items
        .iter()
        .map(|item| CompressedEdwardsY(*item.signature.r_bytes()).decompress());
    table
        .table
        .optional_mixed_multiscalar_mul(static_scalars, &zs, rs)
        .is_some_and(|sum| sum.is_identity())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const N: usize = 12;

    fn keys() -> Vec<SigningKey> {
        (1..=N as u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
    }

    /// A small deterministic generator for the cases.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// ℓ, the order of the basepoint, little-endian.
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// `s + ℓ`: the same equation, a non-canonical encoding.
    fn stretch(signature: &Signature) -> Signature {
        let mut bytes = signature.to_bytes();
        let mut carry = 0u16;
        for (byte, ell) in bytes[32..].iter_mut().zip(ELL) {
            let sum = u16::from(*byte) + u16::from(ell) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        Signature::from_bytes(&bytes)
    }

    /// The encoding of a point of order 2 (`(0, −1)`), of the identity
    /// (canonical, or as `y = 1 + p`), and a `y` that is on no point.
    fn odd_r(kind: usize, signature: &Signature) -> Signature {
        let mut bytes = signature.to_bytes();
        let mut r = [0u8; 32];
        match kind {
            0 => {
                r = [0xff; 32];
                r[0] = 0xec;
                r[31] = 0x7f;
            }
            1 => r[0] = 1,
            // y = 1 + p: the identity, non-canonically encoded.
            3 => {
                r = [0xff; 32];
                r[0] = 0xee;
                r[31] = 0x7f;
            }
            _ => r[0] = 2,
        }
        bytes[..32].copy_from_slice(&r);
        Signature::from_bytes(&bytes)
    }

    struct Case {
        positions: Vec<usize>,
        messages: Vec<Vec<u8>>,
        signatures: Vec<Signature>,
    }

    fn dalek(case: &Case, verifying: &[VerifyingKey]) -> bool {
        let messages: Vec<&[u8]> = case.messages.iter().map(Vec::as_slice).collect();
        let keys: Vec<VerifyingKey> = case.positions.iter().map(|&p| verifying[p]).collect();
        ed25519_dalek::verify_batch(&messages, &case.signatures, &keys).is_ok()
    }

    fn ours(case: &Case, verifying: &[VerifyingKey], table: &KeyTable) -> bool {
        let items: Vec<BatchItem<'_>> = case
            .positions
            .iter()
            .zip(&case.messages)
            .zip(&case.signatures)
            .map(|((&position, message), signature)| BatchItem {
                position,
                key: &verifying[position],
                message,
                signature,
            })
            .collect();
        verify_batch(table, &items)
    }

    /// A batch of `len` genuine signatures by keys at random positions
    /// (repeats allowed: a key may sign two messages).
    fn genuine(rng: &mut Lcg, signing: &[SigningKey], len: usize) -> Case {
        let positions: Vec<usize> = (0..len).map(|_| rng.below(signing.len())).collect();
        let messages: Vec<Vec<u8>> = (0..len)
            .map(|i| format!("vote {i} {}", rng.next()).into_bytes())
            .collect();
        let signatures = positions
            .iter()
            .zip(&messages)
            .map(|(&p, m)| signing[p].sign(m))
            .collect();
        Case {
            positions,
            messages,
            signatures,
        }
    }

    #[test]
    fn the_same_verdict_as_ed25519_dalek_on_genuine_and_forged_batches() {
        let signing = keys();
        let verifying: Vec<VerifyingKey> = signing.iter().map(SigningKey::verifying_key).collect();
        let table = KeyTable::new(&verifying).unwrap();
        let mut rng = Lcg(7);
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..240 {
            let len = 1 + rng.below(2 * N);
            let mut case = genuine(&mut rng, &signing, len);
            let victim = rng.below(len);
            match round % 12 {
                0 | 1 => {}
                // A flipped bit anywhere in the signature.
                2 => {
                    let mut bytes = case.signatures[victim].to_bytes();
                    let bit = rng.below(512);
                    bytes[bit / 8] ^= 1 << (bit % 8);
                    case.signatures[victim] = Signature::from_bytes(&bytes);
                }
                // Another message.
                3 => case.messages[victim].push(b'!'),
                // Signed by another key of the set, or one outside it.
                4 => {
                    let other = (case.positions[victim] + 1 + rng.below(N - 1)) % N;
                    case.signatures[victim] = signing[other].sign(&case.messages[victim]);
                }
                5 => case.signatures[victim] = SigningKey::from_bytes(&[0xee; 32]).sign(&case.messages[victim]),
                // The same signature, s + ℓ.
                6 => case.signatures[victim] = stretch(&case.signatures[victim]),
                // R of order 2, the identity, off the curve.
                7..=9 => case.signatures[victim] = odd_r(round % 12 - 7, &case.signatures[victim]),
                // Two signatures swapped between their messages.
                10 if len > 1 => {
                    let other = (victim + 1) % len;
                    case.signatures.swap(victim, other);
                }
                // All zero, or R the identity encoded as y = 1 + p.
                _ if round % 24 == 11 => case.signatures[victim] = Signature::from_bytes(&[0; 64]),
                _ => case.signatures[victim] = odd_r(3, &case.signatures[victim]),
            }
            let expected = dalek(&case, &verifying);
            assert_eq!(ours(&case, &verifying, &table), expected, "round {round}");
            if expected {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both verdicts were exercised (the genuine rounds, and every kind
        // of forgery).
        assert!(
            accepted >= 40 && refused >= 150,
            "{accepted} accepted, {refused} refused"
        );
    }

    /// A signature the key holder made with a nonce point `R + T`, `T` of
    /// order 2, hashing `R + T` as it should: `[s]B = (R + T) − T + [k]A`,
    /// so only the cofactored equation (`[8]·…`) holds.
    fn mixed_order_nonce(signing: &SigningKey, message: &[u8]) -> Signature {
        let a = Scalar::from_bytes_mod_order(signing.to_scalar().to_bytes());
        let r = Scalar::from_bytes_mod_order_wide(&[0x5a; 64]);
        let t = CompressedEdwardsY(*odd_r(0, &Signature::from_bytes(&[0; 64])).r_bytes())
            .decompress()
            .unwrap();
        let nonce = (r * ED25519_BASEPOINT_POINT + t).compress();
        let mut h = Sha512::default();
        h.update(nonce.as_bytes());
        h.update(signing.verifying_key().as_bytes());
        h.update(message);
        let digest = h.finalize();
        let k = Scalar::from_bytes_mod_order_wide(digest.as_ref());
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(nonce.as_bytes());
        bytes[32..].copy_from_slice((r + k * a).as_bytes());
        Signature::from_bytes(&bytes)
    }

    #[test]
    fn a_nonce_with_a_small_order_component_is_judged_as_by_ed25519_dalek() {
        // In a batch, the victim's term is z·(−T): the identity when its
        // coefficient z is even. So ed25519-dalek's batch accepts such a
        // signature about half of the time (the module docs of
        // `chain::quorum`: it only ever counts its own signer's power), and
        // `verify_strict` never does. A cofactored equation would accept it
        // every time: the refused cases tell the two apart.
        let signing = keys();
        let verifying: Vec<VerifyingKey> = signing.iter().map(SigningKey::verifying_key).collect();
        let table = KeyTable::new(&verifying).unwrap();
        let mut rng = Lcg(11);
        let mut refused = 0;
        for round in 0..16 {
            let mut case = genuine(&mut rng, &signing, 5);
            let victim = round % 5;
            let signer = &signing[case.positions[victim]];
            case.signatures[victim] = mixed_order_nonce(signer, &case.messages[victim]);
            let a = verifying[case.positions[victim]];
            assert!(
                a.verify_strict(&case.messages[victim], &case.signatures[victim])
                    .is_err()
            );
            let verdict = dalek(&case, &verifying);
            assert_eq!(ours(&case, &verifying, &table), verdict, "round {round}");
            if !verdict {
                refused += 1;
            }
        }
        assert!((1..16).contains(&refused), "{refused} of 16 refused");
    }

    #[test]
    fn a_position_outside_the_table_is_refused() {
        let signing = keys();
        let verifying: Vec<VerifyingKey> = signing.iter().map(SigningKey::verifying_key).collect();
        let table = KeyTable::new(&verifying[..3]).unwrap();
        let mut rng = Lcg(3);
        let mut case = genuine(&mut rng, &signing[..3], 4);
        assert!(ours(&case, &verifying, &table));
        case.positions[1] = 3;
        case.signatures[1] = signing[3].sign(&case.messages[1]);
        assert!(dalek(&case, &verifying));
        assert!(!ours(&case, &verifying, &table));
    }

    #[test]
    fn an_empty_batch_is_valid_as_in_ed25519_dalek() {
        let verifying: Vec<VerifyingKey> = keys().iter().map(SigningKey::verifying_key).collect();
        let table = KeyTable::new(&verifying).unwrap();
        let case = Case {
            positions: vec![],
            messages: vec![],
            signatures: vec![],
        };
        assert_eq!(ours(&case, &verifying, &table), dalek(&case, &verifying));
    }
}
