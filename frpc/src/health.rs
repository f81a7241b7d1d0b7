//! Health checks of a proxy's local service (frp v0.65.0 `client/health/health.go`):
//! every `intervalSeconds` a TCP connect or an HTTP `GET path` (2xx is healthy) with
//! `timeoutSeconds`; after `maxFailed` consecutive failures the proxy is closed on the server,
//! and it is registered again after the next success. A proxy with a health check starts
//! unhealthy and registers only once the first check passes, as frp does.
//!
//! [`HealthState`] is the pure bookkeeping; [`run_monitor`] does the IO through the `Net`
//! seam and reports transitions. One difference from frp: frp never resets its failure
//! counter, so after one recovery a single failure closes the proxy again; we count
//! *consecutive* failures, which is what `maxFailed` documents.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use transports::Net;

/// frp's defaults for unset (≤ 0) values.
const DEFAULT_INTERVAL: u32 = 10;
const DEFAULT_TIMEOUT: u32 = 3;
const DEFAULT_MAX_FAILED: u32 = 1;
/// How much of an HTTP response is read to find the status line.
const MAX_STATUS_LINE: usize = 1024;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// Connect to `host:port`.
    Tcp,
    /// `GET path` with these headers (`Host` among them overrides the request host).
    Http {
        path: String,
        headers: Vec<(String, String)>,
    },
}

/// A resolved `healthCheck` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthSpec {
    pub(crate) kind: CheckKind,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_failed: u32,
}

impl HealthSpec {
    /// From the config; `None` when no check is configured (or there is no local port).
    pub(crate) fn from_config(base: &conf::ProxyBase) -> Option<Self> {
        let hc = &base.health_check;
        let kind = match hc.check_type? {
            conf::HealthCheckType::Tcp => CheckKind::Tcp,
            conf::HealthCheckType::Http => CheckKind::Http {
                path: if hc.path.starts_with('/') {
                    hc.path.clone()
                } else {
                    format!("/{}", hc.path)
                },
                headers: hc
                    .http_headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            },
        };
        if base.local_port == 0 {
            return None;
        }
        let or = |v: u32, d: u32| if v == 0 { d } else { v };
        Some(Self {
            kind,
            host: base.local_ip.clone(),
            port: base.local_port,
            interval: Duration::from_secs(u64::from(or(hc.interval_seconds, DEFAULT_INTERVAL))),
            timeout: Duration::from_secs(u64::from(or(hc.timeout_seconds, DEFAULT_TIMEOUT))),
            max_failed: or(hc.max_failed, DEFAULT_MAX_FAILED),
        })
    }
}

/// A change of health to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The service answers (again): register the proxy.
    Healthy,
    /// `maxFailed` consecutive failures: close the proxy on the server.
    Unhealthy,
}

/// Pure bookkeeping of check results.
#[derive(Debug, Clone)]
pub(crate) struct HealthState {
    ok: bool,
    failed: u32,
    max_failed: u32,
}

impl HealthState {
    /// Starts unhealthy, as frp does: nothing is registered before a check passes.
    pub(crate) fn new(max_failed: u32) -> Self {
        Self {
            ok: false,
            failed: 0,
            max_failed: max_failed.max(1),
        }
    }

    /// Records one check result; returns the transition it causes, if any.
    pub(crate) fn record(&mut self, success: bool) -> Option<Transition> {
        if success {
            self.failed = 0;
            if !self.ok {
                self.ok = true;
                return Some(Transition::Healthy);
            }
            return None;
        }
        self.failed = self.failed.saturating_add(1);
        if self.ok && self.failed >= self.max_failed {
            self.ok = false;
            return Some(Transition::Unhealthy);
        }
        None
    }
}

/// Checks `spec` until `cancel`, calling `report` on every transition.
pub(crate) async fn run_monitor<N: Net>(
    net: N,
    spec: HealthSpec,
    cancel: CancellationToken,
    report: impl Fn(Transition) + Send,
) {
    let mut state = HealthState::new(spec.max_failed);
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(spec.timeout, check_once(&net, &spec)) => r,
        };
        let success = match result {
            Ok(Ok(())) => {
                debug!("do one health check success");
                true
            }
            Ok(Err(e)) => {
                warn!("do one health check failed: {e}");
                false
            }
            Err(_) => {
                warn!(
                    "do one health check failed: timeout after {:?}",
                    spec.timeout
                );
                false
            }
        };
        if let Some(t) = state.record(success) {
            match t {
                Transition::Healthy => info!("health check success"),
                Transition::Unhealthy => info!("health check failed"),
            }
            report(t);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(spec.interval) => {}
        }
    }
}

async fn check_once<N: Net>(net: &N, spec: &HealthSpec) -> std::io::Result<()> {
    let mut conn = net.connect_tcp(&spec.host, spec.port).await?;
    let CheckKind::Http { path, headers } = &spec.kind else {
        return Ok(());
    };
    conn.write_all(&http_request(&spec.host, spec.port, path, headers))
        .await?;
    let mut buf = vec![0u8; MAX_STATUS_LINE];
    let mut len = 0;
    while !buf[..len].contains(&b'\n') && len < buf.len() {
        let n = conn.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    match parse_status(&buf[..len]) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(std::io::Error::other(format!(
            "do http health check, StatusCode is [{code}] not 2xx"
        ))),
        None => Err(std::io::Error::other(
            "do http health check: malformed response",
        )),
    }
}

/// A minimal HTTP/1.1 GET (the connection is closed after the status line is read).
fn http_request(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let host_header = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("{host}:{port}"));
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n");
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// The status code of an HTTP/1.x status line.
fn parse_status(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_unhealthy_and_needs_consecutive_failures() {
        let mut s = HealthState::new(2);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), Some(Transition::Healthy));
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), Some(Transition::Unhealthy));
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), Some(Transition::Healthy));
    }

    #[test]
    fn status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 500 x\r\n"), Some(500));
        assert_eq!(parse_status(b"SSH-2.0-x\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn request_uses_host_header_override() {
        let r = http_request(
            "127.0.0.1",
            80,
            "/h",
            &[("Host".into(), "x.com".into()), ("A".into(), "b".into())],
        );
        let r = String::from_utf8(r).expect("utf8");
        assert!(r.starts_with("GET /h HTTP/1.1\r\nHost: x.com\r\n"));
        assert!(r.contains("A: b\r\n"));
    }
}
