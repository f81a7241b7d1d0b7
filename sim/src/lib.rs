//! Deterministic network simulation of frp-rs: [`TurmoilNet`] implements the
//! [`transports::Net`] seam on turmoil's simulated network, so the real `frps` and `frpc` run
//! on simulated hosts with simulated time, loss, latency, partitions and restarts.
//! turmoil appears only in this crate; the production crates never see it.
//!
//! Layout: [`net`] (the seam), [`world`] (hosts, stepping, faults), [`setup`] (frps/frpc
//! config text), [`user`] (verified transfers through the tunnel), [`trace`] (the event log
//! every run produces), [`bounds`] (timing bounds derived from frp's constants), [`checks`]
//! (the properties), [`scenario`] (warm-up, baseline, common final checks), [`cases`]
//! (seeded, replayable proptest cases).
//!
//! The scenarios live in `tests/`: `partition`, `frps_restart`, `loss`, `health_group`,
//! `group_crash`, `reconnects`, `determinism`. Replay a failure with the `SIM_SEED=…` line it
//! prints; `SIM_CASES=n` runs more seeds; `SIM_TRACE=1` prints every run's trace.

pub mod bounds;
pub mod cases;
pub mod checks;
pub mod net;
pub mod scenario;
pub mod setup;
pub mod trace;
pub mod user;
pub mod world;

pub use net::TurmoilNet;
pub use trace::{Entry, Event, Trace, TransferOutcome};
pub use user::UserPlan;
pub use world::{Latency, World};
