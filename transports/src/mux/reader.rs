//! The session's frame reader: reads the transport in large chunks and hands payloads to
//! the streams as `Bytes` slices of those chunks, without copying them.
//!
//! Chunks come from a small per-thread pool and go back to it when the last slice of
//! them is dropped (`Bytes::from_owner`), so the steady state allocates nothing. This
//! matters more than it looks: a fresh 64 KiB allocation per read lets glibc trim and
//! re-fault the worker threads' arenas, which cost frpc one page fault per ~8 KiB moved
//! (about a sixth of its CPU time) before this reader existed.
//!
//! Memory: an idle session holds no chunk (one is taken only while a read makes
//! progress). A slice pins its whole chunk until the stream's reader consumes it, so a
//! peer sending tiny frames to a stream that is not read could make every queued byte
//! pin a chunk. [`Piece::for_queue`] prevents that: a piece is queued as a slice only if
//! it is at least a quarter chunk, or its chunk is already pinned by the piece queued
//! before it on the same stream, or the stream's reader is waiting on an empty queue (it
//! takes the piece at its next poll: the request/response case, where copying each small
//! message cost a malloc and a free per message); otherwise it is copied. A reader that took
//! a slice and cannot pass it on (a relay whose socket is full) reads nothing more meanwhile,
//! so its stream's next pieces queue under the copy rule. Pinned memory per stream is so at
//! most four times its queued bytes (themselves bounded by the receive window) plus two
//! chunks; a bulk transfer copies only the tail of a frame that straddles two chunks.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};

use super::frame::{Header, HEADER_LEN};

/// Size of a read chunk.
const CHUNK: usize = 64 * 1024;
/// Idle chunks kept for reuse per thread (2 MiB).
const POOL_MAX: usize = 32;

thread_local! {
    /// Per thread, so taking and returning chunks needs no lock; a chunk returns to the
    /// pool of the thread that drops its last slice (usually a stream reader's).
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A chunk from the pool. Chunks are zero-filled once, when allocated, and always kept at
/// full length: a read then goes into initialized memory, which the TLS record layer
/// decrypts into directly (a reader handing it uninitialized spare capacity would make it
/// zero-fill every read: 4 % of frpc's CPU on one stream).
fn take_chunk() -> Vec<u8> {
    let reused = POOL.try_with(|p| p.borrow_mut().pop()).ok().flatten();
    reused.unwrap_or_else(|| vec![0u8; CHUNK])
}

fn put_chunk(chunk: Vec<u8>) {
    if chunk.len() != CHUNK {
        return;
    }
    // During thread teardown the pool may be gone; the chunk is then simply freed.
    let _ = POOL.try_with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(chunk);
        }
    });
}

/// Owner of a chunk's first `len` bytes handed out as `Bytes`; returns the chunk to the
/// pool when dropped.
struct Pooled {
    chunk: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.chunk[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        put_chunk(std::mem::take(&mut self.chunk));
    }
}

/// Why reading a frame failed.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The transport ended (cleanly or mid-frame).
    Eof,
    /// Transport IO error.
    Io(io::Error),
    /// A header that violates the protocol.
    Protocol(String),
}

/// Frame reader over the transport (see the module doc).
pub(super) struct FrameReader<R> {
    r: R,
    /// Read and not yet consumed: a slice of a pooled chunk.
    cur: Bytes,
    /// The chunk being filled (its first `filled` bytes); empty while no read is in
    /// progress.
    fill: Vec<u8>,
    filled: usize,
    /// Sequence number of the chunk `cur` slices (starts at 1; 0 means none).
    seq: u64,
}

/// Payload bytes as read, with the identity of the chunk they slice.
pub(super) struct Piece {
    pub(super) bytes: Bytes,
    chunk: u64,
}

impl Piece {
    /// What to queue on a stream whose previously queued piece came from chunk
    /// `last_chunk` (updated): the slice itself, or a copy when the slice would pin a
    /// chunk for too few bytes (see the module doc). `reader_waiting`: the stream's queue is
    /// empty and its reader waits for it.
    pub(super) fn for_queue(self, last_chunk: &mut u64, reader_waiting: bool) -> Bytes {
        if self.chunk == *last_chunk {
            return self.bytes;
        }
        if reader_waiting || self.bytes.len() >= CHUNK / 4 {
            *last_chunk = self.chunk;
            return self.bytes;
        }
        Bytes::copy_from_slice(&self.bytes)
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(r: R) -> Self {
        FrameReader {
            r,
            cur: Bytes::new(),
            fill: Vec::new(),
            filled: 0,
            seq: 0,
        }
    }

    /// The next frame header.
    pub(super) async fn header(&mut self) -> Result<Header, ReadError> {
        if self.cur.len() < HEADER_LEN {
            poll_fn(|cx| self.poll_fill(cx, HEADER_LEN)).await?;
        }
        let mut hdr = [0u8; HEADER_LEN];
        self.cur.copy_to_slice(&mut hdr);
        Header::decode(&hdr).map_err(|e| ReadError::Protocol(e.to_string()))
    }

    /// The next at most `max` (> 0) payload bytes: what is buffered, else one read.
    pub(super) async fn payload_piece(&mut self, max: usize) -> Result<Piece, ReadError> {
        if self.cur.is_empty() {
            poll_fn(|cx| self.poll_fill(cx, 1)).await?;
        }
        Ok(Piece {
            bytes: self.cur.split_to(max.min(self.cur.len())),
            chunk: self.seq,
        })
    }

    /// Reads until `cur` holds at least `need` (≤ `HEADER_LEN`) bytes, draining whatever
    /// the transport has ready into one chunk.
    fn poll_fill(&mut self, cx: &mut Context<'_>, need: usize) -> Poll<Result<(), ReadError>> {
        if self.fill.is_empty() {
            self.fill = take_chunk();
            // At most a partial header is carried over.
            self.filled = self.cur.len();
            self.fill[..self.filled].copy_from_slice(&self.cur);
            self.cur = Bytes::new();
        }
        while self.filled < self.fill.len() {
            let mut rb = ReadBuf::new(&mut self.fill[self.filled..]);
            match Pin::new(&mut self.r).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        if self.filled >= need {
                            break;
                        }
                        return Poll::Ready(Err(ReadError::Eof));
                    }
                    self.filled += n;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Poll::Ready(Err(ReadError::Eof))
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(ReadError::Io(e))),
                Poll::Pending if self.filled >= need => break,
                Poll::Pending => {
                    if self.filled == 0 {
                        // Idle: hold no chunk while waiting.
                        put_chunk(std::mem::take(&mut self.fill));
                    }
                    return Poll::Pending;
                }
            }
        }
        let len = std::mem::take(&mut self.filled);
        self.cur = Bytes::from_owner(Pooled {
            chunk: std::mem::take(&mut self.fill),
            len,
        });
        self.seq += 1;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::frame::FrameType;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    const T: Duration = Duration::from_secs(10);

    fn data_frame(id: u32, len: usize) -> (Vec<u8>, Vec<u8>) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + id as usize) as u8).collect();
        let mut wire = Header::new(FrameType::Data, 0, id, len as u32)
            .encode()
            .to_vec();
        wire.extend_from_slice(&payload);
        (wire, payload)
    }

    /// Headers and payloads split across reads at every possible place (a 5-byte pipe)
    /// and payloads larger than a chunk come out intact and in order.
    #[tokio::test]
    async fn frames_survive_any_fragmentation() {
        let sizes = [
            0,
            1,
            11,
            12,
            13,
            16 * 1024 + 5,
            CHUNK + 3,
            2 * CHUNK + 17,
            7,
        ];
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let (w, p) = data_frame(i as u32 + 1, len);
            wire.extend_from_slice(&w);
            expected.push(p);
        }
        for pipe in [5, 4096, 1 << 20] {
            let (mut tx, rx) = tokio::io::duplex(pipe);
            let wire = wire.clone();
            let writer = tokio::spawn(async move {
                tx.write_all(&wire).await.unwrap();
            });
            let mut r = FrameReader::new(rx);
            for (i, want) in expected.iter().enumerate() {
                let h = tokio::time::timeout(T, r.header()).await.unwrap().unwrap();
                assert_eq!((h.stream_id, h.length as usize), (i as u32 + 1, want.len()));
                let mut got = Vec::new();
                while got.len() < want.len() {
                    let piece = r.payload_piece(want.len() - got.len()).await.unwrap();
                    assert!(!piece.bytes.is_empty());
                    got.extend_from_slice(&piece.bytes);
                }
                assert!(got == *want, "payload {i} differs (pipe {pipe})");
            }
            writer.await.unwrap();
            // The writer is gone: a clean EOF, and no chunk is held afterwards.
            assert!(matches!(r.header().await, Err(ReadError::Eof)));
        }
    }

    #[tokio::test]
    async fn idle_reader_holds_no_chunk_and_partial_header_is_eof() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let (w, _) = data_frame(1, 100);
        tx.write_all(&w).await.unwrap();
        let mut r = FrameReader::new(rx);
        r.header().await.unwrap();
        let piece = r.payload_piece(100).await.unwrap();
        assert_eq!(piece.bytes.len(), 100);
        // Nothing more to read: the pending read gives its chunk back.
        let pending = tokio::time::timeout(Duration::from_millis(50), r.header()).await;
        assert!(pending.is_err());
        assert_eq!(r.fill.capacity(), 0);
        assert_eq!(r.filled, 0);
        // Half a header, then EOF.
        tx.write_all(&[0, 0, 0]).await.unwrap();
        drop(tx);
        assert!(matches!(r.header().await, Err(ReadError::Eof)));
    }

    /// A small piece from a chunk the stream does not already pin is copied; a large
    /// one, or one from the chunk of the stream's previous slice, is not.
    #[test]
    fn small_pieces_do_not_pin_new_chunks() {
        let chunk = Bytes::from(vec![1u8; CHUNK]);
        let piece = |chunk_seq: u64, range: std::ops::Range<usize>| Piece {
            bytes: chunk.slice(range),
            chunk: chunk_seq,
        };
        let shares = |b: &Bytes| chunk.as_ptr_range().contains(&b.as_ptr());
        let mut last = 0;
        let small = piece(1, 0..100).for_queue(&mut last, false);
        assert!(!shares(&small), "small piece of a new chunk must be copied");
        assert_eq!(last, 0);
        let large = piece(1, 100..100 + CHUNK / 4).for_queue(&mut last, false);
        assert!(shares(&large));
        assert_eq!(last, 1);
        let same = piece(1, 20_000..20_010).for_queue(&mut last, false);
        assert!(shares(&same), "the chunk is already pinned by this stream");
        let next = piece(2, 0..10).for_queue(&mut last, false);
        assert!(!shares(&next));
        assert_eq!(&next[..], &[1u8; 10]);
    }

    /// A small piece for a reader waiting on an empty queue is handed over as it is (it is
    /// taken at once), and the stream then counts its chunk as pinned.
    #[test]
    fn a_waiting_reader_gets_small_pieces_uncopied() {
        let chunk = Bytes::from(vec![1u8; CHUNK]);
        let shares = |b: &Bytes| chunk.as_ptr_range().contains(&b.as_ptr());
        let mut last = 0;
        let piece = Piece {
            bytes: chunk.slice(0..100),
            chunk: 7,
        };
        let queued = piece.for_queue(&mut last, true);
        assert!(shares(&queued));
        assert_eq!(last, 7);
    }

    #[test]
    fn chunks_return_to_the_pool() {
        let mut chunk = take_chunk();
        assert_eq!(
            chunk.len(),
            CHUNK,
            "chunks are kept initialized at full length"
        );
        chunk[..2].copy_from_slice(b"xy");
        let ptr = chunk.as_ptr();
        let owned = Bytes::from_owner(Pooled { chunk, len: 2 });
        assert_eq!(&owned[..], b"xy");
        let slice = owned.slice(1..2);
        drop(owned);
        assert!(
            POOL.with(|p| p.borrow().is_empty()),
            "a slice still pins it"
        );
        drop(slice);
        let again = take_chunk();
        assert_eq!(again.as_ptr(), ptr, "reused");
        // A full pool frees instead of growing.
        for _ in 0..POOL_MAX + 5 {
            put_chunk(vec![0u8; CHUNK]);
        }
        assert_eq!(POOL.with(|p| p.borrow().len()), POOL_MAX);
    }
}
