//! Length-prefixed framing for request-response streams: an unsigned LEB128
//! varint length, then that many bytes. The decoder is a sans-IO state
//! machine fed one byte at a time, so the IO side never allocates before
//! the length is known to be under the cap.

/// Longest varint accepted (enough for any `u64`).
const MAX_VARINT_BYTES: usize = 10;

/// A length prefix that is malformed or over the cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced length is over the cap for this stream.
    #[error("frame of {len} bytes announced, over the {max}-byte cap")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The varint runs past 10 bytes.
    #[error("frame length prefix is not a valid varint")]
    BadVarint,
}

/// The length prefix for a payload of `len` bytes.
pub fn length_prefix(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_VARINT_BYTES);
    let mut value = len as u64;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `length_prefix(payload.len()) ‖ payload`.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = length_prefix(payload.len());
    out.extend_from_slice(payload);
    out
}

/// Decodes a length prefix one byte at a time.
#[derive(Debug, Clone)]
pub struct LengthDecoder {
    max: usize,
    value: u64,
    bytes: usize,
}

impl LengthDecoder {
    /// A decoder that refuses lengths over `max`.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            value: 0,
            bytes: 0,
        }
    }

    /// Feeds the next byte; `Ok(Some(len))` when the prefix is complete.
    pub fn push(&mut self, byte: u8) -> Result<Option<usize>, FrameError> {
        if self.bytes >= MAX_VARINT_BYTES {
            return Err(FrameError::BadVarint);
        }
        let shift = 7 * self.bytes as u32;
        let part = u64::from(byte & 0x7f);
        if shift == 63 && part > 1 {
            return Err(FrameError::BadVarint);
        }
        self.value |= part << shift;
        self.bytes += 1;
        if byte & 0x80 != 0 {
            return Ok(None);
        }
        if self.value > self.max as u64 {
            return Err(FrameError::TooLarge {
                len: self.value,
                max: self.max,
            });
        }
        // The cap is a usize, so the value fits one.
        Ok(Some(self.value as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
        let mut decoder = LengthDecoder::new(max);
        for &b in bytes {
            if let Some(len) = decoder.push(b)? {
                return Ok(Some(len));
            }
        }
        Ok(None)
    }

    #[test]
    fn round_trip_lengths() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 8 * 1024 * 1024] {
            assert_eq!(decode(&length_prefix(len), usize::MAX), Ok(Some(len)), "{len}");
        }
        assert_eq!(encode_frame(b"abc"), vec![3, b'a', b'b', b'c']);
    }

    #[test]
    fn caps_and_malformed_prefixes() {
        assert_eq!(
            decode(&length_prefix(1025), 1024),
            Err(FrameError::TooLarge { len: 1025, max: 1024 })
        );
        assert_eq!(decode(&[0x80; 11], usize::MAX), Err(FrameError::BadVarint));
        assert_eq!(decode(&[0x80, 0x80], 10), Ok(None));
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(decode(&overflow, usize::MAX), Err(FrameError::BadVarint));
    }
}
