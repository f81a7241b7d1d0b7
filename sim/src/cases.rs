//! Seeded, replayable cases. Proptest picks the seeds; each seed then picks the fault schedule
//! (through the scenario's proptest strategy, drawn from a generator seeded with it) and
//! drives every random choice of the run (turmoil's and frp-rs's), so one number replays a
//! case exactly.
//!
//! - `SIM_SEED=<n>` runs only that seed (the replay a failure prints).
//! - `SIM_CASES=<n>` sets the number of seeds per scenario (default [`DEFAULT_CASES`]).
//! - `SIM_BASE=<n>` picks another deterministic series of seeds (default: the fixed series CI
//!   runs, so CI is reproducible).

use std::fmt::Debug;

use proptest::arbitrary::any;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Seeds per scenario by default: enough to vary schedules, few enough for CI on 2 cores.
pub const DEFAULT_CASES: u32 = 8;

/// The fault schedule `seed` picks from `strategy`.
pub fn schedule_for<S: Strategy>(strategy: &S, seed: u64) -> S::Value {
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed));
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    match strategy.new_tree(&mut runner) {
        Ok(tree) => tree.current(),
        Err(e) => panic!("strategy cannot produce a schedule: {e}"),
    }
}

/// Runs `scenario` for each seed (see the module docs for the environment variables). A
/// failure panics with the seed, the schedule, the error and the replay command.
pub fn run<S>(test: &str, strategy: S, scenario: impl Fn(u64, &S::Value) -> anyhow::Result<()>)
where
    S: Strategy,
    S::Value: Debug,
{
    for seed in seeds(test) {
        let schedule = schedule_for(&strategy, seed);
        tracing::info!("{test}: seed {seed}, schedule {schedule:?}");
        if let Err(e) = scenario(seed, &schedule) {
            panic!(
                "{test} failed with seed {seed}\n  schedule: {schedule:?}\n  error: {e:#}\n  \
                 replay: SIM_SEED={seed} cargo test -p sim --test {test}"
            );
        }
    }
}

/// The seeds to run: `SIM_SEED` alone, or `SIM_CASES` seeds from proptest's deterministic
/// generator (offset by `SIM_BASE` and the test name, so scenarios get different seeds).
pub fn seeds(test: &str) -> Vec<u64> {
    if let Some(seed) = env_u64("SIM_SEED") {
        return vec![seed];
    }
    let cases = env_u64("SIM_CASES").map_or(DEFAULT_CASES as usize, |n| n as usize);
    let base = env_u64("SIM_BASE").unwrap_or(0) ^ crate::world::sub_seed(0, test, 0);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(base));
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    (0..cases)
        .map(|_| match any::<u64>().new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("cannot draw a seed: {e}"),
        })
        .collect()
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&crate::world::sub_seed(seed, "cases", i as u64).to_le_bytes());
    }
    bytes
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}
