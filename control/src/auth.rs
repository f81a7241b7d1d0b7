//! Token authentication and run ids (frp `pkg/auth/token.go`, `pkg/auth/pass.go`,
//! `pkg/util/util/util.go`).
//!
//! A privilege key is `hex(md5(token ++ decimal(timestamp)))`. frps compares it in constant
//! time and applies no freshness window: any timestamp is accepted. The same formula signs
//! visitor connections with a proxy's `secretKey` (`NewVisitorConn.sign_key`).
//!
//! The additional scopes extend the check to `Ping` (`HeartBeats`) and `NewWorkConn`
//! (`NewWorkConns`); without a scope those messages carry no key and are not checked.
//! Clock readings come in as arguments (`now_unix`), keeping this module pure.
//!
//! OIDC is not here: it needs HTTP. Its verifier can implement [`AuthVerifier`] elsewhere.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::msg::{Login, NewWorkConn, Ping};
use crate::wire_error;

/// `hex(md5(token ++ decimal(timestamp)))`, lowercase, 32 characters (frp `util.GetAuthKey`).
pub fn privilege_key(token: &str, timestamp: i64) -> String {
    let mut md5 = Md5::new();
    md5.update(token.as_bytes());
    md5.update(timestamp.to_string().as_bytes());
    hex::encode(md5.finalize())
}

/// Whether `key` is the privilege key for `token` and `timestamp`, compared in constant time.
pub fn verify_privilege_key(token: &str, timestamp: i64, key: &str) -> bool {
    privilege_key(token, timestamp)
        .as_bytes()
        .ct_eq(key.as_bytes())
        .into()
}

/// Length of a run id frps generates.
pub const RUN_ID_LEN: usize = 16;

/// A run id from 8 random bytes: 16 lowercase hex characters.
///
/// frp's `util.RandID` draws 9 bytes and keeps the first 16 hex digits, so only the first 8
/// bytes ever matter; the caller supplies them so this stays deterministic.
pub fn run_id(random: [u8; 8]) -> String {
    hex::encode(random)
}

/// A run id drawn from `rng`.
pub fn generate_run_id<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut random = [0u8; 8];
    rng.fill_bytes(&mut random);
    run_id(random)
}

/// An `auth.additionalScopes` entry (frp `v1.AuthScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScope {
    /// `"HeartBeats"`: every `Ping` carries and is checked for a privilege key.
    HeartBeats,
    /// `"NewWorkConns"`: every `NewWorkConn` carries and is checked for a privilege key.
    NewWorkConns,
}

impl AuthScope {
    /// frp's config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScope::HeartBeats => "HeartBeats",
            AuthScope::NewWorkConns => "NewWorkConns",
        }
    }
}

impl FromStr for AuthScope {
    type Err = UnknownAuthScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HeartBeats" => Ok(AuthScope::HeartBeats),
            "NewWorkConns" => Ok(AuthScope::NewWorkConns),
            _ => Err(UnknownAuthScope(s.to_owned())),
        }
    }
}

/// A scope name frp does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown auth scope {0:?}, expected HeartBeats or NewWorkConns")]
pub struct UnknownAuthScope(pub String);

/// A failed check. `Display` is the exact text frps sends when `detailedErrorsToClient` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Bad `Login.privilege_key`.
    #[error("{}", wire_error::LOGIN_TOKEN_MISMATCH)]
    Login,
    /// Bad `Ping.privilege_key` under the `HeartBeats` scope.
    #[error("{}", wire_error::PING_TOKEN_MISMATCH)]
    Ping,
    /// Bad `NewWorkConn.privilege_key` under the `NewWorkConns` scope.
    #[error("{}", wire_error::NEW_WORK_CONN_TOKEN_MISMATCH)]
    NewWorkConn,
}

impl AuthError {
    /// The summary frps sends instead when `detailedErrorsToClient = false`.
    pub fn summary(self) -> &'static str {
        match self {
            AuthError::Login => wire_error::REGISTER_CONTROL_SUMMARY,
            AuthError::Ping => wire_error::INVALID_PING_SUMMARY,
            AuthError::NewWorkConn => wire_error::INVALID_NEW_WORK_CONN_SUMMARY,
        }
    }

    /// The string for the reply's `error` field, honouring `detailedErrorsToClient`.
    pub fn wire_message(self, detailed: bool) -> String {
        wire_error::response_error(self.summary(), &self.to_string(), detailed)
    }
}

/// frps' check of the three authenticated messages (frp's `auth.Verifier`).
pub trait AuthVerifier {
    /// Checks a `Login`.
    fn verify_login(&self, login: &Login) -> Result<(), AuthError>;
    /// Checks a `Ping` (a no-op without the `HeartBeats` scope).
    fn verify_ping(&self, ping: &Ping) -> Result<(), AuthError>;
    /// Checks a `NewWorkConn` (a no-op without the `NewWorkConns` scope).
    fn verify_new_work_conn(&self, msg: &NewWorkConn) -> Result<(), AuthError>;
}

/// Token method, both sides: frpc fills keys in, frps verifies them.
#[derive(Clone)]
pub struct TokenAuth {
    token: String,
    heartbeats: bool,
    new_work_conns: bool,
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("token", &"***")
            .field("heartbeats", &self.heartbeats)
            .field("new_work_conns", &self.new_work_conns)
            .finish()
    }
}

impl TokenAuth {
    /// Token auth with the given `auth.additionalScopes`.
    pub fn new(token: impl Into<String>, scopes: &[AuthScope]) -> Self {
        Self {
            token: token.into(),
            heartbeats: scopes.contains(&AuthScope::HeartBeats),
            new_work_conns: scopes.contains(&AuthScope::NewWorkConns),
        }
    }

    /// Whether `scope` is enabled.
    pub fn has_scope(&self, scope: AuthScope) -> bool {
        match scope {
            AuthScope::HeartBeats => self.heartbeats,
            AuthScope::NewWorkConns => self.new_work_conns,
        }
    }

    /// Signs a login with the timestamp it already carries (frpc sets it when building it).
    pub fn set_login(&self, login: &mut Login) {
        login.privilege_key = privilege_key(&self.token, login.timestamp);
    }

    /// Stamps and signs a ping under the `HeartBeats` scope; leaves it untouched otherwise.
    pub fn set_ping(&self, ping: &mut Ping, now_unix: i64) {
        if self.heartbeats {
            ping.timestamp = now_unix;
            ping.privilege_key = privilege_key(&self.token, now_unix);
        }
    }

    /// Stamps and signs a work-connection hello under the `NewWorkConns` scope.
    pub fn set_new_work_conn(&self, msg: &mut NewWorkConn, now_unix: i64) {
        if self.new_work_conns {
            msg.timestamp = now_unix;
            msg.privilege_key = privilege_key(&self.token, now_unix);
        }
    }

    fn check(&self, timestamp: i64, key: &str, err: AuthError) -> Result<(), AuthError> {
        if verify_privilege_key(&self.token, timestamp, key) {
            Ok(())
        } else {
            Err(err)
        }
    }
}

impl AuthVerifier for TokenAuth {
    fn verify_login(&self, login: &Login) -> Result<(), AuthError> {
        self.check(login.timestamp, &login.privilege_key, AuthError::Login)
    }

    fn verify_ping(&self, ping: &Ping) -> Result<(), AuthError> {
        if !self.heartbeats {
            return Ok(());
        }
        self.check(ping.timestamp, &ping.privilege_key, AuthError::Ping)
    }

    fn verify_new_work_conn(&self, msg: &NewWorkConn) -> Result<(), AuthError> {
        if !self.new_work_conns {
            return Ok(());
        }
        self.check(msg.timestamp, &msg.privilege_key, AuthError::NewWorkConn)
    }
}

/// Accepts everything: frps uses it for internal (ssh-tunnel) logins whose
/// `client_spec.always_auth_pass` is set (frp `auth.AlwaysPassVerifier`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysPass;

impl AuthVerifier for AlwaysPass {
    fn verify_login(&self, _: &Login) -> Result<(), AuthError> {
        Ok(())
    }

    fn verify_ping(&self, _: &Ping) -> Result<(), AuthError> {
        Ok(())
    }

    fn verify_new_work_conn(&self, _: &NewWorkConn) -> Result<(), AuthError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn key_formula() {
        // md5("abc1") computed independently.
        assert_eq!(privilege_key("abc", 1), hex::encode(Md5::digest(b"abc1")));
        assert_eq!(privilege_key("", -5), hex::encode(Md5::digest(b"-5")));
        assert!(verify_privilege_key("abc", 1, &privilege_key("abc", 1)));
        assert!(!verify_privilege_key("abc", 2, &privilege_key("abc", 1)));
        assert!(!verify_privilege_key("abc", 1, ""));
    }

    #[test]
    fn scopes_gate_ping_and_work_conn() {
        let plain = TokenAuth::new("t", &[]);
        let mut ping = Ping::default();
        plain.set_ping(&mut ping, 100);
        assert_eq!(ping, Ping::default());
        assert_eq!(plain.verify_ping(&ping), Ok(()));
        let mut nwc = NewWorkConn::default();
        plain.set_new_work_conn(&mut nwc, 100);
        assert_eq!(nwc, NewWorkConn::default());

        let scoped = TokenAuth::new("t", &[AuthScope::HeartBeats, AuthScope::NewWorkConns]);
        scoped.set_ping(&mut ping, 100);
        assert_eq!(ping.timestamp, 100);
        assert_eq!(scoped.verify_ping(&ping), Ok(()));
        assert_eq!(scoped.verify_ping(&Ping::default()), Err(AuthError::Ping));
        scoped.set_new_work_conn(&mut nwc, 7);
        assert_eq!(scoped.verify_new_work_conn(&nwc), Ok(()));
        nwc.timestamp = 8;
        assert_eq!(
            scoped.verify_new_work_conn(&nwc),
            Err(AuthError::NewWorkConn)
        );
        let other = TokenAuth::new("u", &[AuthScope::HeartBeats]);
        assert_eq!(other.verify_ping(&ping), Err(AuthError::Ping));
    }

    #[test]
    fn login_round_trip_and_errors() {
        let auth = TokenAuth::new("abc", &[]);
        let mut login = Login {
            timestamp: 42,
            ..Default::default()
        };
        auth.set_login(&mut login);
        assert_eq!(auth.verify_login(&login), Ok(()));
        let err = TokenAuth::new("abd", &[]).verify_login(&login).unwrap_err();
        assert_eq!(
            err.to_string(),
            "token in login doesn't match token from configuration"
        );
        assert_eq!(err.wire_message(false), "register control error");
        assert_eq!(AuthError::Ping.wire_message(false), "invalid ping");
        assert_eq!(
            AuthError::NewWorkConn.wire_message(true),
            "token in NewWorkConn doesn't match token from configuration"
        );
        assert_eq!(AlwaysPass.verify_login(&Login::default()), Ok(()));
        assert!(!format!("{auth:?}").contains("abc"));
    }

    #[test]
    fn run_ids_are_16_lower_hex() {
        assert_eq!(run_id([0xab, 0, 1, 2, 3, 4, 5, 0xff]), "ab000102030405ff");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = generate_run_id(&mut rng);
        let b = generate_run_id(&mut rng);
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), RUN_ID_LEN);
            assert!(id
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        }
    }

    #[test]
    fn scope_names() {
        assert_eq!("HeartBeats".parse(), Ok(AuthScope::HeartBeats));
        assert_eq!(
            AuthScope::NewWorkConns.as_str().parse(),
            Ok(AuthScope::NewWorkConns)
        );
        assert!("heartbeats".parse::<AuthScope>().is_err());
    }
}
