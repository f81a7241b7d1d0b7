//! The user: connects to a proxy's remote port on frps and pushes transfers through the tunnel
//! to an echo backend, in lock step (one chunk out, wait for it to come back), verifying every
//! echoed byte against what was sent. Each transfer's payload is derived from its id and chunk
//! index, so bytes from another connection, a repeated chunk or a reordering are all caught.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::trace::{Event, Trace, TransferOutcome};
use crate::world::FRPS;

/// What the user does.
#[derive(Debug, Clone)]
pub struct UserPlan {
    /// The proxy's remote port on frps.
    pub port: u16,
    /// When the first transfers start.
    pub start: Duration,
    /// No transfer starts after this; the client ends once the last one does.
    pub stop: Duration,
    /// Transfers running at once (each worker runs its transfers one after another).
    pub workers: u64,
    /// Chunks per transfer.
    pub chunks: usize,
    /// Bytes per chunk.
    pub chunk_size: usize,
    /// Pause between chunks (spreads a transfer over time, so faults hit it mid-way).
    pub gap: Duration,
    /// Pause between a worker's transfers.
    pub interval: Duration,
    /// A transfer without progress for this long is abandoned.
    pub stall: Duration,
}

impl Default for UserPlan {
    fn default() -> Self {
        Self {
            port: 6000,
            start: Duration::from_secs(2),
            stop: Duration::from_secs(60),
            workers: 1,
            chunks: 8,
            chunk_size: 4096,
            gap: Duration::from_millis(50),
            interval: Duration::from_millis(500),
            stall: Duration::from_secs(5),
        }
    }
}

impl UserPlan {
    /// The longest a transfer can take: connecting plus every chunk at the stall limit.
    pub fn max_transfer_time(&self) -> Duration {
        (self.stall + self.gap) * (self.chunks as u32 + 1)
    }

    /// How long a transfer takes on a healthy network with links of at most `max_latency`:
    /// per chunk the gap plus a round trip over three links (user–frps, frps–frpc,
    /// frpc–backend), each hop taking up to a step longer than its latency.
    pub fn transfer_time(&self, max_latency: Duration) -> Duration {
        let round_trip = (max_latency + crate::world::TICK) * 6;
        (self.gap + round_trip) * (self.chunks as u32 + 1)
    }
}

/// Runs `plan`, recording one [`Event::Transfer`] per transfer.
pub async fn run(plan: UserPlan, trace: Trace) {
    tokio::time::sleep(plan.start).await;
    let workers: Vec<_> = (0..plan.workers)
        .map(|w| {
            let plan = plan.clone();
            let trace = trace.clone();
            tokio::task::spawn_local(worker(w, plan, trace))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

async fn worker(w: u64, plan: UserPlan, trace: Trace) {
    // Stagger the workers over one transfer's length, so at any moment most are mid-transfer.
    let stagger = plan.gap * plan.chunks as u32 / plan.workers.max(1) as u32;
    tokio::time::sleep(stagger * w as u32).await;
    let mut n = 0;
    while turmoil::sim_elapsed().unwrap_or_default() < plan.stop {
        let id = w + n * plan.workers;
        n += 1;
        let outcome = transfer(id, &plan).await;
        trace.record(Event::Transfer(outcome));
        tokio::time::sleep(plan.interval).await;
    }
}

/// The bytes of chunk `k` of transfer `id`.
pub fn chunk(id: u64, k: usize, len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(id.wrapping_mul(0x9e37_79b9) ^ ((k as u64) << 40));
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    buf
}

async fn transfer(id: u64, plan: &UserPlan) -> TransferOutcome {
    let mut out = TransferOutcome {
        id,
        started: turmoil::sim_elapsed().unwrap_or_default(),
        sent: 0,
        echoed: 0,
        complete: false,
        error: None,
        corrupt: false,
    };
    let connect = turmoil::net::TcpStream::connect((FRPS, plan.port));
    let mut conn = match tokio::time::timeout(plan.stall, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
        Err(_) => {
            out.error = Some("connect: stalled".into());
            return out;
        }
    };
    let mut back = vec![0u8; plan.chunk_size];
    for k in 0..plan.chunks {
        let data = chunk(id, k, plan.chunk_size);
        match tokio::time::timeout(plan.stall, conn.write_all(&data)).await {
            Ok(Ok(())) => out.sent += data.len(),
            Ok(Err(e)) => {
                out.error = Some(format!("write: {e}"));
                return out;
            }
            Err(_) => {
                out.error = Some("write: stalled".into());
                return out;
            }
        }
        let mut got = 0;
        while got < back.len() {
            match tokio::time::timeout(plan.stall, conn.read(&mut back[got..])).await {
                Ok(Ok(0)) => {
                    out.error = Some("read: closed".into());
                    return out;
                }
                Ok(Ok(n)) => {
                    if back[got..got + n] != data[got..got + n] {
                        out.corrupt = true;
                        out.error = Some(format!("corrupt echo in chunk {k} at byte {got}"));
                        return out;
                    }
                    got += n;
                    out.echoed += n;
                }
                Ok(Err(e)) => {
                    out.error = Some(format!("read: {e}"));
                    return out;
                }
                Err(_) => {
                    out.error = Some("read: stalled".into());
                    return out;
                }
            }
        }
        if !plan.gap.is_zero() {
            tokio::time::sleep(plan.gap).await;
        }
    }
    out.complete = true;
    out
}
