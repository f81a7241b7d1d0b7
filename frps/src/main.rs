//! The `frps` binary: command line, config, logging and signals around [`frps::run`].

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use frps::cli::{normalize_args, Cli, Command};
use tracing::info;

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if cli.version {
        println!("{}", frps::VERSION);
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Verify) = cli.command {
        return verify(&cli);
    }
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            println!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = cmd::log::init(&cmd::log::LogOptions {
        to: config.log.to.clone(),
        level: config.log.level.as_str().into(),
    }) {
        println!("{e}");
        return ExitCode::FAILURE;
    }
    match &cli.config {
        Some(path) => info!("frps uses config file: {}", path.display()),
        None => info!("frps uses command line arguments for config"),
    }
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `frps verify -c FILE`.
fn verify(cli: &Cli) -> ExitCode {
    let Some(path) = &cli.config else {
        println!("frps: the configuration file is not specified");
        return ExitCode::SUCCESS;
    };
    match conf::load_server_config(path, cli.strict_config) {
        Ok(_) => {
            println!(
                "frps: the configuration file {} syntax is ok",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The config from `-c FILE`, or from the flags with frp's defaults.
fn load(cli: &Cli) -> anyhow::Result<conf::ServerConfig> {
    match &cli.config {
        Some(path) => Ok(conf::load_server_config(path, cli.strict_config)?),
        None => frps::config_from_flags(&cli.flags).context("invalid command line flags"),
    }
}

fn serve(config: conf::ServerConfig) -> anyhow::Result<()> {
    cmd::signal::run_until_signal(|shutdown| frps::run(config, transports::TokioNet, shutdown))
        .context("start tokio runtime")??;
    Ok(())
}
