//! Attaching to a persistent TUN device that lives in a named network namespace.
//!
//! The benchmark script creates the devices (`ip netns exec NS ip tuntap add dev tl0 mode tun`)
//! and gives them addresses; this module only enters the namespace (`setns(2)` on
//! `/run/netns/NAME`, which moves the calling thread alone) and attaches a file descriptor to the
//! device with `TUNSETIFF`. The descriptor stays bound to that device whatever namespace the thread
//! is in afterwards, so one process can hold both ends of the link.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TUNSETIFF` = `_IOW('T', 202, int)` (linux/if_tun.h).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// Layer-3 device, no packet-information prefix: every `read` is one IP packet.
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// The part of `struct ifreq` that `TUNSETIFF` reads (name, then flags), padded to its full size.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Enters network namespace `ns` (a name under `/run/netns`) on the calling thread.
pub fn enter_netns(ns: &str) -> io::Result<()> {
    let f = File::open(format!("/run/netns/{ns}"))
        .map_err(|e| io::Error::new(e.kind(), format!("netns {ns}: {e}")))?;
    // SAFETY: setns only reads the descriptor, which is valid for the duration of the call.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens `/dev/net/tun` and attaches to the existing TUN device `dev` in the current namespace.
pub fn attach(dev: &str) -> io::Result<OwnedFd> {
    let name = CString::new(dev).map_err(|_| io::Error::other("device name contains NUL"))?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::Error::other(format!("device name too long: {dev}")));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    for (dst, src) in req.name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a properly sized and initialised `struct ifreq` that outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("TUNSETIFF {dev}: {e}")));
    }
    Ok(OwnedFd::from(file))
}

/// Reads one packet; returns its length.
pub fn read_packet(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes one packet (the kernel takes it as received on the device).
pub fn write_packet(fd: &OwnedFd, pkt: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: `pkt` is valid for reads of `pkt.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), pkt.as_ptr().cast(), pkt.len()) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Duplicates a descriptor so the reader and the writer of one device each own theirs.
pub fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: dup on a valid descriptor; the result, if valid, is owned by the returned value.
    let n = unsafe { libc::dup(fd.as_raw_fd()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}
