//! A compact, bounded binary encoding of a STWO proof
//! (`StarkProof<Blake2sM31MerkleHasher>`).
//!
//! Decoding runs before anything else touches the proof and is cheap:
//! every count is checked against the bytes left before anything is
//! allocated, so a decoder never allocates more than the input's size (times
//! a small constant); field elements must be canonical (`< 2^31 − 1`);
//! trailing bytes are refused. The PCS configuration is not in the
//! encoding: it belongs to the program ([`super::ProgramSpec`]), so a
//! prover cannot pick weaker parameters.
//!
//! Layout (little-endian): `magic "STW1"`, then
//! `commitments: u8 n, n×32 bytes`,
//! `sampled_values: u8 trees, per tree u32 columns, per column u32 n, n×QM31`,
//! `decommitments: u8 trees, per tree u32 n, n×32 bytes`,
//! `queried_values: u8 trees, per tree u32 columns, per column u32 n, n×M31`,
//! `proof_of_work: u64`,
//! `fri: layer (first), u8 n inner layers, n×layer, u32 n, n×QM31 last-layer coefficients`
//! with `layer = u32 n, n×QM31 witness, u32 m, m×32 bytes decommitment, 32 bytes commitment`.

use stwo::core::fields::cm31::CM31;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::QM31;
use stwo::core::fri::{FriLayerProof, FriProof};
use stwo::core::pcs::quotients::CommitmentSchemeProof;
use stwo::core::pcs::{PcsConfig, TreeVec};
use stwo::core::poly::line::LinePoly;
use stwo::core::proof::StarkProof;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sM31MerkleHasher;
use stwo::core::vcs_lifted::verifier::MerkleDecommitmentLifted;

/// The proof type of `stwo/v1` programs.
pub type Proof = StarkProof<Blake2sM31MerkleHasher>;

const MAGIC: &[u8; 4] = b"STW1";
/// Most trees a proof may have (preprocessed, trace, interaction, composition).
pub const MAX_TREES: usize = 4;
/// Most inner FRI layers (one per folded log size; domains are below 2^31).
pub const MAX_FRI_LAYERS: usize = 32;
/// Most last-layer coefficients (STWO's bound is 2^10).
pub const MAX_LAST_LAYER_COEFFS: usize = 1 << 10;

/// Why proof bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than the cap.
    #[error("proof is {len} bytes, above the cap of {cap}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// Does not start with the magic.
    #[error("not a stwo/v1 proof (bad magic)")]
    BadMagic,
    /// Ends early.
    #[error("truncated at byte {at} while reading {what}")]
    Truncated {
        /// Offset.
        at: usize,
        /// Which field.
        what: &'static str,
    },
    /// A count above its bound.
    #[error("{what}: count {count} above {max}")]
    Count {
        /// Which field.
        what: &'static str,
        /// The count.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A field element that is not canonical.
    #[error("{what}: {value} is not a canonical M31 element")]
    NotCanonical {
        /// Which field.
        what: &'static str,
        /// The value.
        value: u32,
    },
    /// Bytes after the proof.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { at: self.at, what })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items of `item_size` bytes each: refused if the items
    /// cannot fit in what is left (so nothing is allocated on a lie).
    fn count(&mut self, item_size: usize, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let count = self.u32(what)? as usize;
        if count > max {
            return Err(DecodeError::Count { what, count, max });
        }
        if count.saturating_mul(item_size) > self.left() {
            return Err(DecodeError::Truncated { at: self.at, what });
        }
        Ok(count)
    }

    fn small_count(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let count = usize::from(self.u8(what)?);
        if count > max {
            return Err(DecodeError::Count { what, count, max });
        }
        Ok(count)
    }

    fn m31(&mut self, what: &'static str) -> Result<M31, DecodeError> {
        let value = self.u32(what)?;
        if !super::posw::is_canonical(value) {
            return Err(DecodeError::NotCanonical { what, value });
        }
        Ok(M31(value))
    }

    fn qm31(&mut self, what: &'static str) -> Result<QM31, DecodeError> {
        let a = self.m31(what)?;
        let b = self.m31(what)?;
        let c = self.m31(what)?;
        let d = self.m31(what)?;
        Ok(QM31(CM31(a, b), CM31(c, d)))
    }

    fn hash(&mut self, what: &'static str) -> Result<Blake2sHash, DecodeError> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32, what)?);
        Ok(Blake2sHash(h))
    }

    fn hashes(&mut self, what: &'static str) -> Result<Vec<Blake2sHash>, DecodeError> {
        let n = self.count(32, usize::MAX, what)?;
        (0..n).map(|_| self.hash(what)).collect()
    }

    fn qm31s(&mut self, max: usize, what: &'static str) -> Result<Vec<QM31>, DecodeError> {
        let n = self.count(16, max, what)?;
        (0..n).map(|_| self.qm31(what)).collect()
    }

    fn layer(&mut self) -> Result<FriLayerProof<Blake2sM31MerkleHasher>, DecodeError> {
        let fri_witness = self.qm31s(usize::MAX, "fri witness")?;
        let hash_witness = self.hashes("fri decommitment")?;
        let commitment = self.hash("fri commitment")?;
        Ok(FriLayerProof {
            fri_witness,
            decommitment: MerkleDecommitmentLifted { hash_witness },
            commitment,
        })
    }
}

/// Decodes proof bytes, refusing anything longer than `cap` before reading.
pub fn decode(bytes: &[u8], cap: usize, config: PcsConfig) -> Result<Proof, DecodeError> {
    if bytes.len() > cap {
        return Err(DecodeError::TooLarge { len: bytes.len(), cap });
    }
    let mut r = Reader { bytes, at: 0 };
    if r.take(4, "magic").map_err(|_| DecodeError::BadMagic)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let n = r.small_count(MAX_TREES, "commitments")?;
    let commitments = (0..n).map(|_| r.hash("commitment")).collect::<Result<Vec<_>, _>>()?;

    let trees = r.small_count(MAX_TREES, "sampled value trees")?;
    let mut sampled_values = Vec::with_capacity(trees);
    for _ in 0..trees {
        let columns = r.count(4, usize::MAX, "sampled columns")?;
        let mut tree = Vec::with_capacity(columns);
        for _ in 0..columns {
            tree.push(r.qm31s(usize::MAX, "sampled values")?);
        }
        sampled_values.push(tree);
    }

    let trees = r.small_count(MAX_TREES, "decommitment trees")?;
    let decommitments = (0..trees)
        .map(|_| {
            r.hashes("decommitment")
                .map(|hash_witness| MerkleDecommitmentLifted { hash_witness })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let trees = r.small_count(MAX_TREES, "queried value trees")?;
    let mut queried_values = Vec::with_capacity(trees);
    for _ in 0..trees {
        let columns = r.count(4, usize::MAX, "queried columns")?;
        let mut tree = Vec::with_capacity(columns);
        for _ in 0..columns {
            let n = r.count(4, usize::MAX, "queried values")?;
            tree.push((0..n).map(|_| r.m31("queried values")).collect::<Result<Vec<_>, _>>()?);
        }
        queried_values.push(tree);
    }

    let proof_of_work = r.u64("proof of work")?;
    let first_layer = r.layer()?;
    let n = r.small_count(MAX_FRI_LAYERS, "fri layers")?;
    let inner_layers = (0..n).map(|_| r.layer()).collect::<Result<Vec<_>, _>>()?;
    let coeffs = r.qm31s(MAX_LAST_LAYER_COEFFS, "last layer")?;
    if !coeffs.len().is_power_of_two() {
        return Err(DecodeError::Count {
            what: "last layer (a power of two)",
            count: coeffs.len(),
            max: MAX_LAST_LAYER_COEFFS,
        });
    }
    if r.left() != 0 {
        return Err(DecodeError::Trailing(r.left()));
    }
    Ok(StarkProof(CommitmentSchemeProof {
        config,
        commitments: TreeVec(commitments),
        sampled_values: TreeVec(sampled_values),
        decommitments: TreeVec(decommitments),
        queried_values: TreeVec(queried_values),
        proof_of_work,
        fri_proof: FriProof {
            first_layer,
            inner_layers,
            last_layer_poly: LinePoly::new(coeffs),
        },
    }))
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_qm31(out: &mut Vec<u8>, v: &QM31) {
    for m in [v.0.0, v.0.1, v.1.0, v.1.1] {
        out.extend_from_slice(&m.0.to_le_bytes());
    }
}

fn put_qm31s(out: &mut Vec<u8>, v: &[QM31]) {
    put_u32(out, v.len());
    v.iter().for_each(|x| put_qm31(out, x));
}

fn put_hashes(out: &mut Vec<u8>, v: &[Blake2sHash]) {
    put_u32(out, v.len());
    v.iter().for_each(|h| out.extend_from_slice(&h.0));
}

fn put_layer(out: &mut Vec<u8>, layer: &FriLayerProof<Blake2sM31MerkleHasher>) {
    put_qm31s(out, &layer.fri_witness);
    put_hashes(out, &layer.decommitment.hash_witness);
    out.extend_from_slice(&layer.commitment.0);
}

fn put_small(out: &mut Vec<u8>, n: usize) {
    out.push(u8::try_from(n).unwrap_or(u8::MAX));
}

/// Encodes a proof (the prover side; [`decode`] reads it back).
pub fn encode(proof: &Proof) -> Vec<u8> {
    let p = &proof.0;
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(MAGIC);
    put_small(&mut out, p.commitments.len());
    p.commitments.iter().for_each(|h| out.extend_from_slice(&h.0));
    put_small(&mut out, p.sampled_values.len());
    for tree in p.sampled_values.iter() {
        put_u32(&mut out, tree.len());
        tree.iter().for_each(|col| put_qm31s(&mut out, col));
    }
    put_small(&mut out, p.decommitments.len());
    p.decommitments
        .iter()
        .for_each(|d| put_hashes(&mut out, &d.hash_witness));
    put_small(&mut out, p.queried_values.len());
    for tree in p.queried_values.iter() {
        put_u32(&mut out, tree.len());
        for col in tree {
            put_u32(&mut out, col.len());
            col.iter().for_each(|m| out.extend_from_slice(&m.0.to_le_bytes()));
        }
    }
    out.extend_from_slice(&p.proof_of_work.to_le_bytes());
    put_layer(&mut out, &p.fri_proof.first_layer);
    put_small(&mut out, p.fri_proof.inner_layers.len());
    p.fri_proof.inner_layers.iter().for_each(|l| put_layer(&mut out, l));
    put_qm31s(&mut out, &p.fri_proof.last_layer_poly);
    out
}
