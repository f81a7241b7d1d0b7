//! `auth.*` for both sides: token / OIDC settings and `tokenSource` (frp
//! `pkg/config/v1/server.go` `AuthServerConfig`, `client.go` `AuthClientConfig`,
//! `value_source.go`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decode::empty_default;
use crate::types::Secret;

/// `auth.method`; `""` means `token`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethod {
    /// Shared token; the login key is `md5(token + timestamp)`.
    #[default]
    #[serde(rename = "token")]
    Token,
    /// OpenID Connect client-credentials tokens.
    #[serde(rename = "oidc")]
    Oidc,
}

/// `auth.additionalScopes` entries: messages that also carry the auth key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthScope {
    /// Authenticate every `Ping`.
    #[serde(rename = "HeartBeats")]
    HeartBeats,
    /// Authenticate every `NewWorkConn`.
    #[serde(rename = "NewWorkConns")]
    NewWorkConns,
}

impl AuthScope {
    /// frp's spelling, as in the config and as control's `AuthScope` parses it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScope::HeartBeats => "HeartBeats",
            AuthScope::NewWorkConns => "NewWorkConns",
        }
    }
}

/// Kinds of [`ValueSource`] (only `file` in frp 0.65.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueSourceKind {
    /// Read the value from a file.
    #[serde(rename = "file")]
    File,
}

/// `auth.tokenSource`: load the token from elsewhere at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueSource {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: ValueSourceKind,
    /// `file` (required for `type = "file"`).
    #[serde(rename = "file", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSource>,
}

/// `auth.tokenSource.file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSource {
    /// `path`: read as-is (relative paths are relative to the working directory, as in frp);
    /// the contents are trimmed of surrounding whitespace.
    #[serde(rename = "path", default)]
    pub path: String,
}

impl ValueSource {
    /// frp `ValueSource.Validate`: the problem, if any.
    pub fn check(&self) -> Option<String> {
        match (&self.kind, &self.file) {
            (ValueSourceKind::File, None) => {
                Some("file configuration is required when type is 'file'".into())
            }
            (ValueSourceKind::File, Some(f)) if f.path.is_empty() => {
                Some("file path cannot be empty".into())
            }
            _ => None,
        }
    }

    /// Reads the value (frp `ValueSource.Resolve`): the file's contents, trimmed.
    pub fn resolve(&self) -> Result<String, String> {
        if let Some(p) = self.check() {
            return Err(p);
        }
        let path = self
            .file
            .as_ref()
            .map(|f| f.path.as_str())
            .unwrap_or_default();
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("failed to read file {path}: {e}"))
    }
}

/// frps `auth` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServerConfig {
    /// `method`. Default `token`.
    #[serde(
        rename = "method",
        default,
        deserialize_with = "empty_default::deserialize"
    )]
    pub method: AuthMethod,
    /// `additionalScopes`.
    #[serde(rename = "additionalScopes", default)]
    pub additional_scopes: Vec<AuthScope>,
    /// `token`.
    #[serde(rename = "token", default)]
    pub token: Secret,
    /// `tokenSource`; resolved into `token` (and cleared) at load when `method = "token"`.
    #[serde(
        rename = "tokenSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token_source: Option<ValueSource>,
    /// `oidc`.
    #[serde(rename = "oidc", default)]
    pub oidc: AuthOidcServerConfig,
}

/// frps `auth.oidc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOidcServerConfig {
    /// `issuer`: expected issuer; also where signing keys are fetched.
    #[serde(rename = "issuer", default)]
    pub issuer: String,
    /// `audience`: expected audience; empty skips the check.
    #[serde(rename = "audience", default)]
    pub audience: String,
    /// `skipExpiryCheck`.
    #[serde(rename = "skipExpiryCheck", default)]
    pub skip_expiry_check: bool,
    /// `skipIssuerCheck`.
    #[serde(rename = "skipIssuerCheck", default)]
    pub skip_issuer_check: bool,
}

/// frpc `auth` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthClientConfig {
    /// `method`. Default `token`.
    #[serde(
        rename = "method",
        default,
        deserialize_with = "empty_default::deserialize"
    )]
    pub method: AuthMethod,
    /// `additionalScopes`.
    #[serde(rename = "additionalScopes", default)]
    pub additional_scopes: Vec<AuthScope>,
    /// `token`.
    #[serde(rename = "token", default)]
    pub token: Secret,
    /// `tokenSource`; resolved into `token` (and cleared) at load when `method = "token"`.
    #[serde(
        rename = "tokenSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token_source: Option<ValueSource>,
    /// `oidc`.
    #[serde(rename = "oidc", default)]
    pub oidc: AuthOidcClientConfig,
}

/// frpc `auth.oidc`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOidcClientConfig {
    /// `clientID`.
    #[serde(rename = "clientID", default)]
    pub client_id: String,
    /// `clientSecret`.
    #[serde(rename = "clientSecret", default)]
    pub client_secret: Secret,
    /// `audience`.
    #[serde(rename = "audience", default)]
    pub audience: String,
    /// `scope`.
    #[serde(rename = "scope", default)]
    pub scope: String,
    /// `tokenEndpointURL`.
    #[serde(rename = "tokenEndpointURL", default)]
    pub token_endpoint_url: String,
    /// `additionalEndpointParams`: extra form parameters for the token request.
    #[serde(rename = "additionalEndpointParams", default)]
    pub additional_endpoint_params: BTreeMap<String, String>,
    /// `trustedCaFile` for the token endpoint's TLS.
    #[serde(rename = "trustedCaFile", default)]
    pub trusted_ca_file: String,
    /// `insecureSkipVerify` for the token endpoint's TLS.
    #[serde(rename = "insecureSkipVerify", default)]
    pub insecure_skip_verify: bool,
    /// `proxyURL` for the token endpoint.
    #[serde(rename = "proxyURL", default)]
    pub proxy_url: String,
}

/// Resolves `tokenSource` into `token` the way frp's `Auth*Config.Complete` does: only for
/// `method = "token"`; the source is cleared afterwards. Both set is refused here (frp 0.65.0
/// would silently let the file win, because its exclusivity check runs after `Complete`).
pub(crate) fn resolve_token_source(
    method: AuthMethod,
    token: &mut Secret,
    source: &mut Option<ValueSource>,
) -> Result<(), String> {
    if method != AuthMethod::Token {
        return Ok(());
    }
    let Some(src) = source.take() else {
        return Ok(());
    };
    if !token.is_empty() {
        *source = Some(src);
        return Err("cannot specify both auth.token and auth.tokenSource".into());
    }
    let value = src
        .resolve()
        .map_err(|e| format!("failed to resolve auth.tokenSource: {e}"))?;
    *token = Secret::new(value);
    Ok(())
}
