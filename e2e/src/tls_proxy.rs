//! A TLS-terminating TCP proxy: what sits in front of frps for frp's `wss` transport.
//!
//! frps has no wss listener of its own; frp's docs put a TLS reverse proxy (nginx, a load
//! balancer) before frps's `bindPort`, and frpc with `transport.protocol = "wss"` speaks
//! websocket inside that TLS. [`TlsTerminator`] accepts TLS on 127.0.0.1 with a certificate
//! from [`crate::tls::generate`], then forwards the decrypted bytes of each connection as plain
//! TCP to the upstream port. It records the SNI of every completed handshake so tests can check
//! that frpc sent `transport.tls.serverName`.

use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// Bound on one TLS handshake, so a silent client does not pin a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running TLS terminator on 127.0.0.1 (OS-chosen port); stops when dropped, closing every
/// connection it forwards.
#[derive(Debug)]
pub struct TlsTerminator {
    port: u16,
    server_names: Arc<Mutex<Vec<Option<String>>>>,
    task: JoinHandle<()>,
}

impl TlsTerminator {
    /// Listens on `127.0.0.1:0` with the PEM certificate chain `cert` and private key `key`,
    /// forwarding each connection after its handshake to `127.0.0.1:upstream_port`.
    pub async fn start(cert: &Path, key: &Path, upstream_port: u16) -> Result<Self> {
        let config = server_config(cert, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the TLS terminator")?;
        let port = listener.local_addr()?.port();
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let names = Arc::clone(&server_names);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(forward(
                    acceptor.clone(),
                    stream,
                    upstream_port,
                    Arc::clone(&names),
                ));
                // Reap finished connections so the set does not grow with the test's length.
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            port,
            server_names,
            task,
        })
    }

    /// The port it accepts TLS on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SNI of every completed handshake so far, in order (`None`: the client sent none,
    /// as TLS clients do when the server name is an IP address).
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.server_names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every forwarded connection.
        self.task.abort();
    }
}

/// One connection: TLS handshake, then a plain TCP connection upstream and a two-way copy.
/// Failures (a client refusing our certificate, frps gone) just end the connection, as a
/// reverse proxy would.
async fn forward(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    upstream_port: u16,
    names: Arc<Mutex<Vec<Option<String>>>>,
) {
    let Ok(Ok(mut tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
    else {
        return;
    };
    let sni = tls.get_ref().1.server_name().map(str::to_owned);
    names.lock().unwrap_or_else(|e| e.into_inner()).push(sni);
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
}

fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS terminator certificate and key")
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .with_context(|| format!("reading the private key from {}", path.display()))?
        .with_context(|| format!("no private key in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::EchoServer;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A rustls client trusting the test CA reaches the echo server through the terminator,
    /// and the terminator saw its SNI.
    #[tokio::test]
    async fn terminates_and_forwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = crate::tls::generate(dir.path(), "t").expect("certs");
        let echo = EchoServer::start().await.expect("echo");
        let proxy = TlsTerminator::start(&files.server_cert, &files.server_key, echo.port())
            .await
            .expect("terminator");

        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(&files.ca_cert).expect("ca") {
            roots.add(cert).expect("add ca");
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(b"hello through tls").await.expect("write");
        let mut back = [0u8; 17];
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut back))
            .await
            .expect("echo in time")
            .expect("read");
        assert_eq!(&back, b"hello through tls");
        assert_eq!(proxy.server_names(), vec![Some("localhost".to_owned())]);
    }
}
