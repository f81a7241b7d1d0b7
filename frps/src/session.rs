//! One client's control session on frps: an actor task that owns the (encrypted) control
//! stream, the client's proxies and its work-connection pool.
//!
//! Flow (frp v0.65.0 `server/control.go`):
//! - after `LoginResp` (written in clear by the service) the stream is wrapped in frp's
//!   AES-128-CFB cipher keyed by `auth.token`; a writer task drains the outgoing queue;
//! - `poolCount` `ReqWorkConn`s are sent at once; every work connection taken from the pool is
//!   replaced by another `ReqWorkConn`;
//! - `NewProxy` registers a proxy and is answered by `NewProxyResp`; `CloseProxy` closes one;
//!   `Ping` is verified and answered by `Pong`; the heartbeat timeout closes the session;
//! - on exit the pool is drained, every proxy closed and its ports released, and the handle's
//!   `closed` signal fires so a re-login with the same run id can proceed.
//!
//! Other tasks hold a cheap [`ControlHandle`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::{
    wire_error, AuthVerifier, CloseProxy, Login, Message, MsgCodec, NewProxy, NewProxyResp, Ping,
    Pong, ReqWorkConn, ServerHeartbeat,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use transports::{BoxStream, Net};

use crate::proxy::{self, ServerProxy};
use crate::service::Shared;

/// Capacity of the outgoing message queue (frp's dispatcher uses 100).
const SEND_QUEUE: usize = 100;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why no work connection could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkConnError {
    #[error("control is already closed")]
    Closed,
    #[error("timeout trying to get work connection")]
    Timeout,
}

struct HandleInner {
    id: u64,
    run_id: String,
    user: String,
    /// The work-connection pool: many user connections may wait on it at once (MPMC).
    pool_tx: async_channel::Sender<BoxStream>,
    pool_rx: async_channel::Receiver<BoxStream>,
    msg_tx: mpsc::Sender<Message>,
    pool_count: usize,
    user_conn_timeout: Duration,
    /// Fired to ask the session to end.
    cancel: CancellationToken,
    /// Fired once the session has released everything.
    closed: CancellationToken,
}

/// A cheap handle on a client's control session.
#[derive(Clone)]
pub(crate) struct ControlHandle(Arc<HandleInner>);

impl ControlHandle {
    pub(crate) fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// The user the client logged in as (frp's `user`).
    #[allow(dead_code)]
    pub(crate) fn user(&self) -> &str {
        &self.0.user
    }

    /// Work connections waiting in this client's pool.
    pub(crate) fn pooled(&self) -> usize {
        self.0.pool_rx.len()
    }

    /// Whether two handles name the same session (a re-login makes a new one).
    pub(crate) fn same(&self, other: &ControlHandle) -> bool {
        self.0.id == other.0.id
    }

    /// Adds a connection the client opened in answer to `ReqWorkConn`; a full pool gives it back.
    pub(crate) fn register_work_conn(&self, conn: BoxStream) -> Result<(), BoxStream> {
        if self.0.cancel.is_cancelled() {
            return Err(conn);
        }
        self.0.pool_tx.try_send(conn).map_err(|e| e.into_inner())
    }

    /// Takes a work connection: from the pool if one is there, else asks the client for one and
    /// waits up to `userConnTimeout`. Either way a replacement is requested (frp `GetWorkConn`).
    pub(crate) async fn get_work_conn(&self) -> Result<BoxStream, WorkConnError> {
        let inner = &self.0;
        let conn = match inner.pool_rx.try_recv() {
            Ok(c) => c,
            Err(async_channel::TryRecvError::Closed) => return Err(WorkConnError::Closed),
            Err(async_channel::TryRecvError::Empty) => {
                let wait = async {
                    self.request_work_conn().await?;
                    inner
                        .pool_rx
                        .recv()
                        .await
                        .map_err(|_| WorkConnError::Closed)
                };
                tokio::select! {
                    _ = inner.cancel.cancelled() => return Err(WorkConnError::Closed),
                    got = tokio::time::timeout(inner.user_conn_timeout, wait) => match got {
                        Ok(r) => r?,
                        Err(_) => {
                            warn!("{}", WorkConnError::Timeout);
                            return Err(WorkConnError::Timeout);
                        }
                    },
                }
            }
        };
        // The replacement request, like frp's, waits for room in the control queue (a burst of
        // user connections must not fail because the queue is momentarily full); a session
        // that ends meanwhile drops it.
        tokio::select! {
            _ = inner.cancel.cancelled() => {}
            _ = self.request_work_conn() => {}
        }
        Ok(conn)
    }

    /// How many pooled connections a user connection may try before giving up (frp: poolCount+1).
    pub(crate) fn work_conn_attempts(&self) -> usize {
        self.0.pool_count + 1
    }

    /// Queues a `ReqWorkConn` for the client, waiting for room (frp's blocking `sendCh <-`).
    async fn request_work_conn(&self) -> Result<(), WorkConnError> {
        self.0
            .msg_tx
            .send(Message::ReqWorkConn(ReqWorkConn::default()))
            .await
            .map_err(|_| WorkConnError::Closed)
    }

    /// Asks the session to end.
    pub(crate) fn close(&self) {
        self.0.cancel.cancel();
    }

    /// Resolves once the session has released its proxies, ports and pool.
    pub(crate) async fn wait_closed(&self) {
        self.0.closed.cancelled().await;
    }
}

/// The session actor, before it runs.
pub(crate) struct ControlSession<N: Net> {
    shared: Arc<Shared<N>>,
    handle: ControlHandle,
    /// The outgoing queue, taken by the writer task when the session starts.
    msg_rx: Option<mpsc::Receiver<Message>>,
    proxies: HashMap<String, ServerProxy>,
    ports_used: u32,
    heartbeat: ServerHeartbeat,
}

impl<N: Net> ControlSession<N> {
    /// Creates the session for a verified login; `login.run_id` is already set.
    pub(crate) fn new(shared: Arc<Shared<N>>, login: &Login) -> (ControlHandle, Self) {
        let max = shared.settings.max_pool_count as i64;
        let pool_count = login.pool_count.clamp(0, max) as usize;
        let (pool_tx, pool_rx) = async_channel::bounded(pool_count + 10);
        let (msg_tx, msg_rx) = mpsc::channel(SEND_QUEUE);
        let timeout_secs = shared
            .settings
            .heartbeat_timeout
            .map_or(0, |d| d.as_secs() as i64);
        let handle = ControlHandle(Arc::new(HandleInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            run_id: login.run_id.clone(),
            user: login.user.clone(),
            pool_tx,
            pool_rx,
            msg_tx,
            pool_count,
            user_conn_timeout: shared.settings.user_conn_timeout,
            cancel: shared.shutdown.child_token(),
            closed: CancellationToken::new(),
        }));
        let session = Self {
            shared,
            handle: handle.clone(),
            msg_rx: Some(msg_rx),
            proxies: HashMap::new(),
            ports_used: 0,
            heartbeat: ServerHeartbeat::new(timeout_secs, Instant::now().into_std()),
        };
        (handle, session)
    }

    /// Runs the session on the control stream until the client leaves, the heartbeat times
    /// out, a newer login replaces it, or the server shuts down.
    pub(crate) async fn run(mut self, conn: BoxStream) {
        let key = control::crypto::derive_key(self.shared.settings.token.as_bytes());
        let stream = proxies::crypto_stream::CryptoStream::new(conn, &key);
        let (rd, wr) = tokio::io::split(stream);
        let mut reader = FramedRead::new(rd, MsgCodec);
        let cancel = self.handle.0.cancel.clone();
        let writer = self
            .msg_rx
            .take()
            .map(|rx| tokio::spawn(control::write_loop(wr, rx, cancel.clone())));

        for _ in 0..self.handle.0.pool_count {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.handle.request_work_conn() => {}
            }
        }
        loop {
            let check = self.heartbeat.poll_timeout().map(Instant::from_std);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = sleep_until(check) => {
                    if self.heartbeat.handle_timeout(Instant::now().into_std()) {
                        warn!("heartbeat timeout");
                        break;
                    }
                }
                frame = reader.next() => match frame {
                    Some(Ok(m)) => self.handle_msg(m).await,
                    Some(Err(e)) => {
                        warn!("control connection error: {e}");
                        break;
                    }
                    None => {
                        debug!("control connection closed by client");
                        break;
                    }
                },
            }
        }
        cancel.cancel();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        drop(reader);
        self.release().await;
    }

    async fn handle_msg(&mut self, m: Message) {
        match m {
            Message::NewProxy(m) => {
                let resp = self.handle_new_proxy(m).await;
                self.send(Message::NewProxyResp(resp)).await;
            }
            Message::CloseProxy(CloseProxy { proxy_name }) => {
                self.close_proxy(&proxy_name).await;
                info!("close proxy [{proxy_name}] success");
            }
            Message::Ping(p) => self.handle_ping(p).await,
            other => debug!(
                "ignoring message [{}] on control connection",
                other.msg_type()
            ),
        }
    }

    async fn handle_ping(&mut self, ping: Ping) {
        if let Err(e) = self.shared.registry.verifier().verify_ping(&ping) {
            warn!("received invalid ping: {e}");
            let error = e.wire_message(self.shared.settings.detailed_errors_to_client);
            self.send(Message::Pong(Pong { error })).await;
            return;
        }
        self.heartbeat.on_ping(Instant::now().into_std());
        debug!("receive heartbeat");
        self.send(Message::Pong(Pong::default())).await;
    }

    async fn handle_new_proxy(&mut self, m: NewProxy) -> NewProxyResp {
        let name = m.proxy_name.clone();
        let proxy_type = m.proxy_type.clone();
        match self.register_proxy(m).await {
            Ok(remote_addr) => {
                info!("new proxy [{name}] type [{proxy_type}] success");
                NewProxyResp {
                    proxy_name: name,
                    remote_addr,
                    error: String::new(),
                }
            }
            Err(e) => {
                warn!("new proxy [{name}] type [{proxy_type}] error: {e}");
                let error = wire_error::response_error(
                    &wire_error::new_proxy_summary(&name),
                    &e.to_string(),
                    self.shared.settings.detailed_errors_to_client,
                );
                NewProxyResp {
                    proxy_name: name,
                    remote_addr: String::new(),
                    error,
                }
            }
        }
    }

    async fn register_proxy(&mut self, m: NewProxy) -> Result<String, proxy::ProxyError> {
        let name = m.proxy_name.clone();
        let used = proxy::ports_needed(&m);
        let max = self.shared.settings.max_ports_per_client;
        if max > 0 && self.ports_used + used > max {
            return Err(proxy::ProxyError::TooManyPorts);
        }
        if !self.shared.registry.claim_proxy_name(&name) {
            return Err(proxy::ProxyError::Exists(name));
        }
        match proxy::start(&self.shared, &self.handle, m).await {
            Ok(pxy) => {
                let addr = pxy.remote_addr.clone();
                self.ports_used += used;
                self.proxies.insert(name, pxy);
                Ok(addr)
            }
            Err(e) => {
                self.shared.registry.release_proxy_name(&name);
                Err(e)
            }
        }
    }

    /// Closes a proxy: its listener is gone and its port and name are free when this returns,
    /// so the client may register it again at once (a health check recovering, a reconnect).
    async fn close_proxy(&mut self, name: &str) {
        if let Some(pxy) = self.proxies.remove(name) {
            self.ports_used = self.ports_used.saturating_sub(pxy.ports_used);
            pxy.close(&self.shared).await;
            self.shared.registry.release_proxy_name(name);
        }
    }

    /// Queues an answer, waiting for room like frp's dispatcher (`Send` blocks on its
    /// channel) instead of dropping it: a burst of requests (frpc registers every proxy at
    /// once) must get every answer. Found by the `control_sequence` fuzz target.
    async fn send(&self, m: Message) {
        let inner = &self.handle.0;
        tokio::select! {
            _ = inner.cancel.cancelled() => {}
            sent = inner.msg_tx.send(m) => if sent.is_err() {
                debug!("control send queue closed");
            },
        }
    }

    /// Releases the pool, proxies and ports, then fires `closed`.
    async fn release(mut self) {
        self.handle.0.pool_rx.close();
        while self.handle.0.pool_rx.try_recv().is_ok() {}
        let names: Vec<String> = self.proxies.keys().cloned().collect();
        for name in names {
            self.close_proxy(&name).await;
        }
        info!("client exit success");
        self.handle.0.closed.cancel();
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
