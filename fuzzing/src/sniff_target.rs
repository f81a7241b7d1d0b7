//! `sniff`: frps's first-bytes classifier (`transports::sniff`) on arbitrary prefixes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use transports::sniff::{self, Sniffed, MAX_SNIFF_LEN, WEBSOCKET_PREFIX};

/// Input: one byte of options (bit 0 `tls_force`, bits 1.. the read chunk size), then the
/// bytes the peer sends. Properties:
///
/// * `classify` waits (`NeedMore`) only on an empty prefix or a proper prefix of
///   `GET /~!frp`, and its verdict never changes once given (more bytes cannot change it);
/// * `classify_final` never waits on a non-empty prefix and agrees with `classify` where
///   that decided; `tls_force` turns `Plain` into `PlainRejected` and changes nothing else;
/// * the async `sniff` reads at most 10 bytes, its verdict is `classify_final`'s or
///   `classify`'s on what it read, and [`sniff::Rewind`] replays the stream unchanged.
pub fn sniff(data: &[u8]) {
    let Some((&opts, bytes)) = data.split_first() else {
        return;
    };
    let tls_force = opts & 1 == 1;
    let chunk = usize::from(opts >> 1).max(1);
    check_classify(bytes, tls_force);
    check_async(bytes, tls_force, chunk);
}

fn check_classify(bytes: &[u8], tls_force: bool) {
    let mut decided: Option<Sniffed> = None;
    for end in 0..=bytes.len().min(2 * MAX_SNIFF_LEN) {
        let prefix = &bytes[..end];
        let v = sniff::classify(prefix, tls_force);
        let other = sniff::classify(prefix, !tls_force);
        assert_eq!(flip(v), other, "tls_force must only affect plain verdicts");
        let fin = sniff::classify_final(prefix, tls_force);
        if v == Sniffed::NeedMore {
            let n = prefix.len();
            assert!(
                n < WEBSOCKET_PREFIX.len() && prefix == &WEBSOCKET_PREFIX[..n],
                "NeedMore on {prefix:?}"
            );
            assert!(
                decided.is_none(),
                "verdict {decided:?} withdrawn at {prefix:?}"
            );
            if !prefix.is_empty() {
                assert_ne!(fin, Sniffed::NeedMore, "classify_final waits on {prefix:?}");
            }
        } else {
            assert_eq!(fin, v, "classify_final disagrees on {prefix:?}");
            if let Some(d) = decided {
                assert_eq!(d, v, "verdict changed at {prefix:?}");
            }
            decided = Some(v);
        }
        if tls_force {
            assert_ne!(v, Sniffed::Plain);
        } else {
            assert_ne!(v, Sniffed::PlainRejected);
        }
    }
}

/// The verdict with `tls_force` toggled.
fn flip(v: Sniffed) -> Sniffed {
    match v {
        Sniffed::Plain => Sniffed::PlainRejected,
        Sniffed::PlainRejected => Sniffed::Plain,
        other => other,
    }
}

fn check_async(bytes: &[u8], tls_force: bool, chunk: usize) {
    let outcome = futures::executor::block_on(async {
        let mut reader = Chunked { data: bytes, chunk };
        let (verdict, read) = match sniff::sniff(&mut reader, tls_force).await {
            Ok(v) => v,
            Err(e) => {
                assert!(bytes.is_empty(), "sniff failed on {bytes:?}: {e}");
                return None;
            }
        };
        assert!(!read.is_empty() && read.len() <= MAX_SNIFF_LEN);
        assert_eq!(
            &read[..],
            &bytes[..read.len()],
            "sniff reported other bytes"
        );
        assert_ne!(verdict, Sniffed::NeedMore);
        let expected = if read.len() == bytes.len() || read.len() == MAX_SNIFF_LEN {
            sniff::classify_final(&read, tls_force)
        } else {
            sniff::classify(&read, tls_force)
        };
        assert_eq!(verdict, expected, "sniff verdict on {read:?}");
        let mut rewound = sniff::Rewind::new(read, reader);
        let mut all = Vec::new();
        rewound
            .read_to_end(&mut all)
            .await
            .expect("reading a slice");
        Some(all)
    });
    if let Some(all) = outcome {
        assert_eq!(all, bytes, "Rewind must replay the whole stream");
    }
}

/// A reader that hands out `data` at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (head, tail) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = tail;
        Poll::Ready(Ok(()))
    }
}
