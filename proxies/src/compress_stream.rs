//! `SnappyStream`: frp's per-proxy compression (snappy framing format) as a tokio stream wrapper.
//!
//! frp's `libio.WithCompression` (golib v0.5.1 `io/io.go`) uses github.com/golang/snappy v0.0.4's
//! *unbuffered* `snappy.NewWriter` and `snappy.NewReader`:
//!
//! * writer (`encode.go`, `Writer.write`): the stream identifier chunk `ff 06 00 00 "sNaPpY"` in
//!   front of the first chunk; then each `Write` becomes chunks of at most 65536 input bytes,
//!   each compressed (type `0x00`) unless the compressed block is `>= n - n/8` bytes, in which
//!   case it is stored (type `0x01`). Chunk header: type, 3-byte LE length (4 + body), 4-byte
//!   LE masked CRC-32C of the uncompressed bytes. Nothing is buffered across writes.
//! * reader (`decode.go`, `Reader.fill`): the first chunk must be the stream identifier; a chunk
//!   body longer than `76490 + 4` bytes is rejected; `0x02..=0x7f` are unskippable (error),
//!   `0x80..=0xfe` are skipped; a CRC mismatch is an error.
//!
//! Here each `poll_write` takes at most one chunk (65536 bytes) and encodes it into an output
//! buffer that is written out before anything else, so a `write_all` yields the same bytes as
//! Go's `Write`. Buffers are allocated once per stream and bounded by the format limits.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest uncompressed chunk (golang/snappy `maxBlockSize`); also our cap on a decoded chunk.
pub const MAX_BLOCK_SIZE: usize = 65536;
/// The stream identifier chunk (golang/snappy `magicChunk`).
pub const STREAM_IDENTIFIER: &[u8; 10] = b"\xff\x06\x00\x00sNaPpY";

/// golang/snappy `maxEncodedLenOfMaxBlockSize` (= `snap::raw::max_compress_len(65536)`).
const MAX_ENCODED_LEN: usize = 76490;
const CHECKSUM_LEN: usize = 4;
const CHUNK_HEADER_LEN: usize = 4;
/// Largest chunk body the reader accepts (golang/snappy `NewReader`'s `buf` size); anything
/// larger is `ErrUnsupported` there too. Bounds the read buffer far below the 16 MiB the 24-bit
/// length field could express.
const MAX_CHUNK_BODY: usize = MAX_ENCODED_LEN + CHECKSUM_LEN;
/// Output buffer: identifier + chunk header + checksum + worst-case compressed block.
const OUT_CAP: usize = STREAM_IDENTIFIER.len() + CHUNK_HEADER_LEN + CHECKSUM_LEN + MAX_ENCODED_LEN;

const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_STREAM_ID: u8 = 0xff;

/// The snappy framing format's masked CRC-32C (`crc` in golang/snappy `snappy.go`).
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// An AsyncRead + AsyncWrite wrapper speaking the snappy framing format in both directions,
/// wire-compatible with frp's `libio.WithCompression`.
pub struct SnappyStream<S> {
    inner: S,
    // Read half.
    /// Raw bytes read from `inner`, not yet consumed: `inbuf[in_start..in_end]`.
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    /// Decoded data not yet handed out: `decoded[dec_start..dec_end]`.
    decoded: Vec<u8>,
    dec_start: usize,
    dec_end: usize,
    saw_identifier: bool,
    decoder: snap::raw::Decoder,
    // Write half.
    encoder: snap::raw::Encoder,
    wrote_identifier: bool,
    /// Encoded bytes accepted from the caller but not yet taken by `inner`.
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> SnappyStream<S> {
    /// Wraps `inner`. Buffers are allocated on first use of each direction.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            inbuf: Vec::new(),
            in_start: 0,
            in_end: 0,
            decoded: Vec::new(),
            dec_start: 0,
            dec_end: 0,
            saw_identifier: false,
            decoder: snap::raw::Decoder::new(),
            encoder: snap::raw::Encoder::new(),
            wrote_identifier: false,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably. Writing to it directly corrupts the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner stream. Encoded bytes not yet written out are lost; flush first.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Encodes one chunk of at most [`MAX_BLOCK_SIZE`] bytes into `out` (which must be empty).
    fn encode_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        debug_assert!(data.len() <= MAX_BLOCK_SIZE && self.out.is_empty());
        if self.out.capacity() < OUT_CAP {
            self.out.reserve_exact(OUT_CAP);
        }
        if !self.wrote_identifier {
            self.wrote_identifier = true;
            self.out.extend_from_slice(STREAM_IDENTIFIER);
        }
        let header_at = self.out.len();
        self.out
            .extend_from_slice(&[0u8; CHUNK_HEADER_LEN + CHECKSUM_LEN]);
        let body_at = self.out.len();
        self.out.resize(body_at + MAX_ENCODED_LEN, 0);
        let clen = self
            .encoder
            .compress(data, &mut self.out[body_at..])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // Keep the compressed form only if it saves at least 12.5% (golang/snappy `Writer.write`).
        let (kind, body_len) = if clen >= data.len() - data.len() / 8 {
            self.out.truncate(body_at);
            self.out.extend_from_slice(data);
            (CHUNK_UNCOMPRESSED, data.len())
        } else {
            self.out.truncate(body_at + clen);
            (CHUNK_COMPRESSED, clen)
        };
        let chunk_len = (CHECKSUM_LEN + body_len) as u32;
        let header = &mut self.out[header_at..body_at];
        header[0] = kind;
        header[1..4].copy_from_slice(&chunk_len.to_le_bytes()[..3]);
        header[4..8].copy_from_slice(&masked_crc(data).to_le_bytes());
        Ok(())
    }

    /// Parses one complete chunk from `inbuf`, if there is one. Returns `Ok(false)` when more
    /// input is needed. Decoded data lands in `decoded`.
    fn parse_chunk(&mut self) -> io::Result<bool> {
        let avail = &self.inbuf[self.in_start..self.in_end];
        if avail.len() < CHUNK_HEADER_LEN {
            return Ok(false);
        }
        let kind = avail[0];
        let len = usize::from(avail[1]) | usize::from(avail[2]) << 8 | usize::from(avail[3]) << 16;
        if !self.saw_identifier && kind != CHUNK_STREAM_ID {
            return Err(corrupt(
                "snappy stream does not start with the stream identifier",
            ));
        }
        if len > MAX_CHUNK_BODY {
            return Err(corrupt("snappy chunk too long"));
        }
        if avail.len() < CHUNK_HEADER_LEN + len {
            return Ok(false);
        }
        let body = &avail[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + len];
        match kind {
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                if len < CHECKSUM_LEN {
                    return Err(corrupt("snappy chunk shorter than its checksum"));
                }
                let want = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                let payload = &body[CHECKSUM_LEN..];
                if self.decoded.len() < MAX_BLOCK_SIZE {
                    self.decoded.resize(MAX_BLOCK_SIZE, 0);
                }
                let n = if kind == CHUNK_COMPRESSED {
                    let n = snap::raw::decompress_len(payload).map_err(corrupt)?;
                    if n > MAX_BLOCK_SIZE {
                        return Err(corrupt("snappy chunk decodes to more than 65536 bytes"));
                    }
                    self.decoder
                        .decompress(payload, &mut self.decoded[..n])
                        .map_err(corrupt)?
                } else {
                    if payload.len() > MAX_BLOCK_SIZE {
                        return Err(corrupt("uncompressed snappy chunk longer than 65536 bytes"));
                    }
                    self.decoded[..payload.len()].copy_from_slice(payload);
                    payload.len()
                };
                if masked_crc(&self.decoded[..n]) != want {
                    return Err(corrupt("snappy chunk checksum mismatch"));
                }
                self.dec_start = 0;
                self.dec_end = n;
            }
            CHUNK_STREAM_ID => {
                if body != &STREAM_IDENTIFIER[CHUNK_HEADER_LEN..] {
                    return Err(corrupt("bad snappy stream identifier"));
                }
                self.saw_identifier = true;
            }
            0x02..=0x7f => return Err(corrupt("unskippable reserved snappy chunk")),
            // 0x80..=0xfd reserved skippable, 0xfe padding.
            _ => {}
        }
        self.in_start += CHUNK_HEADER_LEN + len;
        Ok(true)
    }
}

fn corrupt(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S: AsyncWrite + Unpin> SnappyStream<S> {
    /// Writes `out` to `inner` until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SnappyStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        while this.dec_start == this.dec_end {
            if this.parse_chunk()? {
                continue;
            }
            // Need more input: compact, then read into the free tail.
            if this.inbuf.len() < CHUNK_HEADER_LEN + MAX_CHUNK_BODY {
                this.inbuf.resize(CHUNK_HEADER_LEN + MAX_CHUNK_BODY, 0);
            }
            if this.in_start > 0 {
                this.inbuf.copy_within(this.in_start..this.in_end, 0);
                this.in_end -= this.in_start;
                this.in_start = 0;
            }
            let mut rb = ReadBuf::new(&mut this.inbuf[this.in_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let got = rb.filled().len();
            if got == 0 {
                if this.in_end == 0 {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a snappy chunk",
                )));
            }
            this.in_end += got;
        }
        let n = buf.remaining().min(this.dec_end - this.dec_start);
        buf.put_slice(&this.decoded[this.dec_start..this.dec_start + n]);
        this.dec_start += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SnappyStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_BLOCK_SIZE);
        this.encode_chunk(&buf[..n])?;
        // Accepted: push it out now like Go's unbuffered writer; if `inner` is not ready the
        // rest goes out on the next write, flush or shutdown.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S> std::fmt::Debug for SnappyStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnappyStream")
            .field("buffered_in", &(self.in_end - self.in_start))
            .field("decoded", &(self.dec_end - self.dec_start))
            .field("pending_out", &(self.out.len() - self.out_pos))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn encode(writes: &[&[u8]]) -> Vec<u8> {
        let mut s = SnappyStream::new(Vec::new());
        for w in writes {
            s.write_all(w).await.unwrap();
        }
        s.flush().await.unwrap();
        s.into_inner()
    }

    async fn decode(wire: &[u8]) -> io::Result<Vec<u8>> {
        let mut s = SnappyStream::new(wire);
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(out)
    }

    /// frp-protocol.md §9, captured from real frp 0.65.0.
    const FRP_A100_HELLO: &str =
        "ff060000734e6150705900170000b6c199736d0041fe01008a01002068656c6c6f2d667270";

    fn a100_hello() -> Vec<u8> {
        let mut v = vec![b'A'; 100];
        v.extend_from_slice(b"hello-frp");
        v
    }

    #[tokio::test]
    async fn matches_go_compressed_chunk() {
        let wire = hex::decode(FRP_A100_HELLO).unwrap();
        assert_eq!(encode(&[&a100_hello()]).await, wire);
        assert_eq!(decode(&wire).await.unwrap(), a100_hello());
    }

    #[tokio::test]
    async fn incompressible_write_is_stored_and_each_write_is_a_chunk() {
        let wire = encode(&[b"abc", b"de"]).await;
        let mut expect = STREAM_IDENTIFIER.to_vec();
        for part in [&b"abc"[..], b"de"] {
            expect.push(CHUNK_UNCOMPRESSED);
            expect.extend_from_slice(&((4 + part.len()) as u32).to_le_bytes()[..3]);
            expect.extend_from_slice(&masked_crc(part).to_le_bytes());
            expect.extend_from_slice(part);
        }
        assert_eq!(wire, expect);
    }

    #[tokio::test]
    async fn large_write_is_split_at_64k() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let wire = encode(&[&data]).await;
        assert_eq!(decode(&wire).await.unwrap(), data);
        // First chunk header sits right after the identifier; its payload covers 65536 bytes.
        let n = snap::raw::decompress_len(&wire[18..]).unwrap();
        assert_eq!(n, MAX_BLOCK_SIZE);
    }

    #[tokio::test]
    async fn skips_padding_and_rejects_garbage() {
        let mut wire = STREAM_IDENTIFIER.to_vec();
        wire.extend_from_slice(&[0xfe, 3, 0, 0, 1, 2, 3]);
        wire.extend_from_slice(&hex::decode(&FRP_A100_HELLO[20..]).unwrap());
        assert_eq!(decode(&wire).await.unwrap(), a100_hello());

        // Missing identifier.
        let err = decode(&hex::decode(&FRP_A100_HELLO[20..]).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Bad checksum.
        let mut bad = hex::decode(FRP_A100_HELLO).unwrap();
        bad[15] ^= 1;
        assert_eq!(
            decode(&bad).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Reserved unskippable chunk.
        let mut bad = STREAM_IDENTIFIER.to_vec();
        bad.extend_from_slice(&[0x02, 0, 0, 0]);
        assert_eq!(
            decode(&bad).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Oversized length field: rejected before any read of the body.
        let mut bad = STREAM_IDENTIFIER.to_vec();
        bad.extend_from_slice(&[0x80, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode(&bad).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // Truncated chunk.
        let wire = hex::decode(FRP_A100_HELLO).unwrap();
        let err = decode(&wire[..wire.len() - 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn rejects_chunk_decoding_past_64k() {
        // A stored chunk of 65537 bytes fits the length field but exceeds the block limit.
        let data = vec![0u8; MAX_BLOCK_SIZE + 1];
        let mut wire = STREAM_IDENTIFIER.to_vec();
        wire.push(CHUNK_UNCOMPRESSED);
        wire.extend_from_slice(&((4 + data.len()) as u32).to_le_bytes()[..3]);
        wire.extend_from_slice(&masked_crc(&data).to_le_bytes());
        wire.extend_from_slice(&data);
        assert_eq!(
            decode(&wire).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // A compressed chunk whose header claims 65537 bytes.
        let block = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut wire = STREAM_IDENTIFIER.to_vec();
        wire.push(CHUNK_COMPRESSED);
        wire.extend_from_slice(&((4 + block.len()) as u32).to_le_bytes()[..3]);
        wire.extend_from_slice(&masked_crc(&data).to_le_bytes());
        wire.extend_from_slice(&block);
        assert_eq!(
            decode(&wire).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn empty_stream_is_clean_eof() {
        assert!(decode(b"").await.unwrap().is_empty());
        assert!(decode(STREAM_IDENTIFIER).await.unwrap().is_empty());
        assert!(encode(&[]).await.is_empty());
    }
}
