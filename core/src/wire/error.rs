use std::fmt;

/// Why bytes from the network or a file could not become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the message's cap; nothing was decoded.
    #[error("{message} of {len} bytes is over its {max}-byte cap")]
    TooLarge {
        /// Message type.
        message: &'static str,
        /// Input length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The bytes are not valid protobuf for the message.
    #[error("{message} is not valid protobuf: {reason}")]
    Malformed {
        /// Message type.
        message: &'static str,
        /// What prost reported.
        reason: String,
    },
    /// The protobuf parsed but a field breaks the schema's rules.
    #[error("{message}: {error}")]
    Invalid {
        /// Message type.
        message: &'static str,
        /// The offending field.
        error: FieldError,
    },
    /// The bytes decode, but are not the message's one canonical encoding
    /// (unknown fields, non-minimal varints, fields out of order, default
    /// values written out, unpacked repeated scalars, trailing bytes).
    /// Accepting them would let anyone re-mint an old message under a new
    /// content-addressed id.
    #[error("{message} of {len} bytes is not canonically encoded (the canonical encoding has {canonical_len} bytes)")]
    NonCanonical {
        /// Message type.
        message: &'static str,
        /// Input length.
        len: usize,
        /// Length of the canonical encoding of what was decoded.
        canonical_len: usize,
    },
}

/// A field that breaks the schema's rules, with its path (`block.header.prev_hash`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{path}` {problem}")]
pub struct FieldError {
    /// Dotted path from the top message to the field (`[i]` for list items).
    pub path: String,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &str, problem: FieldProblem) -> Self {
        Self {
            path: field.to_owned(),
            problem,
        }
    }

    /// Prefixes the path with the enclosing field: `header` + `prev_hash` → `header.prev_hash`.
    pub fn within(mut self, parent: &str) -> Self {
        self.path = if self.path.starts_with('[') {
            format!("{parent}{}", self.path)
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A fixed-length byte field has another length.
    WrongLength {
        /// The required length (or one of them).
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A byte or string field is too long.
    TooLong {
        /// The limit.
        max: usize,
        /// The length found.
        actual: usize,
    },
    /// A repeated field has too many items.
    TooMany {
        /// The limit.
        max: usize,
        /// The count found.
        actual: usize,
    },
    /// A required sub-message or `oneof` is absent.
    Missing,
    /// An enum holds a value this version does not know, or the unspecified value.
    BadEnum(i32),
    /// Any other rule, stated in words.
    Rule(&'static str),
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::WrongLength { expected, actual } => {
                write!(f, "has {actual} bytes, expected {expected}")
            }
            FieldProblem::TooLong { max, actual } => write!(f, "is {actual} long, over the limit of {max}"),
            FieldProblem::TooMany { max, actual } => write!(f, "has {actual} items, over the limit of {max}"),
            FieldProblem::Missing => f.write_str("is missing"),
            FieldProblem::BadEnum(v) => write!(f, "has unknown or unspecified enum value {v}"),
            FieldProblem::Rule(rule) => f.write_str(rule),
        }
    }
}
