//! frpc's service: logs in to frps, runs a control session, and logs in again when the session
//! ends, with frp v0.65.0's backoff (`client/service.go`: `loopLoginUntilSuccess`,
//! `keepControllerWorking`). The run id frps hands out is kept across sessions, so a re-login
//! replaces the old session on the server and the proxies are registered again.

use std::sync::Arc;
use std::time::Duration;

use control::{Login, Message};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use transports::{BoxStream, Connector, Net};

use crate::proxy::ProxyManager;
use crate::session::ClientSession;
use crate::settings::ClientSettings;
use crate::ClientError;

/// Version string frpc reports in `Login`.
pub const VERSION: &str = "0.65.0";

/// How long frpc waits for `LoginResp` (frp: 10 s read deadline).
const LOGIN_RESP_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in control connection, ready for a session.
pub(crate) struct LoggedIn {
    pub(crate) conn: BoxStream,
    pub(crate) connector: Arc<Connector>,
}

/// The long-lived client: settings, the socket seam and the run id across sessions.
pub(crate) struct Service<N: Net> {
    pub(crate) settings: Arc<ClientSettings>,
    pub(crate) net: N,
    pub(crate) run_id: String,
    pub(crate) proxies: Arc<ProxyManager>,
    pub(crate) shutdown: CancellationToken,
}

impl<N: Net> Service<N> {
    /// Runs until shutdown; fails only when the first login fails with `loginFailExit`.
    pub(crate) async fn run(mut self) -> Result<(), ClientError> {
        let first = self.login_loop(control::backoff::FIRST_LOGIN_MAX, self.settings.login_fail_exit).await?;
        let Some(mut session) = first else { return Ok(()) };
        let mut outer = control::backoff::ReconnectBackoff::new();
        loop {
            self.run_session(session).await;
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            // keepControllerWorking: limit churn when sessions die right after login.
            let delay = outer.next_delay(tokio::time::Instant::now().into_std(), &mut rand::thread_rng());
            if !self.sleep(delay).await {
                return Ok(());
            }
            match self.login_loop(control::backoff::RELOGIN_MAX, false).await? {
                Some(s) => session = s,
                None => return Ok(()),
            }
        }
    }

    async fn run_session(&mut self, logged: LoggedIn) {
        let session = ClientSession::new(
            self.settings.clone(),
            self.net.clone(),
            self.run_id.clone(),
            logged.connector.clone(),
            self.proxies.clone(),
            self.shutdown.child_token(),
        );
        session.run(logged.conn).await;
        logged.connector.close().await;
    }

    /// Tries to log in until it works. `Ok(None)` means shutdown; an error only when
    /// `exit_on_fail` (the first login with `loginFailExit`).
    async fn login_loop(
        &mut self,
        max_delay: Duration,
        exit_on_fail: bool,
    ) -> Result<Option<LoggedIn>, ClientError> {
        let mut backoff = control::backoff::LoginBackoff::new(max_delay);
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(None);
            }
            info!("try to connect to server...");
            let attempt = tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(None),
                r = self.login() => r,
            };
            match attempt {
                Ok(l) => return Ok(Some(l)),
                Err(e) => {
                    warn!("connect to server error: {e}");
                    if exit_on_fail {
                        return Err(ClientError::LoginFailed(e.to_string()));
                    }
                }
            }
            let delay = backoff.next_delay(&mut rand::thread_rng());
            if !self.sleep(delay).await {
                return Ok(None);
            }
        }
    }

    /// Sleeps unless shutdown comes first; false on shutdown.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// One login: open the transport, send `Login`, read `LoginResp` (frp `Service.login`).
    async fn login(&mut self) -> Result<LoggedIn, LoginError> {
        let connector = Arc::new(Connector::new(self.settings.transport.clone(), self.net.clone()));
        connector.open().await.map_err(LoginError::Transport)?;
        match self.login_on(&connector).await {
            Ok(conn) => Ok(LoggedIn { conn, connector }),
            Err(e) => {
                connector.close().await;
                Err(e)
            }
        }
    }

    async fn login_on(&mut self, connector: &Connector) -> Result<BoxStream, LoginError> {
        let mut conn = connector.connect().await.map_err(LoginError::Transport)?;
        let now = unix_now();
        let mut login = Login {
            version: VERSION.into(),
            os: std::env::consts::OS.into(),
            arch: go_arch().into(),
            user: self.settings.user.clone(),
            timestamp: now,
            run_id: self.run_id.clone(),
            metas: self.settings.metas.clone(),
            pool_count: i64::from(self.settings.pool_count),
            ..Default::default()
        };
        control::auth::set_login(&mut login, &self.settings.token, now);
        control::write_msg(&mut conn, &Message::Login(login)).await?;
        let resp = match tokio::time::timeout(LOGIN_RESP_TIMEOUT, control::read_msg(&mut conn)).await {
            Ok(Ok(Message::LoginResp(r))) => r,
            Ok(Ok(other)) => return Err(LoginError::Unexpected(other.type_name())),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(LoginError::Timeout),
        };
        if !resp.error.is_empty() {
            error!("{}", resp.error);
            return Err(LoginError::Refused(resp.error));
        }
        self.run_id = resp.run_id.clone();
        info!("login to server success, get run id [{}]", resp.run_id);
        Ok(conn)
    }
}

/// Why one login attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("{0}")]
    Transport(#[source] transports::TransportError),
    #[error("{0}")]
    Protocol(#[from] control::ProtocolError),
    #[error("{0}")]
    Refused(String),
    #[error("unexpected message [{0}] instead of LoginResp")]
    Unexpected(&'static str),
    #[error("i/o timeout waiting for LoginResp")]
    Timeout,
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Go's GOARCH name for this machine, as frp reports it in `Login.arch`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        other => other,
    }
}
