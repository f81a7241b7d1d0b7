//! TLS between frpc and frps (rustls with the aws-lc-rs provider, AES-128-GCM preferred).
//!
//! Mirrors frp v0.65.0 `pkg/transport/tls.go` (config building), `pkg/util/net/tls.go`
//! (the `0x17` head byte) and `client/connector.go` (client options):
//!
//! * **Server**: certificate from `certFile`/`keyFile`, or, when neither is configured, a
//!   self-signed certificate generated at startup. Go generates RSA-2048; we generate
//!   ECDSA P-256 with rcgen, which is fine because Go frpc skips certificate verification
//!   unless it has a `trustedCaFile` (and then the operator configured a real cert).
//!   With `trustedCaFile`, client certificates are required and verified (mutual TLS).
//! * **Client**: optional client certificate; with `trustedCaFile` the server is verified
//!   against that CA only (hostname = `serverName`, else `serverAddr`), otherwise any
//!   server certificate is accepted like Go's `InsecureSkipVerify` — but the handshake
//!   signatures are still checked. SNI is omitted when the name is an IP address (as Go
//!   does). No ALPN for TCP, KCP and websocket.
//! * The custom first byte `0x17` is written before the ClientHello when
//!   `disableCustomTLSFirstByte` is false.
//! * QUIC uses the same material with TLS 1.3 only and ALPN `frp` ([`quic_client_config`],
//!   [`server_configs_with_quic`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::tls_read::LentBufReader;
use crate::tls_records::{Handover, RecordStream, SecretLog, Suite};

use crate::error::TransportError;
use crate::sniff::FRP_TLS_HEAD_BYTE;

/// frpc's TLS options (`transport.tls.*` in frpc.toml, when `enable = true`).
#[derive(Clone, Debug)]
pub struct ClientTlsOptions {
    /// `certFile`: client certificate (PEM), used only together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// `keyFile`: client private key (PEM).
    pub key_file: Option<PathBuf>,
    /// `trustedCaFile`: verify the server against this CA only; `None` accepts any server.
    pub trusted_ca_file: Option<PathBuf>,
    /// `serverName`: SNI and verification name; `None` uses the server address.
    pub server_name: Option<String>,
    /// `disableCustomTLSFirstByte` (frp default `true`): when false, `0x17` is sent first.
    pub disable_custom_first_byte: bool,
}

impl Default for ClientTlsOptions {
    fn default() -> Self {
        ClientTlsOptions {
            cert_file: None,
            key_file: None,
            trusted_ca_file: None,
            server_name: None,
            // frp >= 0.50 default.
            disable_custom_first_byte: true,
        }
    }
}

/// frps's TLS options (`transport.tls.*` in frps.toml).
#[derive(Clone, Debug, Default)]
pub struct ServerTlsOptions {
    /// `force`: reject plaintext connections. Treated as true when `trusted_ca_file` is
    /// set, as frp's config completion does.
    pub force: bool,
    /// `certFile`: server certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// `keyFile`: server private key (PEM).
    pub key_file: Option<PathBuf>,
    /// `trustedCaFile`: require client certificates signed by this CA (mutual TLS).
    pub trusted_ca_file: Option<PathBuf>,
}

impl ServerTlsOptions {
    /// Whether plaintext connections are refused.
    pub fn effective_force(&self) -> bool {
        self.force || self.trusted_ca_file.is_some()
    }
}

/// The crypto provider, with AES-128-GCM preferred over AES-256-GCM.
///
/// rustls lists AES-256-GCM first; Go (frp) prefers AES-128-GCM whenever the CPU has
/// AES instructions (`crypto/tls` `defaultCipherSuitesTLS13`), so a Go peer negotiates
/// AES-128-GCM with us either way. Preferring it ourselves makes frp-rs ↔ frp-rs use the
/// same suite, which is about a third cheaper per byte (10 AES rounds instead of 14) and
/// equally strong for this purpose. The order only decides among the suites both sides
/// support; the server follows the client's order (rustls default, like Go).
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| !is_aes_128_gcm(s.suite()));
    Arc::new(provider)
}

fn is_aes_128_gcm(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as C;
    matches!(
        suite,
        C::TLS13_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

/// A client TLS stream as returned by [`connect`].
pub type ClientTlsStream<S> = TlsConn<tokio_rustls::client::TlsStream<LentBufReader<S>>, S>;
/// A server TLS stream as returned by [`accept`].
pub type ServerTlsStream<S> = TlsConn<tokio_rustls::server::TlsStream<LentBufReader<S>>, S>;

/// An established TLS connection: after a TLS 1.3 handshake our own record layer
/// ([`crate::tls_records`], which saves rustls's copies of every byte), otherwise rustls's.
// Both variants are large (rustls's holds its whole connection state); callers box the
// stream once as a `BoxStream`, so boxing a variant would add a second indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TlsConn<R, S> {
    /// rustls's record layer (TLS 1.2, or a state the record layer cannot take over).
    Rustls(R),
    /// TLS 1.3 records sealed and opened by [`RecordStream`].
    Records(RecordStream<S>),
}

impl<R, S> TlsConn<R, S> {
    /// Whether [`crate::tls_records`] carries the records.
    pub fn is_records(&self) -> bool {
        matches!(self, TlsConn::Records(_))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut *$self {
            TlsConn::Rustls($s) => {
                let $s = Pin::new($s);
                $e
            }
            TlsConn::Records($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl<R, S> AsyncRead for TlsConn<R, S>
where
    R: AsyncRead + Unpin,
    S: AsyncRead + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl<R, S> AsyncWrite for TlsConn<R, S>
where
    R: AsyncWrite + Unpin,
    S: AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            TlsConn::Rustls(s) => s.is_write_vectored(),
            TlsConn::Records(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// The suite, when [`crate::tls_records`] can take this connection over: TLS 1.3 with a
/// suite it implements, handshake done, nothing left to send.
fn records_suite<D>(conn: &rustls::ConnectionCommon<D>) -> Option<Suite> {
    if conn.is_handshaking()
        || conn.wants_write()
        || conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
    {
        return None;
    }
    Suite::tls13(conn.negotiated_cipher_suite()?.suite())
}

/// A copy of `config` whose key log keeps this connection's traffic secrets (a KeyUpdate
/// needs them; see [`crate::tls_records`]).
fn with_secret_log<C: Clone>(
    config: &Arc<C>,
    set: impl FnOnce(&mut C, Arc<dyn rustls::KeyLog>),
) -> (Arc<C>, Arc<SecretLog>) {
    let log = Arc::new(SecretLog::default());
    let mut c = C::clone(config);
    set(&mut c, log.clone());
    (Arc::new(c), log)
}

/// Plaintext rustls decrypted before the handover, and whether the peer had closed.
fn drain_plaintext(conn: &mut rustls::Connection) -> io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut early = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok((early, true)),
            Ok(n) => early.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((early, false)),
            Err(e) => return Err(e),
        }
    }
}

fn handover_error(e: rustls::Error) -> io::Error {
    io::Error::other(format!("TLS record layer handover: {e}"))
}

/// Hands a connection whose handshake is done to [`RecordStream`]: first the plaintext rustls
/// already decrypted, then the keys.
fn into_records<S>(
    io: LentBufReader<S>,
    mut conn: rustls::Connection,
    suite: Suite,
    log: Arc<SecretLog>,
    send_buffer: usize,
) -> io::Result<RecordStream<S>> {
    let is_client = matches!(conn, rustls::Connection::Client(_));
    let (early, closed) = drain_plaintext(&mut conn)?;
    let secrets = conn.dangerous_extract_secrets().map_err(handover_error)?;
    let (io, rest) = io.into_parts();
    let handover = Handover {
        suite,
        is_client,
        secrets,
        log,
    };
    let mut records = RecordStream::new(io, rest, early, handover, send_buffer)?;
    records.set_read_closed(closed);
    Ok(records)
}

fn client_records<S>(
    mut stream: tokio_rustls::client::TlsStream<LentBufReader<S>>,
    log: Arc<SecretLog>,
    send_buffer: usize,
) -> io::Result<ClientTlsStream<S>> {
    let Some(suite) = records_suite(stream.get_ref().1) else {
        stream.get_mut().0.stop_whole_records();
        stream.get_mut().1.set_buffer_limit(Some(send_buffer));
        return Ok(TlsConn::Rustls(stream));
    };
    let (io, conn) = stream.into_inner();
    into_records(io, conn.into(), suite, log, send_buffer).map(TlsConn::Records)
}

fn server_records<S>(
    mut stream: tokio_rustls::server::TlsStream<LentBufReader<S>>,
    log: Arc<SecretLog>,
    send_buffer: usize,
) -> io::Result<ServerTlsStream<S>> {
    let Some(suite) = records_suite(stream.get_ref().1) else {
        stream.get_mut().0.stop_whole_records();
        stream.get_mut().1.set_buffer_limit(Some(send_buffer));
        return Ok(TlsConn::Rustls(stream));
    };
    let (io, conn) = stream.into_inner();
    into_records(io, conn.into(), suite, log, send_buffer).map(TlsConn::Records)
}

/// ALPN protocol id frp negotiates on QUIC (frp `client/connector.go`, `server/service.go`).
pub const QUIC_ALPN: &[u8] = b"frp";

/// Builds the frps TLS configuration for TCP, KCP and websocket (TLS 1.2 and 1.3, no ALPN).
pub fn server_config(opts: &ServerTlsOptions) -> Result<Arc<ServerConfig>, TransportError> {
    let (certs, key) = server_identity(opts)?;
    build_server_config(opts, certs, key, false)
}

/// Builds the frps TLS configurations for TCP and for QUIC (TLS 1.3 only, ALPN `frp`)
/// from one certificate: frp clones its `tls.Config` for QUIC (`server/service.go`), so
/// both listeners present the same (possibly self-signed) certificate.
pub fn server_configs_with_quic(
    opts: &ServerTlsOptions,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), TransportError> {
    let (certs, key) = server_identity(opts)?;
    let quic = build_server_config(opts, certs.clone(), key.clone_key(), true)?;
    let tcp = build_server_config(opts, certs, key, false)?;
    Ok((tcp, quic))
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn server_identity(opts: &ServerTlsOptions) -> Result<Identity, TransportError> {
    match (&opts.cert_file, &opts.key_file) {
        (Some(cert), Some(key)) => Ok((load_certs(cert)?, load_key(key)?)),
        (None, None) => self_signed(),
        (Some(_), None) | (None, Some(_)) => Err(TransportError::TlsConfig(
            "transport.tls.certFile and transport.tls.keyFile must be set together".into(),
        )),
    }
}

fn build_server_config(
    opts: &ServerTlsOptions,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    quic: bool,
) -> Result<Arc<ServerConfig>, TransportError> {
    let builder = ServerConfig::builder_with_provider(provider());
    let builder = if quic {
        builder.with_protocol_versions(&[&rustls::version::TLS13])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .map_err(tls_config_error)?;
    let builder = match &opts.trusted_ca_file {
        Some(ca) => {
            let roots = load_roots(ca)?;
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TransportError::TlsConfig(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(tls_config_error)?;
    if quic {
        config.alpn_protocols = vec![QUIC_ALPN.to_vec()];
    } else {
        // The record layer takes the traffic secrets over after the handshake.
        config.enable_secret_extraction = true;
    }
    Ok(Arc::new(config))
}

/// Builds the frpc TLS configuration for TCP, KCP, websocket and wss (no ALPN).
pub fn client_config(opts: &ClientTlsOptions) -> Result<Arc<ClientConfig>, TransportError> {
    build_client_config(opts, false)
}

/// Builds the frpc TLS configuration for QUIC: TLS 1.3 only, ALPN `frp`, otherwise the
/// same verification rules as [`client_config`] (frp `client/connector.go`).
pub fn quic_client_config(opts: &ClientTlsOptions) -> Result<Arc<ClientConfig>, TransportError> {
    build_client_config(opts, true)
}

fn build_client_config(
    opts: &ClientTlsOptions,
    quic: bool,
) -> Result<Arc<ClientConfig>, TransportError> {
    let builder = ClientConfig::builder_with_provider(provider());
    let builder = if quic {
        builder.with_protocol_versions(&[&rustls::version::TLS13])
    } else {
        builder.with_safe_default_protocol_versions()
    }
    .map_err(tls_config_error)?;
    let builder = match &opts.trusted_ca_file {
        Some(ca) => builder.with_root_certificates(load_roots(ca)?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new())),
    };
    let mut config = match (&opts.cert_file, &opts.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(tls_config_error)?,
        // Go uses a client certificate only when both paths are set.
        _ => builder.with_no_client_auth(),
    };
    if quic {
        config.alpn_protocols = vec![QUIC_ALPN.to_vec()];
    } else {
        // The record layer takes the traffic secrets over after the handshake.
        config.enable_secret_extraction = true;
    }
    Ok(Arc::new(config))
}

/// The name the client presents (SNI) and verifies: `serverName`, else `server_addr`.
///
/// An IP address yields no SNI extension. A name that is neither a valid DNS name nor
/// an IP is an error only when the certificate is verified; without verification frp
/// would still connect, so we fall back to sending no SNI.
pub fn server_name(
    opts: &ClientTlsOptions,
    server_addr: &str,
) -> Result<ServerName<'static>, TransportError> {
    let name = opts
        .server_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(server_addr);
    match ServerName::try_from(name.to_owned()) {
        Ok(n) => Ok(n),
        Err(_) if opts.trusted_ca_file.is_none() => Ok(ServerName::IpAddress(
            std::net::IpAddr::from([0u8, 0, 0, 0]).into(),
        )),
        Err(e) => Err(TransportError::TlsConfig(format!(
            "invalid TLS server name {name:?}: {e}"
        ))),
    }
}

/// Ciphertext rustls may queue for the socket per connection: rustls's own default, for a TLS
/// connection that carries one work connection.
pub const SEND_BUFFER: usize = 64 * 1024;

/// The same for a connection that carries a yamux session (every proxy's traffic). Larger
/// writes to the socket: one `writev` per 16 records instead of 4. Measured on one iperf3
/// stream through the default transport, 8 interleaved pairs: 6.00 vs 5.64 Gbit/s, 1.76 vs 1.86
/// CPU s/GB (bench/NOTES.md). It is only filled while the socket is slower than the session.
pub const MUX_SEND_BUFFER: usize = 256 * 1024;

/// Client side of the TLS layer: optionally writes frp's `0x17` byte, then performs
/// the handshake over `io`. `send_buffer`: [`SEND_BUFFER`] or [`MUX_SEND_BUFFER`].
///
/// `own_records`: hand the records to [`crate::tls_records`] after a TLS 1.3 handshake. frpc
/// sets it for the connection that carries its yamux session (dialled once, it moves all the
/// bytes), not for a connection per work connection (`tcpMux` off): the record layer drops
/// the server's session tickets, which rustls needs to resume the next dial instead of
/// running a full handshake (without them new connections cost 15 % more).
pub async fn connect<S>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    send_head_byte: bool,
    io: S,
    send_buffer: usize,
    own_records: bool,
) -> io::Result<ClientTlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = io;
    if send_head_byte {
        io.write_all(&[FRP_TLS_HEAD_BYTE]).await?;
    }
    if !own_records {
        let mut stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, LentBufReader::new(io))
            .await?;
        stream.get_mut().1.set_buffer_limit(Some(send_buffer));
        log_established("client", stream.get_ref().1);
        return Ok(TlsConn::Rustls(stream));
    }
    let io = LentBufReader::whole_records(io);
    let (config, log) = with_secret_log(&config, |c, log| c.key_log = log);
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await?;
    log_established("client", stream.get_ref().1);
    client_records(stream, log, send_buffer)
}

/// Server side of the TLS layer (the caller has consumed a `0x17` byte if present).
/// `send_buffer`: [`SEND_BUFFER`] or [`MUX_SEND_BUFFER`].
pub async fn accept<S>(
    config: Arc<ServerConfig>,
    io: S,
    send_buffer: usize,
) -> io::Result<ServerTlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = LentBufReader::whole_records(io);
    let (config, log) = with_secret_log(&config, |c, log| c.key_log = log);
    let stream = tokio_rustls::TlsAcceptor::from(config).accept(io).await?;
    log_established("server", stream.get_ref().1);
    server_records(stream, log, send_buffer)
}

fn log_established<D>(side: &'static str, conn: &rustls::ConnectionCommon<D>) {
    tracing::debug!(
        side,
        version = ?conn.protocol_version(),
        suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
        "TLS established"
    );
}

fn tls_config_error(e: rustls::Error) -> TransportError {
    TransportError::TlsConfig(e.to_string())
}

fn open_pem(path: &Path) -> Result<std::io::BufReader<File>, TransportError> {
    File::open(path)
        .map(std::io::BufReader::new)
        .map_err(|source| TransportError::TlsFile {
            path: path.to_owned(),
            source,
        })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let mut reader = open_pem(path)?;
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TransportError::TlsFile {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TransportError::InvalidPem {
            path: path.to_owned(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    let mut reader = open_pem(path)?;
    rustls_pemfile::private_key(&mut reader)
        .map_err(|source| TransportError::TlsFile {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TransportError::InvalidPem {
            path: path.to_owned(),
            reason: "no private key found".into(),
        })
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TransportError::InvalidPem {
            path: path.to_owned(),
            reason: format!("invalid CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// Generates frps's throw-away certificate (ECDSA P-256; frp's Go code uses RSA-2048,
/// which Go frpc never verifies).
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TransportError> {
    let certified = rcgen::generate_simple_self_signed(Vec::<String>::new())
        .map_err(|e| TransportError::TlsConfig(format!("self-signed certificate: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    Ok((vec![certified.cert.der().clone()], key))
}

/// Accepts any server certificate (Go's `InsecureSkipVerify: true`), while still
/// checking that the handshake is signed by the key in the presented certificate.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCert {
    fn new() -> Self {
        AcceptAnyServerCert {
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named_in_the_error() {
        let opts = ServerTlsOptions {
            cert_file: Some("/nonexistent/server.crt".into()),
            key_file: Some("/nonexistent/server.key".into()),
            ..Default::default()
        };
        let err = server_config(&opts).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/server.crt"), "{err}");

        let opts = ClientTlsOptions {
            trusted_ca_file: Some("/nonexistent/ca.crt".into()),
            ..Default::default()
        };
        let err = client_config(&opts).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
    }

    #[test]
    fn garbage_pem_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, "not a pem").unwrap();
        let opts = ServerTlsOptions {
            cert_file: Some(path.clone()),
            key_file: Some(path.clone()),
            ..Default::default()
        };
        let err = server_config(&opts).unwrap_err().to_string();
        assert!(
            err.contains("bad.pem") && err.contains("no certificate"),
            "{err}"
        );
    }

    /// frp-rs on both ends negotiates AES-128-GCM (as a Go peer does), and data flows
    /// both ways across many records through the buffered reader under rustls.
    #[tokio::test]
    async fn ours_to_ours_prefers_aes_128_gcm() {
        use tokio::io::AsyncReadExt;
        let server = server_config(&ServerTlsOptions::default()).unwrap();
        let opts = ClientTlsOptions::default();
        let client = client_config(&opts).unwrap();
        let name = server_name(&opts, "127.0.0.1").unwrap();
        let (a, b) = tokio::io::duplex(4096);
        let (c, s) = tokio::join!(connect(client, name, true, a, SEND_BUFFER, true), async {
            let mut b = b;
            let mut head = [0u8; 1];
            b.read_exact(&mut head).await.unwrap();
            assert_eq!(head[0], FRP_TLS_HEAD_BYTE);
            accept(server, b, SEND_BUFFER).await
        });
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        let (TlsConn::Records(cr), TlsConn::Records(sr)) = (&c, &s) else {
            panic!("TLS 1.3 between ours goes through our record layer");
        };
        for suite in [cr.cipher_suite(), sr.cipher_suite()] {
            assert_eq!(suite, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        }
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let echo = tokio::spawn(async move {
            let mut got = vec![0u8; expect.len()];
            s.read_exact(&mut got).await.unwrap();
            assert!(got == expect);
            s.write_all(b"done").await.unwrap();
            s.flush().await.unwrap();
        });
        c.write_all(&data).await.unwrap();
        c.flush().await.unwrap();
        let mut done = [0u8; 4];
        c.read_exact(&mut done).await.unwrap();
        assert_eq!(&done, b"done");
        echo.await.unwrap();
    }

    /// Counts the writes that reach the socket.
    struct CountWrites<S> {
        io: S,
        writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for CountWrites<S> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for CountWrites<S> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
        }
        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> std::task::Poll<io::Result<usize>> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
        }
        fn is_write_vectored(&self) -> bool {
            self.io.is_write_vectored()
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    /// A connection that carries a yamux session queues up to `MUX_SEND_BUFFER` of records
    /// per socket write (16 records of 16 KiB), one that carries a single work connection
    /// rustls's 64 KiB (4 records): writing 1 MiB takes 4 times fewer socket writes.
    #[tokio::test]
    async fn mux_connections_write_larger_batches() {
        use tokio::io::AsyncReadExt;
        async fn socket_writes_for_1_mib(send_buffer: usize) -> usize {
            let server = server_config(&ServerTlsOptions::default()).unwrap();
            let opts = ClientTlsOptions::default();
            let client = client_config(&opts).unwrap();
            let name = server_name(&opts, "127.0.0.1").unwrap();
            // A pipe wider than the whole transfer: the socket never pushes back, so each
            // write carries exactly what rustls had queued.
            let (a, b) = tokio::io::duplex(4 << 20);
            let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let a = CountWrites {
                io: a,
                writes: writes.clone(),
            };
            let (c, s) = tokio::join!(
                connect(
                    client,
                    name,
                    false,
                    a,
                    send_buffer,
                    send_buffer == MUX_SEND_BUFFER
                ),
                accept(server, b, SEND_BUFFER)
            );
            let (mut c, mut s) = (c.unwrap(), s.unwrap());
            let before = writes.load(std::sync::atomic::Ordering::Relaxed);
            c.write_all(&vec![7u8; 1 << 20]).await.unwrap();
            c.flush().await.unwrap();
            let after = writes.load(std::sync::atomic::Ordering::Relaxed);
            let mut got = vec![0u8; 1 << 20];
            s.read_exact(&mut got).await.unwrap();
            assert!(got.iter().all(|&b| b == 7));
            after - before
        }
        let single = socket_writes_for_1_mib(SEND_BUFFER).await;
        let mux = socket_writes_for_1_mib(MUX_SEND_BUFFER).await;
        assert!(single >= 16, "{single} writes with the default buffer");
        assert!(mux <= single / 3, "{mux} writes vs {single}");
    }

    /// A TLS 1.2 peer keeps rustls's record layer (ours speaks TLS 1.3 records only), and the
    /// reader under rustls goes back to plain buffering.
    #[tokio::test]
    async fn tls12_keeps_the_rustls_record_layer() {
        use tokio::io::AsyncReadExt;
        let (certs, key) = self_signed().unwrap();
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let opts = ClientTlsOptions::default();
        let client = client_config(&opts).unwrap();
        let name = server_name(&opts, "127.0.0.1").unwrap();
        let (a, b) = tokio::io::duplex(1 << 20);
        let (c, s) = tokio::join!(
            connect(client, name, false, a, SEND_BUFFER, true),
            accept(Arc::new(server), b, SEND_BUFFER)
        );
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        assert!(!c.is_records() && !s.is_records());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        c.write_all(&data).await.unwrap();
        c.flush().await.unwrap();
        let mut got = vec![0u8; data.len()];
        s.read_exact(&mut got).await.unwrap();
        assert!(got == data);
        s.write_all(b"back").await.unwrap();
        s.flush().await.unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    /// A client connection that keeps rustls's records (one per work connection, `tcpMux`
    /// off) stores the server's session tickets, so the next dial resumes.
    #[tokio::test]
    async fn per_work_connection_dials_resume() {
        use tokio::io::AsyncReadExt;
        let server = server_config(&ServerTlsOptions::default()).unwrap();
        let opts = ClientTlsOptions::default();
        let client = client_config(&opts).unwrap();
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let name = server_name(&opts, "127.0.0.1").unwrap();
            let (a, b) = tokio::io::duplex(1 << 16);
            let (c, s) = tokio::join!(
                connect(client.clone(), name, false, a, SEND_BUFFER, false),
                accept(server.clone(), b, SEND_BUFFER)
            );
            let (mut c, mut s) = (c.unwrap(), s.unwrap());
            // A round trip, so that the client reads (and stores) the tickets.
            s.write_all(b"x").await.unwrap();
            s.flush().await.unwrap();
            let mut x = [0u8; 1];
            c.read_exact(&mut x).await.unwrap();
            let TlsConn::Rustls(c) = c else {
                panic!("a per-work-connection dial keeps rustls's records");
            };
            kinds.push(c.get_ref().1.handshake_kind());
        }
        assert_eq!(kinds[1], Some(rustls::HandshakeKind::Resumed), "{kinds:?}");
    }

    #[test]
    fn half_configured_cert_is_an_error() {
        let opts = ServerTlsOptions {
            cert_file: Some("a".into()),
            ..Default::default()
        };
        assert!(server_config(&opts).is_err());
        assert!(server_config(&ServerTlsOptions::default()).is_ok());
    }

    #[test]
    fn server_name_rules() {
        let opts = ClientTlsOptions::default();
        assert!(matches!(
            server_name(&opts, "127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name(&opts, "frp.example.com").unwrap(),
            ServerName::DnsName(_)
        ));
        let opts = ClientTlsOptions {
            server_name: Some("other.example".into()),
            ..Default::default()
        };
        match server_name(&opts, "127.0.0.1").unwrap() {
            ServerName::DnsName(d) => assert_eq!(d.as_ref(), "other.example"),
            other => panic!("unexpected {other:?}"),
        }
        // Invalid name without verification: no SNI rather than a failure.
        assert!(server_name(&ClientTlsOptions::default(), "bad name!").is_ok());
    }
}
