//! Secret key files: a text format with a comment header and one tagged
//! line per secret, written with mode 0600 and never overwritten.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Whether a key was loaded from its file or created because none existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The file existed and parsed.
    Loaded,
    /// No file existed; a new key was generated and written.
    Created,
}

/// A key file that could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists but could not be read.
    #[error("cannot read key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file exists but is not a valid key file. It was left untouched.
    #[error(
        "key file {path} is not a valid {kind} key file ({reason}); it was left untouched — restore it or move it away to create a new key"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which key file kind was expected.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A new key file could not be written.
    #[error("cannot write key file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Why the contents of a key file do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Finds the hex secret on the line `"<magic> <label> <hex>"`; every
/// non-comment line must be one of `labels`, each exactly once.
pub(crate) fn parse_secrets<const N: usize>(
    contents: &str,
    magic: &str,
    labels: [&str; N],
) -> Result<[Zeroizing<[u8; 32]>; N], ParseError> {
    let mut found: [Option<Zeroizing<[u8; 32]>>; N] = std::array::from_fn(|_| None);
    for (number, line) in contents.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(m), Some(label), Some(hex), None) = (words.next(), words.next(), words.next(), words.next()) else {
            return Err(ParseError(format!(
                "line {} is not `{magic} <label> <hex>`",
                number + 1
            )));
        };
        if m != magic {
            return Err(ParseError(format!("line {} does not start with `{magic}`", number + 1)));
        }
        let Some(slot) = labels.iter().position(|l| *l == label) else {
            return Err(ParseError(format!("line {}: unknown label `{label}`", number + 1)));
        };
        if found[slot].is_some() {
            return Err(ParseError(format!("line {}: `{label}` appears twice", number + 1)));
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex, secret.as_mut())
            .map_err(|_| ParseError(format!("line {}: `{label}` is not 64 hex digits", number + 1)))?;
        found[slot] = Some(secret);
    }
    let mut out: [Zeroizing<[u8; 32]>; N] = std::array::from_fn(|_| Zeroizing::new([0u8; 32]));
    for (i, slot) in found.into_iter().enumerate() {
        out[i] = slot.ok_or_else(|| ParseError(format!("no `{}` line", labels[i])))?;
    }
    Ok(out)
}

/// Formats secrets in the key file format.
pub(crate) fn format_secrets(header: &str, magic: &str, secrets: &[(&str, &[u8; 32])]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (label, secret) in secrets {
        out.push_str(&format!("{magic} {label} {}\n", hex::encode(secret)));
    }
    out
}

/// Reads a key file; `Ok(None)` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Zeroizing<String>>, KeyFileError> {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| KeyFileError::Corrupt {
                path: path.to_owned(),
                kind: "tiernet",
                reason: "it is not UTF-8 text".into(),
            })?;
            Ok(Some(Zeroizing::new(text)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a new key file with mode 0600: to a temporary file first, fsynced,
/// then renamed into place, so a crash never leaves a half-written key.
pub(crate) fn write_new(path: &Path, contents: &str) -> Result<(), KeyFileError> {
    let err = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    {
        // Closed at the end of this block, before the rename.
        let mut file = options.open(&tmp).map_err(err)?;
        file.write_all(contents.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    if path.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a key file appeared meanwhile",
        )));
    }
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename durable; not every platform can open a directory.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_every_malformation() {
        let good = format!("# c\nmagic a {}\nmagic b {}\n", "11".repeat(32), "22".repeat(32));
        let [a, b] = parse_secrets(&good, "magic", ["a", "b"]).unwrap();
        assert_eq!(*a, [0x11; 32]);
        assert_eq!(*b, [0x22; 32]);
        let bad = [
            String::new(),
            format!("magic a {}", "11".repeat(32)),
            format!("magic a {}\nmagic a {}", "11".repeat(32), "11".repeat(32)),
            format!("other a {}\nmagic b {}", "11".repeat(32), "22".repeat(32)),
            format!("magic a {}\nmagic b {}", "1".repeat(63), "22".repeat(32)),
            format!("magic a {}\nmagic c {}", "11".repeat(32), "22".repeat(32)),
            format!("magic a {} x\nmagic b {}", "11".repeat(32), "22".repeat(32)),
        ];
        for input in bad {
            assert!(parse_secrets(&input, "magic", ["a", "b"]).is_err(), "{input:?}");
        }
    }
}
