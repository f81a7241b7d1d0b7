//! TLS 1.3 records after a rustls handshake, sealed and opened here with aws-lc-rs.
//!
//! rustls's buffered connection copies every byte received twice in user space (our read
//! buffer into its deframer, which it zero-fills 4 KiB at a time, then the decrypted
//! plaintext out to the reader) and allocates a record buffer per record sent. On one
//! stream through the default transport those copies were ~9 % of the tunnel's CPU, more
//! than AES-GCM itself (bench/NOTES.md). rustls supports taking the records over once its
//! handshake is done (for kTLS: `dangerous_extract_secrets`, which gives the keys, IVs and
//! sequence numbers). This module is that record layer, for the AEADs TLS 1.3 defines
//! (AES-128/256-GCM, ChaCha20-Poly1305):
//!
//! - a record is opened from the socket read buffer straight into the reader's buffer
//!   (`open_separate_gather`), or in place when the reader's buffer is too small for it;
//! - a record is sealed from the writer's buffer straight into the socket write buffer
//!   (`seal_out_of_place_scatter`), several records per socket write;
//! - neither buffer is held while the connection is idle (both come from per-thread pools).
//!
//! What it does besides (RFC 8446 §5): the nonce from the sequence number, the inner content
//! type and its zero padding, alerts (close_notify ends the read side; any other alert fails
//! it), post-handshake messages (a KeyUpdate in either direction, and one of its own before the
//! cipher's confidentiality limit; session tickets are dropped, which is why frpc uses this
//! layer only on the connection that carries its yamux session: a dial per work connection
//! keeps rustls's records, so that rustls stores the tickets and the next dial resumes), any
//! violation failing the connection with an error that names it. Nothing from the peer sizes
//! an allocation. A KeyUpdate needs the traffic secret, which rustls does not hand out with
//! the keys: [`SecretLog`] takes it from rustls's key-log hook for this one connection, and
//! [`next_secret`] is the key schedule's one step (RFC 8446 §7.2, HKDF-Expand-Label with
//! aws-lc-rs). TLS 1.2, or a handshake that left unsent records, keeps rustls's own record
//! layer ([`crate::tls`] decides).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use aws_lc_rs::hkdf;
use rustls::{CipherSuite, ConnectionTrafficSecrets, ExtractedSecrets, KeyLog};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls_read::{record_len, Lent};

/// Largest plaintext in one record (RFC 8446 §5.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest ciphertext length field accepted (RFC 8446 §5.2: 2^14 + 256).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
const HEADER_LEN: usize = 5;
const TAG_LEN: usize = 16;
/// Outer header of every protected record: application_data, legacy version 1.2.
const APP_DATA: u8 = 23;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const HS_NEW_SESSION_TICKET: u8 = 4;
const HS_KEY_UPDATE: u8 = 24;
/// Free write buffers kept per thread, and the largest one kept.
const WRITE_POOL_CAP: usize = 4;
const WRITE_POOL_MAX_BYTES: usize = 512 * 1024;

thread_local! {
    static WRITE_POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_write_buf() -> Vec<u8> {
    WRITE_POOL
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_default()
}

/// Takes back a drained write buffer, initialized contents and all (see `wbuf`).
fn give_write_buf(buf: Vec<u8>) {
    if buf.is_empty() || buf.len() > WRITE_POOL_MAX_BYTES {
        return;
    }
    WRITE_POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < WRITE_POOL_CAP {
            p.push(buf);
        }
    });
}

fn proto_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One direction's traffic secret, key, IV and sequence number.
struct Keys {
    secret: Secret,
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

/// A traffic secret, overwritten when dropped.
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

/// The suite's AEAD and hash, for the key schedule step.
#[derive(Clone, Copy)]
pub(crate) struct Suite {
    id: CipherSuite,
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
    hash_len: usize,
}

impl Suite {
    /// The TLS 1.3 suites the record layer implements.
    pub(crate) fn tls13(suite: CipherSuite) -> Option<Self> {
        let (aead, hkdf, hash_len) = match suite {
            CipherSuite::TLS13_AES_128_GCM_SHA256 => (&aead::AES_128_GCM, hkdf::HKDF_SHA256, 32),
            CipherSuite::TLS13_AES_256_GCM_SHA384 => (&aead::AES_256_GCM, hkdf::HKDF_SHA384, 48),
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => {
                (&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256, 32)
            }
            _ => return None,
        };
        Some(Suite {
            id: suite,
            aead,
            hkdf,
            hash_len,
        })
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) (RFC 8446 §7.1).
fn expand_label(suite: Suite, secret: &[u8], label: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let prk = hkdf::Prk::new_less_safe(suite.hkdf, secret);
    let out_len = (len as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&out_len, &label_len, b"tls13 ", label, &[0]];
    let mut out = vec![0u8; len];
    prk.expand(&info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| proto_err("TLS key schedule failed"))?;
    Ok(out)
}

/// The next generation of a traffic secret (RFC 8446 §7.2).
pub(crate) fn next_secret(suite: Suite, secret: &[u8]) -> io::Result<Vec<u8>> {
    expand_label(suite, secret, b"traffic upd", suite.hash_len)
}

/// The write key and IV of a traffic secret (RFC 8446 §7.3).
fn key_and_iv(suite: Suite, secret: &[u8]) -> io::Result<(Vec<u8>, [u8; NONCE_LEN])> {
    let key = expand_label(suite, secret, b"key", suite.aead.key_len())?;
    let iv = expand_label(suite, secret, b"iv", NONCE_LEN)?;
    Ok((key, iv.try_into().expect("NONCE_LEN bytes")))
}

impl Keys {
    /// Keys for `secret` (RFC 8446 §7.3), starting at `seq`.
    fn from_secret(suite: Suite, secret: Vec<u8>, seq: u64) -> io::Result<Self> {
        let (key, iv) = key_and_iv(suite, &secret)?;
        Keys::from_parts(suite, secret, &key, iv, seq)
    }

    fn from_parts(
        suite: Suite,
        secret: Vec<u8>,
        key: &[u8],
        iv: [u8; NONCE_LEN],
        seq: u64,
    ) -> io::Result<Self> {
        let key = UnboundKey::new(suite.aead, key).map_err(|_| proto_err("bad TLS key length"))?;
        Ok(Keys {
            secret: Secret(secret),
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The keys rustls extracted, matched with the secret they came from: `secret` is the
    /// first traffic secret; a KeyUpdate rustls processed before the handover moved on from
    /// it, so later generations are tried too.
    fn matching(
        suite: Suite,
        mut secret: Vec<u8>,
        (seq, extracted): (u64, ConnectionTrafficSecrets),
    ) -> io::Result<Self> {
        let (want_key, want_iv) = match &extracted {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => return Err(proto_err("unsupported TLS cipher for the record layer")),
        };
        for _ in 0..16 {
            let (key, iv) = key_and_iv(suite, &secret)?;
            if key == want_key.as_ref() && iv[..] == *want_iv.as_ref() {
                return Keys::from_parts(suite, secret, &key, iv, seq);
            }
            secret = next_secret(suite, &secret)?;
        }
        Err(proto_err(
            "TLS traffic secret does not match the negotiated keys",
        ))
    }

    /// The next generation after a KeyUpdate, from sequence number 0.
    fn update(&self, suite: Suite) -> io::Result<Self> {
        Keys::from_secret(suite, next_secret(suite, &self.secret.0)?, 0)
    }

    /// The per-record nonce (RFC 8446 §5.3), then the next sequence number.
    fn next_nonce(&mut self) -> io::Result<Nonce> {
        let mut n = self.iv;
        for (b, s) in n[NONCE_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or_else(|| proto_err("TLS sequence number exhausted"))?;
        Ok(Nonce::assume_unique_for_key(n))
    }
}

/// rustls's key-log hook for one connection: keeps the first client and server application
/// traffic secrets (nothing else; they never leave the process).
#[derive(Debug, Default)]
pub(crate) struct SecretLog(Mutex<SecretPair>);

type SecretPair = (Option<Vec<u8>>, Option<Vec<u8>>);

impl SecretLog {
    /// The (client, server) secrets, once the handshake logged both.
    pub(crate) fn take(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (g.0.take(), g.1.take()) {
            (Some(c), Some(s)) => Some((c, s)),
            _ => None,
        }
    }
}

impl KeyLog for SecretLog {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match label {
            "CLIENT_TRAFFIC_SECRET_0" => g.0 = Some(secret.to_vec()),
            "SERVER_TRAFFIC_SECRET_0" => g.1 = Some(secret.to_vec()),
            _ => {}
        }
    }

    fn will_log(&self, label: &str) -> bool {
        matches!(label, "CLIENT_TRAFFIC_SECRET_0" | "SERVER_TRAFFIC_SECRET_0")
    }
}

impl Drop for SecretLog {
    fn drop(&mut self) {
        let g = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        for s in [&mut g.0, &mut g.1].into_iter().flatten() {
            s.fill(0);
        }
    }
}

/// What the record layer takes over from a finished rustls handshake.
pub(crate) struct Handover {
    pub(crate) suite: Suite,
    pub(crate) is_client: bool,
    pub(crate) secrets: ExtractedSecrets,
    pub(crate) log: Arc<SecretLog>,
}

/// A TLS 1.3 connection whose records are sealed and opened here (see the module doc).
pub struct RecordStream<S> {
    io: S,
    suite: Suite,
    is_client: bool,
    rx: Keys,
    tx: Keys,
    /// Send a KeyUpdate of our own once this many records went out under one key.
    rekey_at: u64,
    /// Plaintext rustls had already decrypted when the handshake ended; read first.
    early: Vec<u8>,
    early_pos: usize,
    /// Received bytes: records from `rpos` to `rfilled`, and before `rpos`, once a record was
    /// opened in place, its plaintext not yet read (`plain`).
    rbuf: Option<Lent>,
    rpos: usize,
    rfilled: usize,
    plain: std::ops::Range<usize>,
    read_closed: bool,
    /// A read failed after delivering bytes in the same call: its error, for the next call.
    failed: Option<io::Error>,
    /// A read failed: every later read fails too.
    broken: bool,
    /// Sealed records not yet written to the socket: `wbuf[wpos..wend]`. The buffer is
    /// kept initialized at its full length (zero-filled only when it grows), so sealing
    /// into it needs no zero-fill per record (1.6 % of frps's CPU on one stream).
    wbuf: Vec<u8>,
    wpos: usize,
    wend: usize,
    send_limit: usize,
    key_update_due: bool,
    write_closed: bool,
}

impl<S> std::fmt::Debug for RecordStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("rx_seq", &self.rx.seq)
            .field("tx_seq", &self.tx.seq)
            .field("read_closed", &self.read_closed)
            .field("write_closed", &self.write_closed)
            .finish_non_exhaustive()
    }
}

impl<S> RecordStream<S> {
    /// Takes over after the handshake: `rest` holds the bytes read from `io` and not yet
    /// given to rustls (whole records), `early` the plaintext rustls already decrypted.
    pub(crate) fn new(
        io: S,
        rest: Option<(Lent, usize, usize)>,
        early: Vec<u8>,
        handover: Handover,
        send_limit: usize,
    ) -> io::Result<Self> {
        let Handover {
            suite,
            is_client,
            secrets,
            log,
        } = handover;
        let (client, server) = log
            .take()
            .ok_or_else(|| proto_err("TLS traffic secrets were not logged"))?;
        let (mine, theirs) = if is_client {
            (client, server)
        } else {
            (server, client)
        };
        let tx = Keys::matching(suite, mine, secrets.tx)?;
        let rx = Keys::matching(suite, theirs, secrets.rx)?;
        // AES-GCM's confidentiality limit in TLS 1.3 is 2^24.5 full records (RFC 8446
        // §5.5); ChaCha20-Poly1305 has none that matters. Like rustls, refresh well before.
        let rekey_at = if std::ptr::eq(suite.aead, &aead::CHACHA20_POLY1305) {
            u64::MAX
        } else {
            (1 << 24) - (1 << 20)
        };
        let (rbuf, rpos, rfilled) = match rest {
            Some((b, pos, filled)) => (Some(b), pos, filled),
            None => (None, 0, 0),
        };
        Ok(RecordStream {
            io,
            suite,
            is_client,
            rx,
            tx,
            rekey_at,
            early,
            early_pos: 0,
            rbuf,
            rpos,
            rfilled,
            plain: 0..0,
            read_closed: false,
            failed: None,
            broken: false,
            wbuf: Vec::new(),
            wpos: 0,
            wend: 0,
            send_limit: send_limit.max(MAX_PLAINTEXT),
            key_update_due: false,
            write_closed: false,
        })
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite.id
    }

    /// Marks the read side closed (the peer's close_notify reached rustls before the handover).
    pub(crate) fn set_read_closed(&mut self, closed: bool) {
        self.read_closed |= closed;
    }

    /// Records sealed under the current sending key (for tests).
    #[cfg(test)]
    pub(crate) fn tx_seq(&self) -> u64 {
        self.tx.seq
    }

    /// Sends a KeyUpdate after `records` records under one key (tests force one early).
    #[cfg(test)]
    pub(crate) fn set_rekey_at(&mut self, records: u64) {
        self.rekey_at = records;
    }

    /// Whether a socket read buffer or unsent records are held (for tests).
    #[cfg(test)]
    pub(crate) fn holds_buffers(&self) -> bool {
        self.rbuf.is_some() || !self.wbuf.is_empty()
    }

    /// Bytes of the record at `rpos`, if it is completely buffered.
    fn buffered_record(&self) -> io::Result<Option<usize>> {
        let Some(b) = &self.rbuf else { return Ok(None) };
        let avail = &b[self.rpos..self.rfilled];
        let Some(len) = record_len(avail) else {
            return Ok(None);
        };
        if avail[0] != APP_DATA {
            return Err(proto_err(format!(
                "unexpected TLS record type {} after the handshake",
                avail[0]
            )));
        }
        if len - HEADER_LEN > MAX_CIPHERTEXT {
            return Err(proto_err(format!(
                "TLS record of {} bytes exceeds the maximum",
                len - HEADER_LEN
            )));
        }
        if len - HEADER_LEN < TAG_LEN + 1 {
            return Err(proto_err("TLS record too short"));
        }
        Ok((len <= avail.len()).then_some(len))
    }

    fn release_rbuf_if_empty(&mut self) {
        if self.rpos >= self.rfilled && self.plain.is_empty() {
            self.rbuf = None;
            self.rpos = 0;
            self.rfilled = 0;
            self.plain = 0..0;
        }
    }

    /// Handles a record that is not application data (its inner plaintext `body`).
    fn on_control_record(&mut self, kind: u8, body: &[u8]) -> io::Result<()> {
        match kind {
            ALERT => {
                if body.len() != 2 {
                    return Err(proto_err("malformed TLS alert"));
                }
                match body[1] {
                    0 => {
                        self.read_closed = true;
                        Ok(())
                    }
                    // user_canceled is a warning; a close_notify follows.
                    90 => Ok(()),
                    d => Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("received fatal TLS alert {d}"),
                    )),
                }
            }
            HANDSHAKE => {
                if body.is_empty() {
                    // RFC 8446 §5.1: no zero-length fragments of handshake messages.
                    return Err(proto_err("empty TLS handshake record"));
                }
                let mut rest = body;
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err(proto_err("truncated post-handshake message"));
                    }
                    let len = usize::from(rest[1]) << 16
                        | usize::from(rest[2]) << 8
                        | usize::from(rest[3]);
                    if rest.len() < 4 + len {
                        return Err(proto_err("post-handshake message split across records"));
                    }
                    let (msg, tail) = rest.split_at(4 + len);
                    // A key change must fall on a record boundary (RFC 8446 §5.1).
                    if msg[0] == HS_KEY_UPDATE && !tail.is_empty() {
                        return Err(proto_err("TLS KeyUpdate not at the end of its record"));
                    }
                    self.on_handshake_message(msg)?;
                    rest = tail;
                }
                Ok(())
            }
            other => Err(proto_err(format!(
                "unexpected TLS content type {other} after the handshake"
            ))),
        }
    }

    fn on_handshake_message(&mut self, msg: &[u8]) -> io::Result<()> {
        match msg[0] {
            // Dropped: a client that resumes keeps rustls's records (see `tls::connect`).
            HS_NEW_SESSION_TICKET if self.is_client => Ok(()),
            HS_KEY_UPDATE => {
                let request = match &msg[4..] {
                    [0] => false,
                    [1] => true,
                    _ => return Err(proto_err("malformed TLS KeyUpdate")),
                };
                self.rx = self.rx.update(self.suite)?;
                if request {
                    self.key_update_due = true;
                }
                Ok(())
            }
            t => Err(proto_err(format!(
                "unexpected TLS handshake message {t} after the handshake"
            ))),
        }
    }

    /// Seals one record of `kind` carrying `data` (at most [`MAX_PLAINTEXT`]) onto `wbuf`.
    fn seal(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        debug_assert!(data.len() <= MAX_PLAINTEXT);
        self.seal_unchecked(kind, data)
    }

    /// [`RecordStream::seal`] of any length: the fuzz target's peer sends oversized records.
    pub(crate) fn seal_unchecked(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        let body = data.len() + 1 + TAG_LEN;
        let start = self.wend;
        let end = start + HEADER_LEN + body;
        if self.wbuf.len() < end {
            self.wbuf.resize(end, 0);
        }
        let header = [APP_DATA, 3, 3, (body >> 8) as u8, body as u8];
        self.wbuf[start..start + HEADER_LEN].copy_from_slice(&header);
        let nonce = self.tx.next_nonce()?;
        self.wend = end;
        let (ct, tail) = self.wbuf[start + HEADER_LEN..end].split_at_mut(data.len());
        self.tx
            .key
            .seal_out_of_place_scatter(nonce, Aad::from(header), data, ct, &[kind], tail)
            .map_err(|_| proto_err("TLS record sealing failed"))
    }

    /// Sends a KeyUpdate and switches to the next sending key (RFC 8446 §4.6.3).
    fn seal_key_update(&mut self) -> io::Result<()> {
        self.seal_key_update_requesting(false)
    }

    /// [`RecordStream::seal_key_update`], optionally asking the peer to update its key too
    /// (we never do; the fuzz target's peer does).
    pub(crate) fn seal_key_update_requesting(&mut self, request: bool) -> io::Result<()> {
        self.seal(HANDSHAKE, &[HS_KEY_UPDATE, 0, 0, 1, u8::from(request)])?;
        self.tx = self.tx.update(self.suite)?;
        self.key_update_due = false;
        Ok(())
    }

    /// The connection under the records (the fuzz target's peer writes raw bytes to it).
    pub(crate) fn io_mut(&mut self) -> &mut S {
        &mut self.io
    }

    fn maybe_rekey(&mut self) -> io::Result<()> {
        if self.key_update_due || self.tx.seq >= self.rekey_at {
            self.seal_key_update()?;
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> RecordStream<S> {
    /// Reads until the record at `rpos` is completely buffered; `None` on a clean EOF.
    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        loop {
            if let Some(len) = self.buffered_record()? {
                return Poll::Ready(Ok(Some(len)));
            }
            let buf = self.rbuf.get_or_insert_with(Lent::take);
            let avail = self.rfilled - self.rpos;
            let need = record_len(&buf[self.rpos..self.rfilled]).unwrap_or(HEADER_LEN);
            if self.rpos > 0 && self.rpos + need > buf.len() {
                buf.copy_within(self.rpos..self.rfilled, 0);
                self.rpos = 0;
                self.rfilled = avail;
            }
            let mut rb = ReadBuf::new(&mut buf[self.rfilled..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(if avail == 0 {
                            Ok(None)
                        } else {
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "TLS record truncated by end of stream",
                            ))
                        });
                    }
                    self.rfilled += n;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.release_rbuf_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Opens the buffered record of `len` bytes at `rpos`: into `out` when the largest
    /// plaintext it can hold fits there, else in place (its data then waits in `plain`).
    /// Returns the application bytes put into `out`.
    fn open_record(&mut self, len: usize, out: &mut ReadBuf<'_>) -> io::Result<usize> {
        let body = self.rpos + HEADER_LEN;
        let max_plain = len - HEADER_LEN - TAG_LEN;
        let buf = self.rbuf.as_mut().expect("a buffered record");
        let header: [u8; HEADER_LEN] = buf[self.rpos..body].try_into().expect("5 bytes");
        let nonce = self.rx.next_nonce()?;
        self.rpos += len;
        let bad_mac = || proto_err("TLS record failed to decrypt (bad_record_mac)");
        if out.remaining() >= max_plain {
            let dst = &mut out.initialize_unfilled()[..max_plain];
            let (ct, tag) = buf[body..body + len - HEADER_LEN].split_at(max_plain);
            self.rx
                .key
                .open_separate_gather(nonce, Aad::from(header), ct, tag, dst)
                .map_err(|_| bad_mac())?;
            let (kind, n) = inner_type(dst)?;
            if kind == APP_DATA {
                out.advance(n);
                return Ok(n);
            }
            let msg = dst[..n].to_vec();
            self.on_control_record(kind, &msg)?;
            return Ok(0);
        }
        let plain = self
            .rx
            .key
            .open_in_place(
                nonce,
                Aad::from(header),
                &mut buf[body..body + len - HEADER_LEN],
            )
            .map_err(|_| bad_mac())?;
        let (kind, n) = inner_type(plain)?;
        if kind == APP_DATA {
            self.plain = body..body + n;
            return Ok(0);
        }
        let msg = plain[..n].to_vec();
        self.on_control_record(kind, &msg)?;
        Ok(0)
    }

    /// Copies plaintext waiting from an in-place open into `out`.
    fn drain_plain(&mut self, out: &mut ReadBuf<'_>) -> bool {
        if self.plain.is_empty() {
            return false;
        }
        let buf = self.rbuf.as_ref().expect("plaintext is buffered");
        let n = self.plain.len().min(out.remaining());
        out.put_slice(&buf[self.plain.start..self.plain.start + n]);
        self.plain.start += n;
        if self.plain.is_empty() {
            self.plain = 0..0;
            self.release_rbuf_if_empty();
        }
        true
    }
}

/// Splits TLSInnerPlaintext (RFC 8446 §5.2): the content type is the last non-zero byte.
fn inner_type(plain: &[u8]) -> io::Result<(u8, usize)> {
    let end = plain
        .iter()
        .rposition(|&b| b != 0)
        .ok_or_else(|| proto_err("TLS record without a content type"))?;
    if end > MAX_PLAINTEXT {
        return Err(proto_err("TLS record plaintext exceeds the maximum"));
    }
    Ok((plain[end], end))
}

impl<S: AsyncWrite + Unpin> RecordStream<S> {
    /// Writes sealed records to the socket until none are left or it would block.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wend {
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..self.wend]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wpos = 0;
        self.wend = 0;
        give_write_buf(std::mem::take(&mut self.wbuf));
        Poll::Ready(Ok(()))
    }

    fn pending_out(&self) -> usize {
        self.wend - self.wpos
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RecordStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.early_pos < this.early.len() {
            let n = (this.early.len() - this.early_pos).min(out.remaining());
            out.put_slice(&this.early[this.early_pos..this.early_pos + n]);
            this.early_pos += n;
            if this.early_pos == this.early.len() {
                this.early = Vec::new();
                this.early_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        if this.broken {
            return Poll::Ready(Err(proto_err("TLS connection failed earlier")));
        }
        let r = this.poll_read_records(cx, out);
        // A failed connection stays failed: the records after a bad one are not read.
        if matches!(r, Poll::Ready(Err(_))) || this.failed.is_some() {
            this.broken = true;
        }
        r
    }
}

impl<S: AsyncRead + Unpin> RecordStream<S> {
    /// [`AsyncRead::poll_read`] once the early plaintext is read: opens records into `out`.
    fn poll_read_records(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut delivered = 0;
        loop {
            if self.drain_plain(out) {
                return Poll::Ready(Ok(()));
            }
            if self.read_closed {
                // Nothing after close_notify is read: let the buffer go.
                self.rbuf = None;
                self.rpos = 0;
                self.rfilled = 0;
                return Poll::Ready(Ok(()));
            }
            // Once something is delivered, open only records already buffered.
            let len = if delivered > 0 {
                match self.buffered_record() {
                    Ok(Some(len)) => len,
                    _ => break,
                }
            } else {
                match ready!(self.poll_record(cx))? {
                    Some(len) => len,
                    None => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed connection without sending TLS close_notify",
                        )))
                    }
                }
            };
            match self.open_record(len, out) {
                Ok(n) => delivered += n,
                // What this call already delivered is the caller's; the error comes next.
                Err(e) if delivered > 0 => {
                    self.failed = Some(e);
                    break;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
            if out.remaining() == 0 {
                break;
            }
        }
        self.release_rbuf_if_empty();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RecordStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if this.pending_out() >= this.send_limit {
            ready!(this.poll_write_out(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.wbuf.is_empty() {
            this.wbuf = take_write_buf();
        }
        let room = this.send_limit - this.pending_out();
        let take = data.len().min(room);
        let records = take.div_ceil(MAX_PLAINTEXT);
        let need = this.wend + take + records * (HEADER_LEN + 1 + TAG_LEN);
        if this.wbuf.len() < need {
            this.wbuf.resize(need, 0);
        }
        for chunk in data[..take].chunks(MAX_PLAINTEXT) {
            this.maybe_rekey()?;
            this.seal(APP_DATA, chunk)?;
        }
        // Start the write now; what the socket does not take goes with the next call.
        match this.poll_write_out(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(take)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.key_update_due && !this.write_closed {
            this.seal_key_update()?;
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.write_closed {
            // close_notify (RFC 8446 §6.1), as rustls sends on shutdown.
            this.seal(ALERT, &[1, 0])?;
            this.write_closed = true;
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "tls_records_tests.rs"]
mod tests;
