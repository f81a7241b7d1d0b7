//! One control session of frpc: the actor that owns the encrypted control stream after login.
//!
//! Flow (frp v0.65.0 `client/control.go`): the stream is wrapped in frp's AES-128-CFB cipher
//! keyed by `auth.token`; a writer task drains the outgoing queue; `NewProxy` is sent for every
//! proxy (and re-sent by the proxy manager's status check); `ReqWorkConn` spawns a task that
//! opens a work connection and hands it to its proxy once `StartWorkConn` names one;
//! `NewProxyResp` updates a proxy's phase; with heartbeats on, `Ping` goes out at once and every
//! interval, and a missing `Pong` past the timeout (or a `Pong` with an error) ends the session.

use std::sync::Arc;
use std::time::Duration;

use control::{ClientHeartbeat, Message, MsgCodec, NewWorkConn, Ping};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, info_span, trace, warn, Instrument};
use transports::{Connector, Net};

use crate::proxy::ProxyManager;
use crate::service::unix_now;
use crate::settings::ClientSettings;

/// Capacity of the outgoing message queue (frp's dispatcher uses 100).
const SEND_QUEUE: usize = 100;
/// frp's proxy status check period (`client/proxy/proxy_wrapper.go`).
const STATUS_CHECK: Duration = Duration::from_secs(3);

/// A session after a successful login.
pub(crate) struct ClientSession<N: Net> {
    settings: Arc<ClientSettings>,
    net: N,
    run_id: String,
    connector: Arc<Connector<N>>,
    proxies: Arc<ProxyManager>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl<N: Net> ClientSession<N> {
    pub(crate) fn new(
        settings: Arc<ClientSettings>,
        net: N,
        run_id: String,
        connector: Arc<Connector<N>>,
        proxies: Arc<ProxyManager>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            settings,
            net,
            run_id,
            connector,
            proxies,
            cancel,
            tasks: TaskTracker::new(),
        }
    }

    /// Runs until the control connection ends, the heartbeat times out or shutdown.
    pub(crate) async fn run(self, conn: transports::BoxStream) {
        let span = info_span!("session", run_id = %self.run_id);
        self.run_inner(conn).instrument(span).await
    }

    async fn run_inner(self, conn: transports::BoxStream) {
        let key = control::crypto::derive_key(self.settings.token.as_bytes());
        let stream = proxies::crypto_stream::CryptoStream::new(conn, &key);
        let (rd, wr) = tokio::io::split(stream);
        let mut reader = FramedRead::new(rd, MsgCodec);
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let writer = tokio::spawn(control::write_loop(wr, rx, self.cancel.clone()));

        self.proxies.start_session(tx.clone());
        let secs = |d: Option<Duration>| d.map_or(0, |d| d.as_secs() as i64);
        let mut heartbeat = ClientHeartbeat::new(
            secs(self.settings.heartbeat_interval),
            secs(self.settings.heartbeat_timeout),
            Instant::now().into_std(),
        );
        let mut status = tokio::time::interval_at(Instant::now() + STATUS_CHECK, STATUS_CHECK);
        loop {
            let due = heartbeat.poll_timeout().map(Instant::from_std);
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = sleep_until(due) => {
                    let action = heartbeat.handle_timeout(Instant::now().into_std());
                    if action.send_ping {
                        self.send_ping(&tx);
                    }
                    if action.expired {
                        warn!("heartbeat timeout");
                        break;
                    }
                }
                _ = status.tick() => self.proxies.check_status(),
                frame = reader.next() => match frame {
                    Some(Ok(Message::ReqWorkConn(_))) => self.spawn_work_conn(),
                    Some(Ok(Message::NewProxyResp(r))) => self.proxies.on_new_proxy_resp(r),
                    Some(Ok(Message::Pong(p))) => {
                        if !p.error.is_empty() {
                            error!("pong message contains error: {}", p.error);
                            break;
                        }
                        heartbeat.on_pong(Instant::now().into_std());
                        debug!("receive heartbeat from server");
                    }
                    Some(Ok(other)) => debug!("ignoring message [{}] on control connection", other.msg_type()),
                    Some(Err(e)) => {
                        warn!("control connection error: {e}");
                        break;
                    }
                    None => {
                        info!("control connection closed by server");
                        break;
                    }
                },
            }
        }
        self.proxies.end_session();
        self.cancel.cancel();
        let _ = writer.await;
        drop(reader);
        self.connector.close();
        self.tasks.close();
    }

    fn send_ping(&self, tx: &mpsc::Sender<Message>) {
        let mut ping = Ping::default();
        self.settings.auth.set_ping(&mut ping, unix_now());
        debug!("send heartbeat to server");
        let _ = tx.try_send(Message::Ping(ping));
    }

    /// Opens a work connection in the background (frp `handleReqWorkConn`).
    fn spawn_work_conn(&self) {
        let connector = self.connector.clone();
        let proxies = self.proxies.clone();
        let settings = self.settings.clone();
        let run_id = self.run_id.clone();
        let net = self.net.clone();
        let cancel = self.cancel.clone();
        let work = self.tasks.track_future(
            async move {
                debug!(
                    "opening a work connection on thread {}",
                    std::thread::current().name().unwrap_or("unnamed")
                );
                // `connect` boxes a dial itself (it needs ~11 KiB of future state), so this
                // task, which lives as long as its work connection, stays small either way.
                let mut conn = match connector.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        warn!("start new connection to server error: {e}");
                        return;
                    }
                };
                let mut m = NewWorkConn {
                    run_id,
                    ..Default::default()
                };
                settings.auth.set_new_work_conn(&mut m, unix_now());
                if let Err(e) = control::write_msg(&mut conn, &Message::NewWorkConn(m)).await {
                    warn!("work connection write to server error: {e}");
                    return;
                }
                // A pooled work connection may wait a long time for its user; the session's
                // end (or the connector closing) ends the wait.
                let start = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = control::read_msg(&mut conn) => r,
                };
                match start {
                    Ok(Message::StartWorkConn(s)) if s.error.is_empty() => {
                        proxies.handle_work_conn(net, conn, s).await;
                    }
                    Ok(Message::StartWorkConn(s)) => {
                        error!("StartWorkConn contains error: {}", s.error)
                    }
                    Ok(other) => warn!(
                        "unexpected message [{}] on work connection",
                        other.msg_type()
                    ),
                    Err(e) => {
                        trace!("work connection closed before response StartWorkConn message: {e}")
                    }
                }
            }
            .in_current_span(),
        );
        // A work connection of its own (no tcpMux) is a socket, TLS session and relay that
        // share nothing with the session: the shards take turns. A yamux stream stays with
        // the session that carries it.
        if self.connector.multiplexed() {
            tokio::spawn(work);
        } else {
            transports::shard::spawn_next(work);
        }
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
