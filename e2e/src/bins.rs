//! Which implementation runs, and where its binaries are.
//!
//! The real frp 0.65.0 binaries come from `FRP_BIN_DIR` or `<workspace>/.cache/frp-0.65.0`
//! (fetched by `scripts/fetch-frp.sh`, whose sha256 sums are checked here once per test
//! process). Ours are the `frps`/`frpc` binaries cargo built next to the test executable
//! (`target/<profile>/`), or in `FRP_RS_BIN_DIR` when set.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// sha256 of frp 0.65.0 `frps` (linux amd64), as pinned in `scripts/fetch-frp.sh`.
pub const REAL_FRPS_SHA256: &str =
    "02b50823f330d0486f334d6aa9e448c4d0a26f553a691d167aae8358baab89ee";
/// sha256 of frp 0.65.0 `frpc` (linux amd64), as pinned in `scripts/fetch-frp.sh`.
pub const REAL_FRPC_SHA256: &str =
    "a89129b922f91f1327853a46da65136c52ad421c85315299d333ec06da3f3bbb";

/// An implementation of frp: this workspace's or the real Go one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Impl {
    /// frp-rs, built from this workspace.
    Ours,
    /// The real frp 0.65.0 binaries.
    Real,
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impl::Ours => "ours",
            Impl::Real => "real",
        })
    }
}

/// The two programs of frp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The server, `frps`.
    Frps,
    /// The client, `frpc`.
    Frpc,
}

impl Role {
    /// The binary's file name.
    pub fn bin_name(self) -> &'static str {
        match self {
            Role::Frps => "frps",
            Role::Frpc => "frpc",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.bin_name())
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Path of `role`'s binary for implementation `imp`, checked to exist (and, for the real
/// binaries, to have the pinned sha256 when `sha256sum` is available).
pub fn binary(imp: Impl, role: Role) -> Result<PathBuf> {
    match imp {
        Impl::Real => real_binary(role),
        Impl::Ours => our_binary(role),
    }
}

fn real_binary(role: Role) -> Result<PathBuf> {
    let dir = match std::env::var_os("FRP_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(".cache").join("frp-0.65.0"),
    };
    let path = dir.join(role.bin_name());
    if !path.is_file() {
        bail!(
            "real frp 0.65.0 `{role}` not found at {}: run scripts/fetch-frp.sh \
             (or point FRP_BIN_DIR at a folder holding frps and frpc)",
            path.display()
        );
    }
    let expected = match role {
        Role::Frps => REAL_FRPS_SHA256,
        Role::Frpc => REAL_FRPC_SHA256,
    };
    static FRPS_OK: OnceLock<Result<(), String>> = OnceLock::new();
    static FRPC_OK: OnceLock<Result<(), String>> = OnceLock::new();
    let cell = match role {
        Role::Frps => &FRPS_OK,
        Role::Frpc => &FRPC_OK,
    };
    // Hashing 20 MB per spawn would be wasteful; once per test process is enough.
    if let Err(msg) = cell.get_or_init(|| check_sha256(&path, expected)) {
        bail!("{msg}");
    }
    Ok(path)
}

/// Compares the file's sha256 with `expected` using coreutils' `sha256sum`; when that tool
/// is missing the check is skipped (it only guards against a wrong download).
fn check_sha256(path: &Path, expected: &str) -> Result<(), String> {
    let Ok(out) = Command::new("sha256sum").arg(path).output() else {
        return Ok(());
    };
    if !out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let actual = text.split_whitespace().next().unwrap_or_default();
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(format!(
            "{} has sha256 {actual}, expected {expected} (frp 0.65.0 linux amd64): \
             run scripts/fetch-frp.sh",
            path.display()
        ))
    }
}

/// Folder holding our binaries: `FRP_RS_BIN_DIR`, else `target/<profile>/` found from the
/// running test executable (`target/<profile>/deps/<test>-<hash>`).
pub fn our_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FRP_RS_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut dir = exe
        .parent()
        .context("test executable has no parent folder")?
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

fn our_binary(role: Role) -> Result<PathBuf> {
    let path = our_bin_dir()?.join(role.bin_name());
    if !path.is_file() {
        bail!(
            "our `{role}` binary not found at {}: run `cargo build --bins` first \
             (the e2e tests do not build it)",
            path.display()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_dir_is_the_profile_dir() {
        let dir = our_bin_dir().expect("bin dir");
        assert_ne!(dir.file_name().and_then(|n| n.to_str()), Some("deps"));
    }

    #[test]
    fn sha_mismatch_is_reported() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        match check_sha256(file.path(), REAL_FRPS_SHA256) {
            Ok(()) => {} // sha256sum missing on this machine: nothing to check
            Err(msg) => assert!(msg.contains("fetch-frp.sh"), "{msg}"),
        }
    }
}
