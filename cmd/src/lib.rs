//! What the `frps` and `frpc` binaries share at their edge, outside the libraries that do the
//! work: log output in frp's format ([`log`]), frp's command-line flag spelling ([`args`]), glibc
//! malloc settings ([`malloc`]) and turning SIGINT/SIGTERM into a shutdown ([`signal`]).

pub mod args;
pub mod log;
pub mod malloc;
pub mod signal;
