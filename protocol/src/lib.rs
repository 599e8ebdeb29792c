//! Request-response framing for tiernet's protocols: each message is one
//! length-prefixed protobuf frame (see `tiernet_core::wire::frame`), capped
//! per message type before anything is allocated, and decoded with
//! `tiernet_core::wire::decode`, so a malformed or oversized message is a
//! typed error and never a panic.
//!
//! Reading a frame allocates as its bytes arrive, not what its prefix
//! announces: the buffer starts at [`INITIAL_FRAME_BUFFER`] and doubles with
//! the data received, so a peer that announces an 8 MiB response and then
//! stalls holds a few KiB of the reader's memory, not 8 MiB.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use tiernet_core::wire::frame::{LengthDecoder, encode_frame};
use tiernet_core::wire::{WireMessage, decode, encode, proto};

/// `/tiernet/handshake/1`: Hello ↔ HandshakeResponse.
pub const HANDSHAKE_PROTOCOL: StreamProtocol = StreamProtocol::new("/tiernet/handshake/1");

/// `/tiernet/sync/1`: SyncRequest ↔ SyncResponse.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/tiernet/sync/1");

/// Bytes a frame's buffer starts with (or the frame's length, if smaller);
/// after that it grows by what has arrived so far (doubling), never past
/// the announced length. A peer that announces a large frame and then
/// sends little or nothing therefore costs at most this much, or twice
/// what it actually sent — not the announced length, not the cap.
pub const INITIAL_FRAME_BUFFER: usize = 8 * 1024;

/// Reads one frame of at most `max` bytes.
///
/// The length prefix is checked against `max` before anything is allocated,
/// and the payload buffer grows as bytes arrive (see
/// [`INITIAL_FRAME_BUFFER`]): each byte is zeroed once and read in place.
/// A stream that ends early is [`io::ErrorKind::UnexpectedEof`].
pub async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut decoder = LengthDecoder::new(max);
    let mut byte = [0u8; 1];
    let len = loop {
        io.read_exact(&mut byte).await?;
        if let Some(len) = decoder
            .push(byte[0])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            break len;
        }
    };
    let mut payload = Vec::new();
    let mut filled = 0;
    while filled < len {
        if filled == payload.len() {
            let grow = filled.max(INITIAL_FRAME_BUFFER).min(len - filled);
            payload.reserve_exact(grow);
            payload.resize(filled + grow, 0);
        }
        match io.read(&mut payload[filled..]).await {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended after {filled} of the {len} bytes its frame announced"),
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(payload)
}

/// Reads and decodes one message.
pub async fn read_message<M: WireMessage, T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<M> {
    let bytes = read_frame(io, M::MAX_SIZE).await?;
    decode::<M>(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Encodes and writes one message, then closes the write side.
pub async fn write_message<M: WireMessage, T: AsyncWrite + Unpin + Send>(io: &mut T, message: &M) -> io::Result<()> {
    let bytes = encode(message);
    if bytes.len() > M::MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} of {} bytes is over its {}-byte cap",
                M::NAME,
                bytes.len(),
                M::MAX_SIZE
            ),
        ));
    }
    io.write_all(&encode_frame(&bytes)).await?;
    io.close().await
}

/// A request-response codec for one request and one response message type.
pub struct ProtoCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for ProtoCodec<Req, Resp> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req, Resp> Clone for ProtoCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<Req, Resp> request_response::Codec for ProtoCodec<Req, Resp>
where
    Req: WireMessage + Send,
    Resp: WireMessage + Send,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req> {
        read_message(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp> {
        read_message(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Req,
    ) -> io::Result<()> {
        write_message(io, &request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()> {
        write_message(io, &response).await
    }
}

/// The handshake codec.
pub type HandshakeCodec = ProtoCodec<proto::Hello, proto::HandshakeResponse>;

/// The sync codec.
pub type SyncCodec = ProtoCodec<proto::SyncRequest, proto::SyncResponse>;

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[tokio::test]
    async fn messages_round_trip_through_frames() {
        let hello = proto::Hello {
            network_id: "devnet".into(),
            epoch: 3,
            agent: "t".into(),
            ..Default::default()
        };
        let mut buffer = Cursor::new(Vec::new());
        write_message(&mut buffer, &hello).await.unwrap();
        let mut reader = Cursor::new(buffer.into_inner());
        let back: proto::Hello = read_message(&mut reader).await.unwrap();
        assert_eq!(back, hello);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_reading_it() {
        let mut frame = tiernet_core::wire::frame::length_prefix(proto::Hello::MAX_SIZE + 1);
        frame.extend_from_slice(&[0u8; 16]);
        let err = read_message::<proto::Hello, _>(&mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("cap"), "{err}");
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        let frame = encode_frame(&[0xff, 0xff, 0xff]);
        let err = read_message::<proto::Hello, _>(&mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let truncated = read_message::<proto::Hello, _>(&mut Cursor::new(vec![10, 1, 2]))
            .await
            .unwrap_err();
        assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Hands out its bytes at most `step` at a time.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[tokio::test]
    async fn frames_larger_than_the_first_buffer_arrive_whole_in_any_pieces() {
        for (len, step) in [
            (0, 1),
            (1, 1),
            (INITIAL_FRAME_BUFFER, 7),
            (INITIAL_FRAME_BUFFER + 1, 4096),
            (5 * INITIAL_FRAME_BUFFER + 3, 1000),
            (300_000, 65_536),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut reader = Trickle {
                data: encode_frame(&payload),
                at: 0,
                step,
            };
            let back = read_frame(&mut reader, len.max(1)).await.unwrap();
            assert_eq!(back, payload, "{len} bytes in pieces of {step}");
            // Growth never runs past the announced length.
            assert!(
                back.capacity() <= len.max(INITIAL_FRAME_BUFFER),
                "{len}: {}",
                back.capacity()
            );
        }
    }

    #[tokio::test]
    async fn a_frame_cut_short_says_how_much_arrived() {
        let mut frame = tiernet_core::wire::frame::length_prefix(20_000);
        frame.extend_from_slice(&[1u8; 10]);
        let err = read_frame(
            &mut Trickle {
                data: frame,
                at: 0,
                step: 3,
            },
            1 << 20,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("after 10 of the 20000 bytes"), "{err}");
    }
}
