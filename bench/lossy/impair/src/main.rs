//! `impair`: a user-space stand-in for `tc netem delay D loss P` (this machine's kernel has no
//! netem qdisc). It joins two TUN devices, one in each of two network namespaces, and forwards
//! every IP packet from one to the other after a fixed delay, dropping each packet independently
//! with a fixed probability. Each direction has its own delay and loss.
//!
//! Per direction there are two threads: a reader that takes packets off the source device, draws
//! the loss, stamps the due time and queues them (a bounded FIFO: the delay is constant, so the
//! order of due times is the order of arrival), and a writer that sleeps until the head is due
//! and writes it into the destination device. No reordering, no jitter, no rate limit: the only
//! bottleneck is this program's own forwarding rate (see `bench/lossy/README.md`).
//!
//! On SIGTERM or SIGINT it prints per-direction counters to stderr and exits.
//!
//! ```text
//! impair --a NS:DEV --b NS:DEV [--ab DELAY_MS:LOSS_PCT] [--ba DELAY_MS:LOSS_PCT]
//!        [--queue PACKETS] [--seed N]
//! ```

mod tun;

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// One direction's impairment.
#[derive(Clone, Copy, Debug)]
struct Impairment {
    delay: Duration,
    /// Drop probability in [0, 1].
    loss: f64,
}

/// Counters for one direction, printed at exit.
#[derive(Default)]
struct Stats {
    received: AtomicU64,
    lost: AtomicU64,
    overflow: AtomicU64,
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    write_errors: AtomicU64,
}

struct Args {
    a: (String, String),
    b: (String, String),
    ab: Impairment,
    ba: Impairment,
    queue: usize,
    seed: u64,
}

const USAGE: &str = "usage: impair --a NS:DEV --b NS:DEV [--ab DELAY_MS:LOSS_PCT] \
[--ba DELAY_MS:LOSS_PCT] [--queue PACKETS] [--seed N]";

fn parse_endpoint(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((ns, dev)) if !ns.is_empty() && !dev.is_empty() => Ok((ns.into(), dev.into())),
        _ => Err(format!("expected NS:DEV, got {s:?}")),
    }
}

fn parse_impairment(s: &str) -> Result<Impairment, String> {
    let (d, l) = s
        .split_once(':')
        .ok_or_else(|| format!("expected DELAY_MS:LOSS_PCT, got {s:?}"))?;
    let delay_ms: f64 = d.parse().map_err(|_| format!("bad delay {d:?}"))?;
    let loss_pct: f64 = l.parse().map_err(|_| format!("bad loss {l:?}"))?;
    if !(0.0..=60_000.0).contains(&delay_ms) || !(0.0..=100.0).contains(&loss_pct) {
        return Err(format!(
            "out of range: {s:?} (delay 0..60000 ms, loss 0..100 %)"
        ));
    }
    Ok(Impairment {
        delay: Duration::from_secs_f64(delay_ms / 1000.0),
        loss: loss_pct / 100.0,
    })
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let none = Impairment {
        delay: Duration::ZERO,
        loss: 0.0,
    };
    let (mut a, mut b, mut ab, mut ba, mut queue, mut seed) = (None, None, none, none, 50_000, 1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--a" => a = Some(parse_endpoint(&val()?)?),
            "--b" => b = Some(parse_endpoint(&val()?)?),
            "--ab" => ab = parse_impairment(&val()?)?,
            "--ba" => ba = parse_impairment(&val()?)?,
            "--queue" => queue = val()?.parse().map_err(|_| "bad --queue".to_string())?,
            "--seed" => seed = val()?.parse().map_err(|_| "bad --seed".to_string())?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let a = a.ok_or_else(|| format!("--a is required\n{USAGE}"))?;
    let b = b.ok_or_else(|| format!("--b is required\n{USAGE}"))?;
    if queue == 0 {
        return Err("--queue must be positive".into());
    }
    Ok(Args {
        a,
        b,
        ab,
        ba,
        queue,
        seed,
    })
}

/// xorshift64*: a fast, seedable generator; statistical quality is ample for Bernoulli drops.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero (xorshift's fixed point); spread small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Reader half of a direction: device → loss → FIFO.
fn reader(
    src: OwnedFd,
    imp: Impairment,
    seed: u64,
    tx: SyncSender<(Instant, Vec<u8>)>,
    st: Arc<Stats>,
) {
    // Drop when next_u64() < threshold; loss = 1.0 saturates to u64::MAX (drop all but 1 in 2^64).
    let threshold = (imp.loss * u64::MAX as f64) as u64;
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match tun::read_packet(&src, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("impair: read: {e}");
                return;
            }
        };
        st.received.fetch_add(1, Ordering::Relaxed);
        if threshold > 0 && rng.next_u64() < threshold {
            st.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let due = Instant::now() + imp.delay;
        match tx.try_send((due, buf[..n].to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                st.overflow.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Writer half of a direction: FIFO → wait until due → device.
fn writer(dst: OwnedFd, rx: Receiver<(Instant, Vec<u8>)>, st: Arc<Stats>) {
    while let Ok((due, pkt)) = rx.recv() {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        match tun::write_packet(&dst, &pkt) {
            Ok(()) => {
                st.sent.fetch_add(1, Ordering::Relaxed);
                st.sent_bytes.fetch_add(pkt.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                st.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Starts one direction's two threads.
fn spawn_direction(
    name: &str,
    src: OwnedFd,
    dst: OwnedFd,
    imp: Impairment,
    queue: usize,
    seed: u64,
) -> std::io::Result<Arc<Stats>> {
    let st = Arc::new(Stats::default());
    let (tx, rx) = sync_channel(queue);
    let (s1, s2) = (st.clone(), st.clone());
    thread::Builder::new()
        .name(format!("{name}-rd"))
        .spawn(move || reader(src, imp, seed, tx, s1))?;
    thread::Builder::new()
        .name(format!("{name}-wr"))
        .spawn(move || writer(dst, rx, s2))?;
    Ok(st)
}

/// Blocks SIGTERM and SIGINT in this thread (and the threads it spawns afterwards) and returns
/// the set, so the main thread can `sigwait` for them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local, zero-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn print_stats(name: &str, imp: Impairment, st: &Stats) {
    eprintln!(
        "impair {name}: delay {:?} loss {:.2}%: received {} lost {} overflow {} sent {} ({} bytes) write_errors {}",
        imp.delay,
        imp.loss * 100.0,
        st.received.load(Ordering::Relaxed),
        st.lost.load(Ordering::Relaxed),
        st.overflow.load(Ordering::Relaxed),
        st.sent.load(Ordering::Relaxed),
        st.sent_bytes.load(Ordering::Relaxed),
        st.write_errors.load(Ordering::Relaxed),
    );
}

fn run(args: Args) -> std::io::Result<()> {
    let set = block_signals();
    tun::enter_netns(&args.a.0)?;
    let fd_a = tun::attach(&args.a.1)?;
    tun::enter_netns(&args.b.0)?;
    let fd_b = tun::attach(&args.b.1)?;
    let ab = spawn_direction(
        "ab",
        tun::dup(&fd_a)?,
        tun::dup(&fd_b)?,
        args.ab,
        args.queue,
        args.seed,
    )?;
    let ba = spawn_direction(
        "ba",
        fd_b,
        fd_a,
        args.ba,
        args.queue,
        args.seed.wrapping_add(1),
    )?;
    eprintln!(
        "impair: {}:{} <-> {}:{} up (a->b {:?} {:.2}%, b->a {:?} {:.2}%)",
        args.a.0,
        args.a.1,
        args.b.0,
        args.b.1,
        args.ab.delay,
        args.ab.loss * 100.0,
        args.ba.delay,
        args.ba.loss * 100.0
    );
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is a valid signal set; `sig` is a valid out pointer.
    unsafe { libc::sigwait(&set, &mut sig) };
    print_stats("a->b", args.ab, &ab);
    print_stats("b->a", args.ba, &ba);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("impair: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impair: {e}");
            ExitCode::FAILURE
        }
    }
}
