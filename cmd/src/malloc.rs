//! glibc malloc settings for the binaries' steady streams of short-lived buffers.
//!
//! rustls seals every TLS record into a freshly allocated `Vec` and frees it once the socket has
//! taken it; a session's connection queues up to 256 KiB of them
//! (`transports::tls::MUX_SEND_BUFFER`). When that traffic runs on the main thread (one shard of
//! the binaries' runtimes, `transports::shard`) it comes from glibc's main arena, which gives
//! the top of its heap back to the kernel whenever more than 128 KiB of it is free (the default
//! `M_TRIM_THRESHOLD`) and takes it again a moment later: each 4 KiB page is faulted in and
//! zeroed anew. Measured through the default transport (TLS + tcpMux, one iperf3 stream, frps
//! with `TOKIO_WORKER_THREADS=1`): 130 k minor page faults per GiB moved with glibc's defaults,
//! about 400 with the thresholds below; see `bench/NOTES.md`.
//!
//! The heap top may now keep up to [`TRIM_THRESHOLD`] free before it is trimmed, and blocks up
//! to [`MMAP_THRESHOLD`] come from the heap rather than from a `mmap` of their own (setting
//! either threshold turns off glibc's own adjustment of both). A user who tunes malloc through
//! the environment (`GLIBC_TUNABLES` or the older `MALLOC_*_` variables) keeps their settings.

/// Free bytes the top of a malloc heap may keep before glibc returns them to the kernel.
pub const TRIM_THRESHOLD: usize = 4 << 20;
/// Blocks this large or larger get a `mmap` of their own.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// What [`tune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuned {
    /// The thresholds above are set.
    Set,
    /// The environment tunes malloc already; nothing was changed.
    LeftToEnvironment,
    /// Not glibc, or glibc refused a setting.
    Unavailable,
}

static APPLIED: std::sync::OnceLock<Tuned> = std::sync::OnceLock::new();

/// Sets the thresholds for this process (once; later calls return the first outcome); call it
/// before starting threads.
pub fn tune() -> Tuned {
    *APPLIED.get_or_init(|| {
        let vars = std::env::vars_os().filter_map(|(k, v)| {
            Some((k.into_string().ok()?, v.into_string().unwrap_or_default()))
        });
        if tuned_by_environment(vars) {
            Tuned::LeftToEnvironment
        } else {
            set_thresholds()
        }
    })
}

/// What [`tune`] did, if it ran.
pub fn applied() -> Option<Tuned> {
    APPLIED.get().copied()
}

/// Whether these variables tune glibc's malloc.
fn tuned_by_environment(vars: impl Iterator<Item = (String, String)>) -> bool {
    vars.into_iter().any(|(key, value)| {
        (key == "GLIBC_TUNABLES" && value.contains("glibc.malloc."))
            || (key.starts_with("MALLOC_") && key.ends_with('_'))
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_thresholds() -> Tuned {
    let to_int = |n: usize| libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt takes two integers and changes only malloc's own parameters (under its
    // lock); it has no pointer arguments and no preconditions. Measured reason: the module doc.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, to_int(MMAP_THRESHOLD)) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, to_int(TRIM_THRESHOLD)) == 1
    };
    if ok {
        Tuned::Set
    } else {
        Tuned::Unavailable
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> Tuned {
    Tuned::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn malloc_settings_from_the_environment_are_kept() {
        assert!(tuned_by_environment(vars(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_threshold=1"
        )])));
        assert!(tuned_by_environment(vars(&[("MALLOC_ARENA_MAX_", "2")])));
        assert!(!tuned_by_environment(vars(&[
            ("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=1"),
            ("MALLOC_CONF", "x"),
            ("PATH", "/bin"),
        ])));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_thresholds() {
        assert_eq!(set_thresholds(), Tuned::Set);
    }
}
