//! frpc's service: logs in to frps, runs a control session, and logs in again when the session
//! ends, with frp v0.65.0's backoff (`client/service.go`: `loopLoginUntilSuccess`,
//! `keepControllerWorking`). The run id frps hands out is kept across sessions, so a re-login
//! replaces the old session on the server and the proxies are registered again.

use std::sync::Arc;
use std::time::Duration;

use control::{FastBackoff, Login, LoginBackoff, LoginRetry, Message};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use transports::{BoxStream, Connector, Net};

use crate::proxy::ProxyManager;
use crate::session::ClientSession;
use crate::settings::ClientSettings;
use crate::ClientError;

/// Version string frpc reports in `Login` and `-v`: the frp version we are compatible with.
pub const VERSION: &str = control::FRP_VERSION;

/// How long frpc waits for `LoginResp` (frp: 10 s read deadline).
pub const LOGIN_RESP_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in control connection, ready for a session.
pub(crate) struct LoggedIn<N: Net> {
    pub(crate) conn: BoxStream,
    pub(crate) connector: Arc<Connector<N>>,
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
        let first = LoginBackoff::first_login(self.settings.login_fail_exit);
        let Some(mut session) = self.login_loop(first).await? else {
            return Ok(());
        };
        // keepControllerWorking: the first re-login after a session ends is immediate; later
        // ones are paced by the fast-retry backoff so a session that dies right after login
        // does not turn into a reconnect storm.
        let mut outer = FastBackoff::reconnect();
        let mut ended_before = false;
        loop {
            self.run_session(session).await;
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            if ended_before {
                let delay = outer.next_delay(
                    tokio::time::Instant::now().into_std(),
                    &mut StdRng::seed_from_u64(self.net.random_u64()),
                );
                if !self.sleep(delay).await {
                    return Ok(());
                }
            }
            ended_before = true;
            match self.login_loop(LoginBackoff::relogin()).await? {
                Some(s) => session = s,
                None => return Ok(()),
            }
        }
    }

    async fn run_session(&mut self, logged: LoggedIn<N>) {
        let session = ClientSession::new(
            self.settings.clone(),
            self.net.clone(),
            self.run_id.clone(),
            logged.connector.clone(),
            self.proxies.clone(),
            self.shutdown.child_token(),
        );
        session.run(logged.conn).await;
        logged.connector.close();
    }

    /// Tries to log in until it works (frp `loopLoginUntilSuccess`). `Ok(None)` means
    /// shutdown; an error only when `backoff` says to exit (first login with `loginFailExit`).
    async fn login_loop(
        &mut self,
        mut backoff: LoginBackoff,
    ) -> Result<Option<LoggedIn<N>>, ClientError> {
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(None);
            }
            info!("try to connect to server...");
            let shutdown = self.shutdown.clone();
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                r = self.login() => r,
            };
            let err = match attempt {
                Ok(l) => return Ok(Some(l)),
                Err(e) => e,
            };
            warn!("connect to server error: {err}");
            match backoff.on_failure(
                tokio::time::Instant::now().into_std(),
                &mut StdRng::seed_from_u64(self.net.random_u64()),
            ) {
                LoginRetry::Exit => return Err(ClientError::LoginFailed(err.to_string())),
                LoginRetry::After(delay) => {
                    if !self.sleep(delay).await {
                        return Ok(None);
                    }
                }
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
    async fn login(&mut self) -> Result<LoggedIn<N>, LoginError> {
        let connector = Connector::new(self.settings.transport.clone(), self.net.clone())
            .map_err(LoginError::Transport)?;
        let connector = Arc::new(connector);
        connector.open().await.map_err(LoginError::Transport)?;
        match self.login_on(&connector).await {
            Ok(conn) => Ok(LoggedIn { conn, connector }),
            Err(e) => {
                connector.close();
                Err(e)
            }
        }
    }

    async fn login_on(&mut self, connector: &Connector<N>) -> Result<BoxStream, LoginError> {
        let mut conn = connector.connect().await.map_err(LoginError::Transport)?;
        let now = unix_now();
        let mut login = Login {
            version: VERSION.into(),
            os: control::go_os(std::env::consts::OS).into(),
            arch: control::go_arch(std::env::consts::ARCH).into(),
            user: self.settings.user.clone(),
            timestamp: now,
            run_id: self.run_id.clone(),
            metas: self.settings.metas.clone(),
            pool_count: i64::from(self.settings.pool_count),
            ..Default::default()
        };
        self.settings.auth.set_login(&mut login);
        control::write_msg(&mut conn, &Message::Login(login)).await?;
        let resp =
            match tokio::time::timeout(LOGIN_RESP_TIMEOUT, control::read_msg(&mut conn)).await {
                Ok(Ok(Message::LoginResp(r))) => r,
                Ok(Ok(other)) => return Err(LoginError::Unexpected(other.msg_type().name())),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(LoginError::Timeout(connector.describe())),
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
    #[error("{0}: i/o timeout waiting for LoginResp")]
    Timeout(String),
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
