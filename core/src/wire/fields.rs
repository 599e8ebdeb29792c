//! Reading fixed-length fields: the one place where a `bytes` field of a
//! wire message becomes a [`Hash32`] (or a [`crate::identity::ZsiId`]).
//!
//! Every rulebook in the crate (block rules, the light-client verifier, the
//! ledger, certificate checks, state proofs) parses its 32-byte fields
//! here, so a field that is not 32 bytes fails in the same way everywhere.
//! [`hash_in`] gives the schema error naming the field (`header.prev_hash`);
//! [`hash32`] gives the bare [`WrongLength`] for modules whose error type
//! records a length of its own (`CertificateError::MalformedBlockHash`,
//! `state::Malformed::HashLength`).

use crate::hash::Hash32;
use crate::wire::{FieldError, FieldProblem};

/// Bytes of every hash and id field.
pub const HASH_LEN: usize = 32;

/// A hash field of another length than [`HASH_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongLength {
    /// The length found.
    pub actual: usize,
}

impl WrongLength {
    /// The schema error for the field at `path` (e.g. `commit.block_hash`).
    pub fn at(self, path: &str) -> FieldError {
        FieldError::new(
            path,
            FieldProblem::WrongLength {
                expected: HASH_LEN,
                actual: self.actual,
            },
        )
    }
}

/// `bytes` as a hash, or how long they are when they are not one.
pub fn hash32(bytes: &[u8]) -> Result<Hash32, WrongLength> {
    Hash32::from_slice(bytes).ok_or(WrongLength { actual: bytes.len() })
}

/// The hash field `field` of the message at `parent` (`header`, `parent`):
/// on a wrong length, the schema error naming `parent.field`.
pub fn hash_in(parent: &str, field: &str, bytes: &[u8]) -> Result<Hash32, FieldError> {
    hash32(bytes).map_err(|e| e.at(field).within(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_whole_path() {
        assert_eq!(hash_in("header", "prev_hash", &[7; 32]), Ok(Hash32([7; 32])));
        let e = hash_in("header", "prev_hash", &[7; 31]).unwrap_err();
        assert_eq!(e.path, "header.prev_hash");
        assert_eq!(
            e.problem,
            FieldProblem::WrongLength {
                expected: 32,
                actual: 31
            }
        );
        assert_eq!(hash32(&[]), Err(WrongLength { actual: 0 }));
        assert_eq!(
            WrongLength { actual: 3 }.at("commit.block_hash").path,
            "commit.block_hash"
        );
    }
}
