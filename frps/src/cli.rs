//! frps's command line, as frp v0.65.0 `cmd/frps` (cobra + pflag): `frps -c FILE`,
//! `frps [flags]` with no file, `frps verify -c FILE`, `frps -v`. Flag names accept `_` and `-`
//! interchangeably (frp's `WordSepNormalizeFunc`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use cmd::args::normalize_args;

/// `frps` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "frps",
    about = "frps is the server of frp (https://github.com/fatedier/frp)",
    disable_version_flag = true
)]
pub struct Cli {
    /// config file of frps
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// version of frps
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// strict config parsing mode, unknown fields will cause errors
    #[arg(long = "strict-config", global = true, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub strict_config: bool,
    /// Server settings used when no config file is given.
    #[command(flatten)]
    pub flags: ServerFlags,
    /// Subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// frps subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify that the configures is valid
    Verify,
}

/// The flags frp registers in `RegisterServerConfigFlags`; defaults are frp's CLI defaults.
#[derive(Debug, Args, Default)]
pub struct ServerFlags {
    /// bind address
    #[arg(long = "bind-addr", default_value = "0.0.0.0")]
    pub bind_addr: String,
    /// bind port
    #[arg(short = 'p', long = "bind-port", default_value_t = 7000)]
    pub bind_port: u16,
    /// kcp bind udp port
    #[arg(long = "kcp-bind-port", default_value_t = 0)]
    pub kcp_bind_port: u16,
    /// quic bind udp port
    #[arg(long = "quic-bind-port", default_value_t = 0)]
    pub quic_bind_port: u16,
    /// proxy bind address
    #[arg(long = "proxy-bind-addr", default_value = "0.0.0.0")]
    pub proxy_bind_addr: String,
    /// vhost http port
    #[arg(long = "vhost-http-port", default_value_t = 0)]
    pub vhost_http_port: u16,
    /// vhost https port
    #[arg(long = "vhost-https-port", default_value_t = 0)]
    pub vhost_https_port: u16,
    /// vhost http response header timeout
    #[arg(long = "vhost-http-timeout", default_value_t = 60)]
    pub vhost_http_timeout: i64,
    /// dashboard address
    #[arg(long = "dashboard-addr", default_value = "0.0.0.0")]
    pub dashboard_addr: String,
    /// dashboard port
    #[arg(long = "dashboard-port", default_value_t = 0)]
    pub dashboard_port: u16,
    /// dashboard user
    #[arg(long = "dashboard-user", default_value = "admin")]
    pub dashboard_user: String,
    /// dashboard password
    #[arg(long = "dashboard-pwd", default_value = "admin")]
    pub dashboard_pwd: String,
    /// enable prometheus dashboard
    #[arg(long = "enable-prometheus", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub enable_prometheus: bool,
    /// log file
    #[arg(long = "log-file", default_value = "console")]
    pub log_file: String,
    /// log level
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// log max days
    #[arg(long = "log-max-days", default_value_t = 3)]
    pub log_max_days: i64,
    /// disable log color in console
    #[arg(long = "disable-log-color", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub disable_log_color: bool,
    /// auth token
    #[arg(short = 't', long = "token", default_value = "")]
    pub token: String,
    /// subdomain host
    #[arg(long = "subdomain-host", default_value = "")]
    pub subdomain_host: String,
    /// allow ports
    #[arg(long = "allow-ports", default_value = "")]
    pub allow_ports: String,
    /// max ports per client
    #[arg(long = "max-ports-per-client", default_value_t = 0)]
    pub max_ports_per_client: i64,
    /// frps tls only
    #[arg(long = "tls-only", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub tls_only: bool,
    /// if enable dashboard tls mode
    #[arg(long = "dashboard-tls-mode", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub dashboard_tls_mode: bool,
    /// dashboard tls cert file
    #[arg(long = "dashboard-tls-cert-file", default_value = "")]
    pub dashboard_tls_cert_file: String,
    /// dashboard tls key file
    #[arg(long = "dashboard-tls-key-file", default_value = "")]
    pub dashboard_tls_key_file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let argv = normalize_args(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(argv).expect("parse")
    }

    #[test]
    fn underscores_and_dashes_are_the_same_flag() {
        let a = parse(&["frps", "--bind_port", "7100", "--max_ports_per_client=3"]);
        let b = parse(&["frps", "--bind-port=7100", "--max-ports-per-client", "3"]);
        assert_eq!(a.flags.bind_port, 7100);
        assert_eq!(b.flags.bind_port, 7100);
        assert_eq!(a.flags.max_ports_per_client, 3);
        assert_eq!(b.flags.max_ports_per_client, 3);
    }

    #[test]
    fn defaults_match_frp_cli() {
        let c = parse(&["frps"]);
        assert_eq!(c.flags.bind_port, 7000);
        assert_eq!(c.flags.bind_addr, "0.0.0.0");
        assert!(c.strict_config);
        assert!(!c.flags.tls_only);
        assert!(c.config.is_none());
    }

    #[test]
    fn verify_and_bools() {
        let c = parse(&["frps", "verify", "-c", "x.toml"]);
        assert!(matches!(c.command, Some(Command::Verify)));
        assert_eq!(c.config.as_deref(), Some(std::path::Path::new("x.toml")));
        let c = parse(&["frps", "--tls_only", "--strict_config=false", "-t", "abc"]);
        assert!(c.flags.tls_only);
        assert!(!c.strict_config);
        assert_eq!(c.flags.token, "abc");
    }
}
