//! `hijack`: the reference server and its tools.
//! (Built as an empty program under `--cfg loom`, where only the models run.)
#![cfg_attr(loom, allow(unused))]
#![forbid(unsafe_code)]

#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
mod conform;

#[cfg(not(loom))]
use std::process::ExitCode;

#[cfg(not(loom))]
use clap::{Parser, Subcommand};

/// Counts every allocation of this program, so that `/stats` can report live heap bytes
/// (SPEC.md#conformance-endpoints) without unsafe code of ours.
#[cfg(not(loom))]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Heap bytes this program holds right now: allocated minus freed (stats_alloc already
/// counts a realloc's growth as allocated and its shrinking as freed).
#[cfg(not(loom))]
fn live_heap_bytes() -> u64 {
    let stats = GLOBAL.stats();
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated) as u64
}

/// The demo handler of `hijack serve` and `hijack conform`, with its `/stats` probes, and
/// the server configuration that feeds its connection count.
#[cfg(not(loom))]
fn reference_server() -> (hijack::demo::Demo, hijack::ServerConfig) {
    let demo = hijack::demo::Demo::with_heap_probe(live_heap_bytes);
    let config = hijack::ServerConfig {
        on_state: Some(demo.state_hook()),
        ..hijack::ServerConfig::default()
    };
    (demo, config)
}

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
    /// Serve the demo and conformance endpoints until interrupted.
    ///
    /// `/echo` (with `Connection: Upgrade` and `Upgrade: echo`) answers 101, hijacks and echoes
    /// every byte (the handed-over bytes first) until the client half-closes.
    /// `/close-notify/{id}` waits for the client to go away and records when it noticed;
    /// `/events/{id}` tells. `/hold`, `/release` and `/stats` serve the memory cases.
    /// Anything else answers a short text.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Test a server's hijack, close-notify and framing handling, black-box, over TCP.
    ///
    /// Without URL, starts the reference server in-process on 127.0.0.1 and tests it.
    /// Exit code 0 when no case FAILs, 1 on any FAIL, 2 on a usage or connection error.
    Conform(conform::ConformArgs),
}

#[cfg(not(loom))]
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own code is 2 for usage errors and 0 for --help / --version.
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let default_filter = match cli.command {
        // The in-process server's per-request logs would drown the progress lines.
        Command::Conform(_) => "warn",
        Command::Serve { .. } => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { addr } => {
            let (demo, config) = reference_server();
            match hijack::Server::bind(addr.as_str(), config, demo) {
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
        Command::Conform(args) => conform::main(args, || {
            let (demo, config) = reference_server();
            hijack::Server::bind("127.0.0.1:0", config, demo)
        }),
    }
}
