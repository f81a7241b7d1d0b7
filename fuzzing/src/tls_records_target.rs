//! `tls_records`: our TLS 1.3 record layer (`transports::tls_records`) as the receiving end
//! of a peer that holds the real keys and sends whatever records it likes.
//!
//! Random bytes never get past the AEAD, so the peer here seals each record with the
//! connection's real key: the fuzzer reaches the inner content type, the padding rule, alerts,
//! post-handshake messages and KeyUpdates, which are hand-written parsing.

use transports::fuzzing::{records_exchange, RecordOp, RECORDS_ECHO};

use crate::records::records;
use crate::rt::block_on_bounded;

/// Largest plaintext of one record (RFC 8446 §5.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest ciphertext a record may announce (RFC 8446 §5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
const TAG_LEN: usize = 16;
/// The peer's records may exceed the limit, by a little (the record length is 16 bits).
const MAX_DATA: usize = MAX_CIPHERTEXT + 64;
/// Read sizes the server uses (a byte at a time, smaller and larger than one record).
const READ_SIZES: [usize; 7] = [1, 7, 100, 4096, MAX_PLAINTEXT, MAX_PLAINTEXT + 1, 64 * 1024];

/// Input: one byte choosing the server's read size, then records (`fuzzing::records`
/// framing) each one step of the peer: tag % 4 = 0 a sealed record whose first body byte is
/// the inner content type and the rest its content, 1 a sealed application-data record, 2 a
/// well-formed KeyUpdate (bit 0 of the first body byte: update requested), 3 raw bytes.
///
/// Properties, against a reference reading of the steps (RFC 8446 §5.1, §5.2, §4.6.3):
///
/// * the server reads exactly the application data sent before the first step that must
///   fail the connection (or before the close_notify), nothing more and nothing less;
/// * its reading ends cleanly exactly at a close_notify, and with an error at a bad step or
///   at an end of stream without close_notify; the next read ends the same way again;
/// * after a clean end, its answer reaches the client intact, through any KeyUpdate the
///   client asked for;
/// * no panic, no hang.
pub fn tls_records(data: &[u8]) {
    let Some((&opts, rest)) = data.split_first() else {
        return;
    };
    let read_size = READ_SIZES[usize::from(opts) % READ_SIZES.len()];
    let ops: Vec<RecordOp> = records(rest)
        .take(64)
        .map(|r| {
            let capped = |b: &[u8]| b[..b.len().min(MAX_DATA)].to_vec();
            match r.tag % 4 {
                0 => match r.body.split_first() {
                    Some((&kind, data)) => RecordOp::Sealed {
                        kind,
                        data: capped(data),
                    },
                    None => RecordOp::Sealed {
                        kind: 0,
                        data: Vec::new(),
                    },
                },
                1 => RecordOp::Sealed {
                    kind: 23,
                    data: capped(r.body),
                },
                2 => RecordOp::KeyUpdate {
                    request: r.body.first().is_some_and(|b| b & 1 == 1),
                },
                _ => RecordOp::Raw(r.body.to_vec()),
            }
        })
        .collect();
    let (expected, closed) = reference(&ops);
    let got = block_on_bounded("tls_records exchange", records_exchange(&ops, read_size));
    assert!(
        got.read == expected,
        "read {} bytes, expected {} (end {:?})",
        got.read.len(),
        expected.len(),
        got.end
    );
    assert_eq!(
        got.end.is_ok(),
        closed,
        "the end: {:?}, expected close_notify: {closed}",
        got.end
    );
    assert!(
        got.end_repeats,
        "a read after the end {:?} differed",
        got.end
    );
    if closed {
        match got.echo {
            Some(Ok(echo)) => assert_eq!(echo, RECORDS_ECHO, "the answer was damaged"),
            other => panic!("the client did not read the answer: {other:?}"),
        }
    }
}

/// The application data the server must read, and whether its reading must end at a
/// close_notify (else with an error).
fn reference(ops: &[RecordOp]) -> (Vec<u8>, bool) {
    let mut read = Vec::new();
    // The peer sealed a KeyUpdate by hand: the server moved to the next key, the peer did not.
    let mut keys_apart = false;
    for op in ops {
        let data = match op {
            RecordOp::Raw(bytes) if bytes.is_empty() => continue,
            // Unsealed bytes cannot pass the AEAD (or end the stream mid-record).
            RecordOp::Raw(_) => return (read, false),
            RecordOp::KeyUpdate { .. } if keys_apart => return (read, false),
            RecordOp::KeyUpdate { .. } => continue,
            RecordOp::Sealed { .. } if keys_apart => return (read, false),
            RecordOp::Sealed { kind, data } => {
                if data.len() + 1 + TAG_LEN > MAX_CIPHERTEXT {
                    return (read, false);
                }
                let mut inner = data.clone();
                inner.push(*kind);
                inner
            }
        };
        let Some(end) = data.iter().rposition(|&b| b != 0) else {
            return (read, false);
        };
        if end > MAX_PLAINTEXT {
            return (read, false);
        }
        let content = &data[..end];
        match data[end] {
            23 => read.extend_from_slice(content),
            21 => match content {
                [_, 0] => return (read, true),
                // user_canceled: a warning.
                [_, 90] => {}
                _ => return (read, false),
            },
            22 => {
                if content.is_empty() {
                    return (read, false);
                }
                let mut rest = content;
                while !rest.is_empty() {
                    let [ty, l0, l1, l2, body @ ..] = rest else {
                        return (read, false);
                    };
                    let len = usize::from(*l0) << 16 | usize::from(*l1) << 8 | usize::from(*l2);
                    if body.len() < len {
                        return (read, false);
                    }
                    let (msg, tail) = body.split_at(len);
                    // A client sends the server nothing after the handshake but KeyUpdates,
                    // and a KeyUpdate ends its record.
                    if *ty != 24 || !tail.is_empty() || !matches!(msg, [0] | [1]) {
                        return (read, false);
                    }
                    keys_apart = true;
                    rest = tail;
                }
            }
            _ => return (read, false),
        }
    }
    // The end of the stream without close_notify.
    (read, false)
}
