//! `floor`: reference relays for the benchmark suite (issue 5's "physically out of reach"
//! question). Each does only what its path needs, in the plainest code: blocking std threads,
//! one per socket direction, no runtime, no allocation per message, no protocol beyond what the
//! path needs. They are references, not proven optima (frp-rs's own relays beat some of them);
//! `bench/suite.py` runs them next to direct loopback, rathole, frp and frp-rs in one interleaved
//! run and derives its accounting bounds from their cost. Not frp: it speaks no frp and is never
//! shipped.
//!
//! ```text
//! floor splice LISTEN TARGET          each accepted connection joined to a new connection to TARGET
//!                                     with splice(2) through a 1 MiB pipe per direction: no byte
//!                                     enters user space
//! floor copy LISTEN TARGET            the same with read/write through a 256 KiB buffer: one copy
//!                                     in, one out, as any relay that must see the bytes makes
//! floor aes                          AES-128-GCM seal and open speed on one core: 16 KiB records
//!                                     in place, over a 4 MiB and a 64 MiB working set
//! floor mux-server USERS TUNNEL [--plain]
//! floor mux-client TUNNEL TARGET [--plain]
//!                                     every user connection accepted on USERS becomes a stream of
//!                                     one TCP connection (accepted on TUNNEL by the server, dialed
//!                                     by the client), in records shaped like TLS 1.3's: at most
//!                                     16 KiB of plaintext each, AES-128-GCM sealed and opened in
//!                                     place (aws-lc-rs, the provider frp-rs's rustls uses), one
//!                                     socket read straight into up to four record bodies and one
//!                                     write per batch; the receiver decrypts in place and writes a
//!                                     run of one stream's payloads with one writev. `--plain`
//!                                     skips the AEAD (the tag's 16 bytes are sent unset): the same
//!                                     framing without encryption.
//! ```
//!
//! The frp wire behind frp's default configuration (TLS + tcpMux) needs at least the mux relay's
//! work: every byte is read into user space, encrypted, written, read, decrypted and written
//! again, in one TLS connection per client. Without TLS and tcpMux the path still has three TCP
//! connections (user → frps, frps → frpc, frpc → service), as the splice and copy relays do.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::thread;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM};
use rustix::pipe::{fcntl_setpipe_size, pipe, splice, SpliceFlags};

/// TLS's largest record plaintext.
const RECORD: usize = 16 * 1024;
/// Records filled by one socket read (64 KiB: the largest yamux frame frp-rs sends).
const BATCH: usize = 4;
/// Clear length prefix (like TLS's 5-byte record header).
const LEN: usize = 4;
/// Inner header, encrypted with the payload (like the yamux header inside a TLS record):
/// stream id (u32), kind (u8), 3 bytes of padding.
const INNER: usize = 8;
const TAG: usize = 16;
const SLOT: usize = LEN + INNER + RECORD + TAG;

const DATA: u8 = 0;
const OPEN: u8 = 1;
const CLOSE: u8 = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plain = args.iter().any(|a| a == "--plain");
    let pos: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let result = match pos.as_slice() {
        ["splice", listen, target] => {
            TcpListener::bind(listen).and_then(|l| serve_pairs(l, target, join_splice))
        }
        ["copy", listen, target] => {
            TcpListener::bind(listen).and_then(|l| serve_pairs(l, target, join_copy))
        }
        ["mux-server", users, tunnel] => TcpListener::bind(users)
            .and_then(|u| Ok((u, TcpListener::bind(tunnel)?)))
            .and_then(|(u, t)| mux_server(u, t, plain)),
        ["mux-client", tunnel, target] => mux_client(tunnel, target, plain),
        ["aes"] => aes_speed(),
        _ => {
            eprintln!(
                "usage: floor splice|copy LISTEN TARGET | floor mux-server USERS TUNNEL [--plain] \
                 | floor mux-client TUNNEL TARGET [--plain]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

fn dial(addr: &str) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Accepts on `listen`; every connection is joined to a new connection to `target`, each
/// direction on a thread of its own.
fn serve_pairs(l: TcpListener, target: &str, join: fn(TcpStream, TcpStream)) -> io::Result<()> {
    for conn in l.incoming() {
        let a = conn?;
        a.set_nodelay(true)?;
        let b = match dial(target) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("floor: dial {target}: {e}");
                continue;
            }
        };
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        thread::spawn(move || join(a, b));
        thread::spawn(move || join(b2, a2));
    }
    Ok(())
}

/// One direction, `src` → `dst`, through a pipe: the bytes stay in the kernel.
fn join_splice(src: TcpStream, dst: TcpStream) {
    let run = || -> io::Result<()> {
        let (rd, wr): (OwnedFd, OwnedFd) = pipe()?;
        let size = fcntl_setpipe_size(&wr, 1 << 20).unwrap_or(64 * 1024);
        loop {
            let mut n = splice(&src, None, &wr, None, size, SpliceFlags::MOVE)?;
            if n == 0 {
                return Ok(());
            }
            while n > 0 {
                n -= splice(
                    &rd,
                    None,
                    &dst,
                    None,
                    n,
                    SpliceFlags::MOVE | SpliceFlags::MORE,
                )?;
            }
        }
    };
    let _ = run();
    let _ = dst.shutdown(Shutdown::Write);
}

/// One direction, `src` → `dst`, through a 256 KiB buffer.
fn join_copy(mut src: TcpStream, mut dst: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if dst.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = dst.shutdown(Shutdown::Write);
}

/// The sending half of the tunnel: records leave in the order their nonces were taken.
struct Tx {
    sock: TcpStream,
    key: Option<LessSafeKey>,
    seq: u64,
}

impl Tx {
    /// Seals the records laid out in `buf` (slot `k` at `k * SLOT`, payload lengths `lens`) in
    /// place and writes them with one call. Records are contiguous: every slot but the last is
    /// full, and the last one's tag follows its payload.
    fn send(&mut self, buf: &mut [u8], stream: u32, kind: u8, lens: &[usize]) -> io::Result<()> {
        let mut end = 0;
        for (k, &plen) in lens.iter().enumerate() {
            let at = k * SLOT;
            debug_assert_eq!(at, end, "records must be contiguous");
            let body = INNER + plen;
            buf[at..at + LEN].copy_from_slice(&((body + TAG) as u32).to_be_bytes());
            buf[at + LEN..at + LEN + 4].copy_from_slice(&stream.to_be_bytes());
            buf[at + LEN + 4] = kind;
            let region = at + LEN..at + LEN + body;
            if let Some(key) = &self.key {
                let tag: Tag = key
                    .seal_in_place_separate_tag(nonce(self.seq), Aad::empty(), &mut buf[region])
                    .map_err(|_| io::Error::other("seal"))?;
                buf[at + LEN + body..at + LEN + body + TAG].copy_from_slice(tag.as_ref());
            }
            self.seq += 1;
            end = at + LEN + body + TAG;
        }
        self.sock.write_all(&buf[..end])
    }

    fn control(&mut self, stream: u32, kind: u8) -> io::Result<()> {
        let mut buf = [0u8; LEN + INNER + TAG];
        self.send(&mut buf, stream, kind, &[0])
    }
}

fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Fixed keys: this measures cost, not secrecy. Each direction has its own.
fn key(plain: bool, dir: u8) -> Option<LessSafeKey> {
    (!plain).then(|| LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[dir; 16]).expect("key")))
}

type Streams = Arc<Mutex<HashMap<u32, TcpStream>>>;

/// Reads a user connection and sends what it reads as records of `stream`, then a CLOSE.
fn pump_user(mut src: TcpStream, stream: u32, tx: Arc<Mutex<Tx>>) {
    let mut buf = vec![0u8; BATCH * SLOT];
    loop {
        let n = {
            let mut slices: Vec<IoSliceMut<'_>> = buf
                .chunks_mut(SLOT)
                .map(|slot| IoSliceMut::new(&mut slot[LEN + INNER..LEN + INNER + RECORD]))
                .collect();
            match src.read_vectored(&mut slices) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            }
        };
        let mut lens = [RECORD; BATCH];
        let count = n.div_ceil(RECORD);
        lens[count - 1] = n - (count - 1) * RECORD;
        if tx
            .lock()
            .expect("tx")
            .send(&mut buf, stream, DATA, &lens[..count])
            .is_err()
        {
            return;
        }
    }
    let _ = tx.lock().expect("tx").control(stream, CLOSE);
}

/// Reads the tunnel, opens records in place and writes each run of one stream's payloads to
/// that stream's connection with one `writev`. `on_open` handles an OPEN (client side).
fn pump_tunnel(
    mut sock: TcpStream,
    key: Option<LessSafeKey>,
    streams: Streams,
    on_open: &dyn Fn(u32) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024 + SLOT];
    let mut filled = 0;
    let mut seq = 0u64;
    let mut runs: Vec<(u32, std::ops::Range<usize>)> = Vec::new();
    loop {
        let n = sock.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut pos = 0;
        runs.clear();
        while filled - pos >= LEN {
            let len = u32::from_be_bytes(buf[pos..pos + LEN].try_into().expect("4")) as usize;
            if !(INNER + TAG..=INNER + RECORD + TAG).contains(&len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad record length",
                ));
            }
            if filled - pos < LEN + len {
                break;
            }
            let body = pos + LEN..pos + LEN + len;
            if let Some(key) = &key {
                key.open_in_place(nonce(seq), Aad::empty(), &mut buf[body.clone()])
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "record MAC"))?;
            }
            seq += 1;
            let stream = u32::from_be_bytes(buf[body.start..body.start + 4].try_into().expect("4"));
            let kind = buf[body.start + 4];
            let payload = body.start + INNER..body.end - TAG;
            match kind {
                DATA => runs.push((stream, payload)),
                OPEN | CLOSE => {
                    flush_runs(&buf, &mut runs, &streams);
                    if kind == OPEN {
                        on_open(stream)?;
                    } else if let Some(s) = streams.lock().expect("streams").remove(&stream) {
                        let _ = s.shutdown(Shutdown::Write);
                    }
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad record kind",
                    ))
                }
            }
            pos = body.end;
        }
        flush_runs(&buf, &mut runs, &streams);
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// Writes the collected payloads: each run of consecutive payloads of one stream with one
/// `writev`.
fn flush_runs(buf: &[u8], runs: &mut Vec<(u32, std::ops::Range<usize>)>, streams: &Streams) {
    if runs.is_empty() {
        return;
    }
    let mut map = streams.lock().expect("streams");
    let mut i = 0;
    while i < runs.len() {
        let stream = runs[i].0;
        let mut j = i;
        while j < runs.len() && runs[j].0 == stream {
            j += 1;
        }
        if let Some(dst) = map.get_mut(&stream) {
            let mut io: Vec<IoSlice<'_>> = runs[i..j]
                .iter()
                .map(|(_, r)| IoSlice::new(&buf[r.clone()]))
                .collect();
            if write_all_vectored(dst, &mut io).is_err() {
                map.remove(&stream);
            }
        }
        i = j;
    }
    runs.clear();
}

fn write_all_vectored(dst: &mut TcpStream, mut io: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !io.is_empty() {
        let n = dst.write_vectored(io)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut io, n);
    }
    Ok(())
}

fn mux_server(users: TcpListener, tunnel: TcpListener, plain: bool) -> io::Result<()> {
    let (sock, _) = tunnel.accept()?;
    sock.set_nodelay(true)?;
    let tx = Arc::new(Mutex::new(Tx {
        sock: sock.try_clone()?,
        key: key(plain, 1),
        seq: 0,
    }));
    let streams: Streams = Arc::default();
    {
        let streams = streams.clone();
        thread::spawn(move || {
            let r = pump_tunnel(sock, key(plain, 2), streams, &|_| {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "OPEN from the client",
                ))
            });
            eprintln!("floor: tunnel ended: {r:?}");
            std::process::exit(0);
        });
    }
    for (id, conn) in (1u32..).zip(users.incoming()) {
        let conn = conn?;
        conn.set_nodelay(true)?;
        streams
            .lock()
            .expect("streams")
            .insert(id, conn.try_clone()?);
        tx.lock().expect("tx").control(id, OPEN)?;
        let tx = tx.clone();
        thread::spawn(move || pump_user(conn, id, tx));
    }
    Ok(())
}

fn mux_client(tunnel: &str, target: &str, plain: bool) -> io::Result<()> {
    // The server may still be starting: try for five seconds.
    let mut tries = 0;
    let sock = loop {
        match dial(tunnel) {
            Ok(s) => break s,
            Err(e) if tries >= 50 => return Err(e),
            Err(_) => {
                tries += 1;
                thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    let tx = Arc::new(Mutex::new(Tx {
        sock: sock.try_clone()?,
        key: key(plain, 2),
        seq: 0,
    }));
    let streams: Streams = Arc::default();
    let open = |id: u32| -> io::Result<()> {
        let conn = match dial(target) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("floor: dial {target}: {e}");
                return tx.lock().expect("tx").control(id, CLOSE);
            }
        };
        streams
            .lock()
            .expect("streams")
            .insert(id, conn.try_clone()?);
        let tx = tx.clone();
        thread::spawn(move || pump_user(conn, id, tx));
        Ok(())
    };
    pump_tunnel(sock, key(plain, 1), streams.clone(), &open)
}

/// Prints AES-128-GCM's cost on this CPU, as a tunnel pays it: 16 KiB records sealed then
/// opened in place, walking a working set that fits the caches (4 MiB) or does not (64 MiB).
fn aes_speed() -> io::Result<()> {
    let seal = key(false, 1).expect("key");
    let open = key(false, 1).expect("key");
    for set in [4usize << 20, 64 << 20] {
        let mut buf = vec![7u8; set + set / RECORD * TAG];
        let per = RECORD + TAG;
        let records = set / RECORD;
        let rounds = (2usize << 30) / set; // 2 GiB each way
        let mut seq = 0u64;
        let t0 = std::time::Instant::now();
        for _ in 0..rounds {
            for r in 0..records {
                let rec = &mut buf[r * per..r * per + per];
                let (body, tag) = rec.split_at_mut(RECORD);
                let t = seal
                    .seal_in_place_separate_tag(nonce(seq + r as u64), Aad::empty(), body)
                    .map_err(|_| io::Error::other("seal"))?;
                tag.copy_from_slice(t.as_ref());
            }
            for r in 0..records {
                let rec = &mut buf[r * per..r * per + per];
                open.open_in_place(nonce(seq + r as u64), Aad::empty(), rec)
                    .map_err(|_| io::Error::other("open"))?;
            }
            seq += records as u64;
        }
        let secs = t0.elapsed().as_secs_f64();
        let gb = (rounds * set) as f64 / 1e9;
        println!(
            "working set {} MiB: seal + open {:.3} CPU s per GB moved ({:.2} GB/s each way)",
            set >> 20,
            secs / gb,
            2.0 * gb / secs
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The figures the suite quotes are only worth something if the relays move every byte
    //! intact: several concurrent connections through each relay to an echo service, each
    //! sending a different pattern and checking what comes back.
    use super::*;

    fn listener() -> (TcpListener, String) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        (l, addr)
    }

    fn echo_service() -> String {
        let (l, addr) = listener();
        thread::spawn(move || {
            for conn in l.incoming() {
                let mut a = conn.expect("accept");
                let mut b = a.try_clone().expect("clone");
                thread::spawn(move || {
                    let _ = io::copy(&mut a, &mut b);
                    let _ = b.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    /// Sends `len` bytes of a pattern keyed by `id` and checks the echo, byte for byte.
    fn round_trip(addr: &str, id: u8, len: usize) {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[id as usize % 4] ^ id)
            .collect();
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut w = s.try_clone().expect("clone");
        let sent = data.clone();
        let writer = thread::spawn(move || {
            // Odd sizes, so records and batches end mid-way.
            for chunk in sent.chunks(70_001) {
                w.write_all(chunk).expect("write");
            }
            w.shutdown(Shutdown::Write).expect("shutdown");
        });
        let mut back = Vec::with_capacity(len);
        s.read_to_end(&mut back).expect("read");
        writer.join().expect("writer");
        assert_eq!(back.len(), len, "stream {id}: length");
        assert!(back == data, "stream {id}: bytes differ");
    }

    fn many(addr: &str) {
        let workers: Vec<_> = (1..=4u8)
            .map(|id| {
                let addr = addr.to_owned();
                thread::spawn(move || round_trip(&addr, id, 3_000_000 + id as usize * 7_919))
            })
            .collect();
        for w in workers {
            w.join().expect("stream");
        }
        round_trip(addr, 9, 0);
        round_trip(addr, 10, 1);
    }

    fn pair(join: fn(TcpStream, TcpStream)) {
        let echo = echo_service();
        let (inner, inner_addr) = listener();
        let (outer, outer_addr) = listener();
        thread::spawn(move || serve_pairs(inner, &echo, join));
        thread::spawn(move || serve_pairs(outer, &inner_addr, join));
        many(&outer_addr);
    }

    fn mux(plain: bool) {
        let echo = echo_service();
        let (users, users_addr) = listener();
        let (tunnel, tunnel_addr) = listener();
        thread::spawn(move || mux_server(users, tunnel, plain));
        thread::spawn(move || mux_client(&tunnel_addr, &echo, plain));
        many(&users_addr);
    }

    #[test]
    fn splice_relays_move_every_byte() {
        pair(join_splice);
    }

    #[test]
    fn copy_relays_move_every_byte() {
        pair(join_copy);
    }

    #[test]
    fn mux_relay_with_aes_moves_every_byte() {
        mux(false);
    }

    #[test]
    fn mux_relay_without_encryption_moves_every_byte() {
        mux(true);
    }
}
