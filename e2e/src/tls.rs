//! Test certificates: a throwaway CA and a server certificate it signs for `127.0.0.1` and
//! `localhost`, written as PEM files for frps (`transport.tls.certFile`/`keyFile`) and frpc
//! (`transport.tls.trustedCaFile`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// PEM files of one CA and the server certificate it issued.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (what frpc trusts).
    pub ca_cert: PathBuf,
    /// The server certificate (frps `certFile`).
    pub server_cert: PathBuf,
    /// The server's private key (frps `keyFile`).
    pub server_key: PathBuf,
    /// A client certificate issued by the same CA (frpc `certFile`, for mutual TLS).
    pub client_cert: PathBuf,
    /// The client's private key (frpc `keyFile`).
    pub client_key: PathBuf,
}

/// Generates a CA and a server certificate (SANs `127.0.0.1`, `localhost`) into `dir`, with
/// file names starting with `prefix`.
pub fn generate(dir: &Path, prefix: &str) -> Result<TlsFiles> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("frp e2e CA {prefix}"));
    let ca_key = KeyPair::generate().context("CA key")?;
    let ca = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .context("server certificate params")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "frp e2e server");
    let key = KeyPair::generate().context("server key")?;
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .context("signing the server certificate")?;

    let mut client_params =
        CertificateParams::new(Vec::<String>::new()).context("client certificate params")?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, "frp e2e client");
    let client_key = KeyPair::generate().context("client key")?;
    let client_cert = client_params
        .signed_by(&client_key, &ca, &ca_key)
        .context("signing the client certificate")?;

    let files = TlsFiles {
        ca_cert: dir.join(format!("{prefix}-ca.crt")),
        server_cert: dir.join(format!("{prefix}-server.crt")),
        server_key: dir.join(format!("{prefix}-server.key")),
        client_cert: dir.join(format!("{prefix}-client.crt")),
        client_key: dir.join(format!("{prefix}-client.key")),
    };
    for (path, pem) in [
        (&files.ca_cert, ca.pem()),
        (&files.server_cert, cert.pem()),
        (&files.server_key, key.serialize_pem()),
        (&files.client_cert, client_cert.pem()),
        (&files.client_key, client_key.serialize_pem()),
    ] {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = generate(dir.path(), "t").expect("generate");
        let ca = std::fs::read_to_string(&files.ca_cert).expect("ca");
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(&files.server_key).expect("key");
        assert!(key.contains("PRIVATE KEY"));
    }
}
