//! frpc's command line, as frp v0.65.0 `cmd/frpc/sub`: `frpc -c FILE` (default `./frpc.ini`),
//! `frpc verify -c FILE`, `frpc -v`, `--strict_config`. The admin-API subcommands (`reload`,
//! `status`, `stop`), `nathole` and the single-proxy modes answer with a clear "not supported
//! yet" error until the issues that bring them. Flag names accept `_` and `-` alike.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use cmd::args::normalize_args;

/// `frpc` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "frpc",
    about = "frpc is the client of frp (https://github.com/fatedier/frp)",
    disable_version_flag = true
)]
pub struct Cli {
    /// config file of frpc
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "./frpc.ini"
    )]
    pub config: PathBuf,
    /// config directory, run one frpc service for each file in config directory
    #[arg(long = "config-dir", global = true)]
    pub config_dir: Option<PathBuf>,
    /// version of frpc
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// strict config parsing mode, unknown fields will cause an errors
    #[arg(long = "strict-config", global = true, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub strict_config: bool,
    /// Subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// frpc subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify that the configures is valid
    Verify,
    /// Hot-Reload frpc configuration
    Reload,
    /// Overview of all proxies status
    Status,
    /// Stop the running frpc
    Stop,
    /// Any other frp subcommand (nathole, tcp, udp, http, ... single-proxy modes).
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(normalize_args(args.iter().map(|s| s.to_string()))).expect("parse")
    }

    #[test]
    fn default_config_path_is_frps_ini() {
        let c = parse(&["frpc"]);
        assert_eq!(c.config, PathBuf::from("./frpc.ini"));
        assert!(c.strict_config);
    }

    #[test]
    fn subcommands() {
        assert!(matches!(
            parse(&["frpc", "verify", "-c", "a.toml"]).command,
            Some(Command::Verify)
        ));
        assert!(matches!(
            parse(&["frpc", "reload"]).command,
            Some(Command::Reload)
        ));
        match parse(&["frpc", "tcp", "-l", "22"]).command {
            Some(Command::Other(v)) => assert_eq!(v[0], "tcp"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!parse(&["frpc", "--strict_config=false"]).strict_config);
    }
}
