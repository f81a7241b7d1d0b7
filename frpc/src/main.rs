//! The `frpc` binary: command line, config, logging and signals around [`frpc::run`].

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use frpc::cli::{normalize_args, Cli, Command};
use tracing::info;

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if cli.version {
        println!("{}", frpc::VERSION);
        return ExitCode::SUCCESS;
    }
    match &cli.command {
        Some(Command::Verify) => return verify(&cli),
        Some(Command::Reload | Command::Status | Command::Stop) => {
            println!(
                "frpc: the admin API (reload, status, stop) is not supported yet by this frpc"
            );
            return ExitCode::FAILURE;
        }
        Some(Command::Other(args)) => {
            let name = args.first().map(String::as_str).unwrap_or("");
            println!("frpc: subcommand [{name}] is not supported yet by this frpc");
            return ExitCode::FAILURE;
        }
        None => {}
    }
    if cli.config_dir.is_some() {
        println!("frpc: --config_dir is not supported yet by this frpc");
        return ExitCode::FAILURE;
    }
    let config = match conf::load_client_config(&cli.config, cli.strict_config) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = cmd::log::init(&cmd::log::LogOptions {
        to: config.common.log.to.clone(),
        level: config.common.log.level.as_str().into(),
    }) {
        println!("{e}");
        return ExitCode::FAILURE;
    }
    info!(
        "start frpc service for config file [{}]",
        cli.config.display()
    );
    match serve(config) {
        Ok(()) => {
            info!(
                "frpc service for config file [{}] stopped",
                cli.config.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `frpc verify -c FILE`.
fn verify(cli: &Cli) -> ExitCode {
    match conf::load_client_config(&cli.config, cli.strict_config) {
        Ok(_) => {
            println!(
                "frpc: the configuration file {} syntax is ok",
                cli.config.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: conf::ClientConfig) -> anyhow::Result<()> {
    cmd::signal::run_until_signal(|shutdown| frpc::run(config, transports::TokioNet, shutdown))
        .context("start tokio runtime")??;
    Ok(())
}
