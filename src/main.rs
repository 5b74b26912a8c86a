//! `hijack`: the reference server and its tools.
//! (Built as an empty program under `--cfg loom`, where only the models run.)
#![cfg_attr(loom, allow(unused))]

#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
use std::process::ExitCode;

#[cfg(not(loom))]
use clap::{Parser, Subcommand};

/// The reference implementation of HTTP/1.1 connection hijacking.
#[cfg(not(loom))]
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(loom))]
#[derive(Subcommand)]
enum Command {
    /// Serve the demo endpoints until interrupted.
    ///
    /// `/echo` (with `Connection: Upgrade` and `Upgrade: echo`) answers 101, hijacks and echoes
    /// every byte (the handed-over bytes first) until the client half-closes.
    /// `/close-notify` waits for the client to go away and logs when it noticed.
    /// `/` answers a short text.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
}

#[cfg(not(loom))]
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { addr } => {
            let config = hijack::ServerConfig::default();
            match hijack::Server::bind(addr.as_str(), config, hijack::demo::Demo::default()) {
                Ok(server) => {
                    println!("listening on http://{}", server.local_addr());
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    eprintln!("hijack serve: cannot listen on {addr}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
