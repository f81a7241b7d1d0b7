//! The frps service: binds the control listener, accepts logical connections (after the
//! transport layer's sniffing, TLS and yamux), reads each one's first message within 10 s and
//! dispatches it: `Login` opens a control session, `NewWorkConn` joins a client's work
//! connection pool, `NewVisitorConn` goes to a visitor listener. Mirrors frp v0.65.0
//! `server/service.go` (`handleConnection`, `RegisterControl`, `RegisterWorkConn`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use control::{
    wire_error, AuthVerifier, Login, LoginResp, Message, NewVisitorConn, NewVisitorConnResp,
    NewWorkConn, StartWorkConn,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn, Instrument};
use transports::{BoxStream, Net, ServerListener};

use crate::registry::Registry;
use crate::session::{ControlHandle, ControlSession};
use crate::settings::ServerSettings;
use crate::ServerError;

/// frp's `connReadTimeout`: how long a new connection may take to send its first message.
const FIRST_MSG_TIMEOUT: Duration = Duration::from_secs(10);

/// Version string frps reports in `LoginResp` and `-v`: the frp version we are compatible with.
pub const VERSION: &str = control::FRP_VERSION;

/// State shared by every task of one running server.
pub(crate) struct Shared<N: Net> {
    pub(crate) settings: ServerSettings,
    pub(crate) net: N,
    pub(crate) registry: Registry,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

/// A bound, not yet serving frps. Tests use it to learn the port the OS picked.
pub struct Server<N: Net> {
    shared: Arc<Shared<N>>,
    listener: ServerListener,
}

impl<N: Net> Server<N> {
    /// Binds the listeners described by `settings`.
    pub async fn bind(
        settings: ServerSettings,
        net: N,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        let listener =
            ServerListener::bind_with_cancel(settings.listener.clone(), net.clone(), &shutdown)
                .await
                .map_err(ServerError::Listen)?;
        info!("frps tcp listen on {}", listener.local_addr());
        let registry = Registry::new(&settings);
        let shared = Arc::new(Shared {
            settings,
            net,
            registry,
            tasks: TaskTracker::new(),
            shutdown,
        });
        Ok(Self { shared, listener })
    }

    /// The control listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// A handle reading the server's live counts, valid while and after it serves (tests and
    /// the simulator check for leaks and lost or duplicated proxies with it).
    pub fn stats(&self) -> StatsHandle<N> {
        StatsHandle(self.shared.clone())
    }

    /// Serves until `shutdown` is cancelled, then closes every session and waits for them.
    pub async fn serve(mut self) -> Result<(), ServerError> {
        info!("frps started successfully");
        let shutdown = self.shared.shutdown.clone();
        // Each logical connection is served on the task of the connection it came in on (with
        // shards: its shard), without a hop through this loop.
        let shared = self.shared.clone();
        self.listener.dispatch_here(Box::new(move |conn, peer| {
            if shared.shutdown.is_cancelled() {
                return;
            }
            let task = handle_connection(shared.clone(), conn, peer);
            drop(shared.tasks.spawn(task));
        }));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept_homed() => match accepted {
                    Ok((conn, peer, home)) => {
                        let shared = self.shared.clone();
                        let task = handle_connection(shared, conn, peer);
                        // On the shard of the connection the logical one came in on, with
                        // every task it starts (session, proxy listeners, user connections).
                        match home {
                            Some(home) => home.spawn(self.shared.tasks.track_future(task)),
                            None => drop(self.shared.tasks.spawn(task)),
                        }
                    }
                    Err(e) => {
                        // Shutdown closes the listener too; only an unexpected close is news.
                        if !shutdown.is_cancelled() {
                            warn!("listener for incoming connections from client closed: {e}");
                        }
                        break;
                    }
                },
            }
        }
        drop(self.listener);
        self.shared.registry.close_all();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        info!("frps stopped");
        Ok(())
    }
}

/// A snapshot of a server's live state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Logged-in clients (control sessions).
    pub clients: usize,
    /// Registered proxy names, sorted.
    pub proxies: Vec<String>,
    /// Members per tcp load-balancing group, sorted by group name.
    pub groups: Vec<(String, usize)>,
    /// Work connections waiting in the clients' pools.
    pub pooled_work_conns: usize,
    /// Live tasks: connection handshakes, control sessions, proxy listeners, user connections.
    pub tasks: usize,
}

/// Reads a server's [`Stats`]; cheap to clone.
#[derive(Clone)]
pub struct StatsHandle<N: Net>(Arc<Shared<N>>);

impl<N: Net> StatsHandle<N> {
    /// The counts right now.
    pub fn snapshot(&self) -> Stats {
        let registry = &self.0.registry;
        Stats {
            clients: registry.client_count(),
            proxies: registry.proxy_names(),
            groups: registry.groups().member_counts(),
            pooled_work_conns: registry.pooled_work_conns(),
            tasks: self.0.tasks.len(),
        }
    }
}

/// Reads the first message of a new logical connection and dispatches it.
async fn handle_connection<N: Net>(shared: Arc<Shared<N>>, mut conn: BoxStream, peer: SocketAddr) {
    let first = match tokio::time::timeout(FIRST_MSG_TIMEOUT, ::control::read_msg(&mut conn)).await
    {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            warn!("connection from [{peer}] closed: failed to read first message: {e}");
            return;
        }
        Err(_) => {
            warn!("connection from [{peer}] closed: no message within {FIRST_MSG_TIMEOUT:?}");
            return;
        }
    };
    // The control session's future is large (~10 KiB): boxed, so that the work connections
    // served here, one task each, do not carry (and copy on spawn) its space.
    match first {
        Message::Login(login) => Box::pin(register_control(shared, conn, peer, login)).await,
        Message::NewWorkConn(m) => register_work_conn(&shared, conn, peer, m).await,
        Message::NewVisitorConn(m) => Box::pin(register_visitor_conn(&shared, conn, m)).await,
        other => {
            warn!(
                "error message type [{}] for the new connection [{peer}]",
                other.msg_type()
            );
        }
    }
}

async fn register_control<N: Net>(
    shared: Arc<Shared<N>>,
    mut conn: BoxStream,
    peer: SocketAddr,
    mut login: Login,
) {
    if login.run_id.is_empty() {
        let mut rng = StdRng::seed_from_u64(shared.net.random_u64());
        login.run_id = ::control::generate_run_id(&mut rng);
    }
    let span = info_span!("control", run_id = %login.run_id);
    async move {
        info!(
            "client login info: ip [{peer}] version [{}] hostname [{}] os [{}] arch [{}]",
            login.version, login.hostname, login.os, login.arch
        );
        if let Err(e) = shared.registry.verifier().verify_login(&login) {
            warn!("register control error: {e}");
            let resp = LoginResp {
                version: VERSION.into(),
                error: e.wire_message(shared.settings.detailed_errors_to_client),
                ..Default::default()
            };
            let _ = ::control::write_msg(&mut conn, &Message::LoginResp(resp)).await;
            return;
        }
        let (handle, session) = ControlSession::new(shared.clone(), &login);
        if let Some(old) = shared.registry.insert_control(handle.clone()) {
            info!("replaced by client [{}]", login.run_id);
            old.close();
            old.wait_closed().await;
        }
        let resp = LoginResp {
            version: VERSION.into(),
            run_id: login.run_id.clone(),
            ..Default::default()
        };
        if let Err(e) = ::control::write_msg(&mut conn, &Message::LoginResp(resp)).await {
            warn!("write login response to [{peer}]: {e}");
            shared.registry.remove_control(&handle);
            return;
        }
        session.run(conn).await;
        shared.registry.remove_control(&handle);
    }
    .instrument(span)
    .await
}

async fn register_work_conn<N: Net>(
    shared: &Shared<N>,
    mut conn: BoxStream,
    peer: SocketAddr,
    m: NewWorkConn,
) {
    let Some(ctl): Option<ControlHandle> = shared.registry.control(&m.run_id) else {
        warn!(
            "no client control found for run id [{}] (work connection from [{peer}])",
            m.run_id
        );
        return;
    };
    if let Err(e) = shared.registry.verifier().verify_new_work_conn(&m) {
        warn!("invalid NewWorkConn with run id [{}]: {e}", m.run_id);
        let resp = StartWorkConn {
            error: e.wire_message(shared.settings.detailed_errors_to_client),
            ..Default::default()
        };
        let _ = ::control::write_msg(&mut conn, &Message::StartWorkConn(resp)).await;
        return;
    }
    if ctl.register_work_conn(conn).is_err() {
        debug!("work connection pool is full, discarding");
    }
}

async fn register_visitor_conn<N: Net>(shared: &Shared<N>, mut conn: BoxStream, m: NewVisitorConn) {
    // Visitors (stcp/sudp) come with their proxy types; until then no listener exists, and frp
    // answers a visitor for an unknown proxy this way (`server/visitor/visitor.go`).
    let detail = wire_error::visitor_listener_missing(&m.proxy_name);
    warn!("register visitor conn error: {detail}");
    let error = wire_error::response_error(
        wire_error::REGISTER_VISITOR_CONN_SUMMARY,
        &detail,
        shared.settings.detailed_errors_to_client,
    );
    let resp = NewVisitorConnResp {
        proxy_name: m.proxy_name,
        error,
    };
    let _ = ::control::write_msg(&mut conn, &Message::NewVisitorConnResp(resp)).await;
}
