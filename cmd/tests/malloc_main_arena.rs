//! `cmd::malloc::tune` on the main thread, where glibc's main arena serves the binaries' main
//! shard: the churn rustls makes when it seals and sends records (16 KiB buffers allocated,
//! queued up to 256 KiB, then all freed) must stop re-faulting the heap. A test of its own with
//! `harness = false`, so that it runs on the process's main thread; the untuned case runs in a
//! child process (the same executable), since settings cannot be taken back.

use std::process::{Command, ExitCode};

const CHILD: &str = "FRP_RS_MALLOC_CHILD";
/// Size of a sealed TLS record buffer (16 KiB of plaintext, header, tag and content type).
const RECORD: usize = 16 * 1024 + 5 + 16 + 1;
/// Records queued before the socket takes them all (256 KiB).
const QUEUED: usize = 16;
const ROUNDS: usize = 2_000;

/// Minor page faults of this process so far (`minflt`, field 10 of `/proc/self/stat`).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    let after_comm = stat.rsplit_once(')').expect("no ')' in /proc/self/stat").1;
    let field = after_comm.split_whitespace().nth(7).expect("short stat");
    field.parse().expect("minflt is a number")
}

/// Page faults taken while queueing and freeing `ROUNDS` batches of records.
fn churn() -> u64 {
    let before = minor_faults();
    for round in 0..ROUNDS {
        let queue: Vec<Vec<u8>> = (0..QUEUED)
            .map(|i| {
                let mut record = Vec::with_capacity(RECORD);
                record.resize(RECORD, (round + i) as u8);
                record
            })
            .collect();
        std::hint::black_box(&queue);
    }
    minor_faults() - before
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        println!("{}", churn());
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("locating the test executable");
    let out = Command::new(exe)
        .env(CHILD, "1")
        .output()
        .expect("running the untuned child");
    let untuned: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("child printed {:?}", out));
    let tuned = match cmd::malloc::tune() {
        cmd::malloc::Tuned::Set => churn(),
        other => {
            eprintln!("malloc thresholds not set: {other:?}");
            return ExitCode::FAILURE;
        }
    };
    println!("minor page faults for {ROUNDS} rounds: untuned {untuned}, tuned {tuned}");
    // The premise: glibc's defaults re-fault the trimmed heap top (64 pages a round).
    if untuned < (ROUNDS as u64) * 16 {
        eprintln!("untuned churn took only {untuned} faults: the premise no longer holds");
        return ExitCode::FAILURE;
    }
    if tuned > untuned / 20 {
        eprintln!("tuned churn took {tuned} faults, untuned {untuned}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
