//! `hijack`: the reference server (`hijack serve`) and the conformance suite (`hijack conform`).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hijack_conform::{Profile, RunOptions, RunReport, Suite, Verdict, demo::Demo, html, parse_url};

/// Counts every allocation of this program, so that `/stats` can report live heap bytes
/// (SPEC.md#conformance-endpoints) without unsafe code of ours.
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Heap bytes this program holds right now: allocated minus freed (stats_alloc already
/// counts a realloc's growth as allocated and its shrinking as freed).
fn live_heap_bytes() -> u64 {
    let stats = GLOBAL.stats();
    stats
        .bytes_allocated
        .saturating_sub(stats.bytes_deallocated) as u64
}

/// The demo handler of `hijack serve` and `hijack conform`, with its `/stats` probes, and
/// the server configuration that feeds its connection count.
fn reference_server() -> (Demo, hijack::ServerConfig) {
    let demo = Demo::with_heap_probe(live_heap_bytes);
    let config = hijack::ServerConfig {
        on_state: Some(demo.state_hook()),
        ..hijack::ServerConfig::default()
    };
    (demo, config)
}

/// The reference implementation of HTTP/1.1 connection hijacking.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the demo and conformance endpoints until interrupted.
    ///
    /// `/echo` (with `Connection: Upgrade` and `Upgrade: echo`) answers 101, hijacks and echoes
    /// every byte (the handed-over bytes first) until the client half-closes.
    /// `/close-notify/{id}` waits for the client to go away and records when it noticed;
    /// `/events/{id}` tells. `/hold`, `/release` and `/stats` serve the memory cases.
    /// `/ws` is a WebSocket echo (RFC 6455, SPEC.md#websocket-profile). Anything else answers a
    /// short text.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Test a server's hijack, close-notify and framing handling, black-box, over TCP.
    ///
    /// Without URL, starts the reference server in-process on 127.0.0.1 and tests it.
    /// Exit code 0 when no case FAILs, 1 on any FAIL, 2 on a usage or connection error.
    Conform(Box<ConformArgs>),
    /// Write the HTML matrix of one or more JSON reports (`hijack conform --json`): a column
    /// per report, named by its file name without `.json`, a row per case.
    ///
    /// Exit code 0, or 2 when a report cannot be read or is not a conformance report, or OUT
    /// cannot be written.
    Report {
        /// Write the page to OUT.
        #[arg(long, value_name = "OUT")]
        html: PathBuf,
        /// The JSON reports, one column each, in this order.
        #[arg(value_name = "REPORT.json", required = true)]
        reports: Vec<PathBuf>,
    },
}

/// Options of `hijack conform`.
#[derive(clap::Args, Debug)]
struct ConformArgs {
    /// The server under test, `http://HOST:PORT` [default: the reference server, started
    /// in-process on 127.0.0.1].
    url: Option<String>,
    /// Run only the cases whose name matches GLOB (repeatable), e.g. 'handover/*'
    /// [default: every case].
    #[arg(long = "case", value_name = "GLOB")]
    cases: Vec<String>,
    /// Run the cases of PROFILE (repeatable): raw (/echo and the framing cases), websocket
    /// (RFC 6455 on /ws), connect (CONNECT to an echo listener the harness runs on 127.0.0.1)
    /// [default: every profile the preflight finds the target offers].
    #[arg(long = "profile", value_name = "PROFILE", value_parser = parse_profile)]
    profiles: Vec<Profile>,
    /// Skip the cases whose name matches GLOB (repeatable) [default: none].
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Write the JSON report to FILE (checked writable before the run) [default: none].
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the JUnit XML report to FILE (checked writable before the run) [default: none].
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the HTML report to FILE: a page with a cell per case, each opening its misses,
    /// wire log and requirement (checked writable before the run) [default: none].
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Longest wait of one step of a case: a number with its unit, s or ms, e.g. 5s or 800ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Connections the memory case holds.
    #[arg(long, default_value_t = 500)]
    memory_conns: usize,
    /// The target is an intermediary (a reverse proxy) in front of a server that meets the
    /// contract: a case whose requirement binds only the origin server (passing a client's
    /// close on, honouring an Upgrade with a body) is held at SHOULD, because the RFCs let a
    /// proxy behave otherwise per hop [default: the target is the origin].
    #[arg(long)]
    intermediary: bool,
    /// Print the case names (after --case and --exclude) and exit.
    #[arg(long)]
    list: bool,
    /// Write every byte-level case as a JSON vector into DIR (DIR/GROUP/NAME.json) and exit.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Cases run at once.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Add the hostile-input cases of DIR (`*.http`, the format of SPEC.md#conformance-vectors);
    /// a file named as a compiled-in case replaces it [default: only the compiled-in corpus].
    #[arg(long, value_name = "DIR")]
    hostile: Option<PathBuf>,
    /// Add the vectors of DIR and its folders (`*.json`, SPEC.md#conformance-vectors: what
    /// --export and --explore write); a vector named as a case replaces it. With --case
    /// 'explore/*' only those run [default: none].
    #[arg(long, value_name = "DIR")]
    vectors: Option<PathBuf>,
    /// Explore instead of running the fixed cases: run up to N generated exchanges, each judged
    /// by the request framing model of SPEC.md, and shrink every distinct failure to a vector
    /// (SPEC.md#explore).
    #[arg(long, value_name = "N")]
    explore: Option<usize>,
    /// The seed of --explore's exchanges: the same seed, the same exchanges [default: from the
    /// clock, printed].
    #[arg(long, value_name = "S", requires = "explore")]
    seed: Option<u64>,
    /// Stop starting --explore exchanges after this long (shrinking comes after).
    #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "explore")]
    time: Duration,
    /// Shrink and report at most this many distinct kinds of failure found by --explore (the
    /// first exchange of each); later kinds are counted, and exploring goes on.
    #[arg(long, default_value_t = 10, requires = "explore")]
    max_findings: usize,
    /// The longest time --explore spends shrinking one failure.
    #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "explore")]
    shrink_time: Duration,
    /// Where --explore writes each shrunk failure as a vector (DIR/explore/NAME.json).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "hijack-explore",
        requires = "explore"
    )]
    explore_out: PathBuf,
    /// Let --explore send its exchanges to a host other than loopback (they include hostile
    /// requests; only explore servers you run or may test) [default: loopback only].
    #[arg(long, requires = "explore")]
    allow_remote: bool,
}

/// `5s`, `800ms`, `1.5s`: a number and its unit; a bare number is refused (is `5` seconds or
/// milliseconds?).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let Some(i) = s.find(|c: char| !c.is_ascii_digit() && c != '.') else {
        return Err(format!("{s:?} has no unit: write {s}s or {s}ms"));
    };
    let (number, unit) = s.split_at(i);
    let n: f64 = number.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1000.0,
        _ => return Err(format!("bad duration unit in {s:?} (use s or ms)")),
    };
    if !(secs > 0.0 && secs < 3600.0) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).map_err(|e| e.to_string())
}

/// A usage or connection error of `hijack conform`: exit code 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    usage_of("conform", msg)
}

/// A usage error of `hijack COMMAND`: exit code 2.
fn usage_of(command: &str, msg: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(io::stderr(), "hijack {command}: {msg}");
    ExitCode::from(2)
}

/// Writes `text` to stdout. A reader that went away (`hijack conform --list | head -1`) is
/// not an error of ours: the caller stops quietly.
fn print_out(text: &str) -> Result<(), io::Error> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

fn conform(args: ConformArgs) -> ExitCode {
    let mut suite = Suite::all();
    if let Some(dir) = &args.hostile
        && let Err(e) = suite.add_hostile_dir(dir)
    {
        return usage(format!("--hostile: {e}"));
    }
    if let Some(dir) = &args.vectors
        && let Err(e) = suite.add_vector_dir(dir)
    {
        return usage(format!("--vectors: {e}"));
    }
    if let Some(n) = args.explore {
        return explore(&args, n);
    }
    if let Err(e) = suite.select(&args.cases, &args.exclude) {
        return usage(e);
    }
    suite.select_profiles(&args.profiles);
    if args.list {
        let names: String = suite
            .cases()
            .iter()
            .map(|c| c.name().to_owned() + "\n")
            .collect();
        return match print_out(&names) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => usage(format!("stdout: {e}")),
            _ => ExitCode::SUCCESS,
        };
    }
    if let Some(dir) = &args.export {
        return match suite.export(dir) {
            Ok(n) => {
                let _ = writeln!(
                    io::stderr(),
                    "hijack conform: wrote {n} vectors to {}",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        };
    }
    if suite.cases().is_empty() {
        return usage("no case matches --case / --exclude");
    }
    if args.jobs == 0 {
        return usage("--jobs must be at least 1");
    }
    // The report files are opened before the run: a typo in a path costs nothing.
    let open = |path: &Option<PathBuf>| -> Result<Option<(PathBuf, File)>, ExitCode> {
        match path {
            None => Ok(None),
            Some(p) => File::create(p)
                .map(|f| Some((p.clone(), f)))
                .map_err(|e| usage(format!("cannot write {}: {e}", p.display()))),
        }
    };
    let json_file = match open(&args.json) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let junit_file = match open(&args.junit) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let html_file = match open(&args.html) {
        Ok(f) => f,
        Err(code) => return code,
    };

    // Keep the in-process server alive for the whole run.
    let (addr, target_name, _reference) = match target(&args) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let options = RunOptions {
        timeout: args.timeout,
        jobs: args.jobs,
        memory_conns: args.memory_conns,
        intermediary: args.intermediary,
        progress: true,
        profiles: args.profiles.clone(),
    };
    let report = match suite.run(addr, &target_name, &options) {
        Ok(report) => report,
        Err(e) => return usage(e),
    };
    // A closed stdout loses the summary, not the reports or the exit code.
    let _ = print_out(&report.summary());
    if let Some((path, mut f)) = json_file
        && let Err(e) = f.write_all(report.json().as_bytes())
    {
        return usage(format!("cannot write {}: {e}", path.display()));
    }
    if let Some((path, mut f)) = junit_file {
        let xml = match report.junit() {
            Ok(xml) => xml,
            Err(e) => return usage(format!("JUnit report: {e}")),
        };
        if let Err(e) = f.write_all(xml.as_bytes()) {
            return usage(format!("cannot write {}: {e}", path.display()));
        }
    }
    if let Some((path, mut f)) = html_file
        && let Err(e) = f.write_all(html::page_of(&report).as_bytes())
    {
        return usage(format!("cannot write {}: {e}", path.display()));
    }
    if report.cases.iter().any(|c| c.verdict == Verdict::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The server under test: the URL's, or the reference server started in-process (returned,
/// to keep it alive for the run).
fn target(
    args: &ConformArgs,
) -> Result<(std::net::SocketAddr, String, Option<hijack::Server>), ExitCode> {
    match &args.url {
        Some(url) => match parse_url(url) {
            Ok(addr) => Ok((addr, url.clone(), None)),
            Err(e) => Err(usage(e)),
        },
        None => {
            let (demo, config) = reference_server();
            match hijack::Server::bind("127.0.0.1:0", config, demo) {
                Ok(server) => {
                    let addr = server.local_addr();
                    let name = format!("in-process reference server (http://{addr})");
                    Ok((addr, name, Some(server)))
                }
                Err(e) => Err(usage(format!("cannot start the reference server: {e}"))),
            }
        }
    }
}

/// `hijack conform --explore N`: SPEC.md#explore.
fn explore(args: &ConformArgs, exchanges: usize) -> ExitCode {
    if args.list || args.export.is_some() {
        return usage("--explore generates its exchanges: it cannot be listed or exported");
    }
    if args.junit.is_some() || args.html.is_some() {
        return usage("--junit and --html report the fixed cases; with --explore use --json");
    }
    if exchanges == 0 || args.jobs == 0 || args.max_findings == 0 {
        return usage("--explore, --jobs and --max-findings must be at least 1");
    }
    let json_file = match &args.json {
        None => None,
        Some(p) => match File::create(p) {
            Ok(f) => Some((p.clone(), f)),
            Err(e) => return usage(format!("cannot write {}: {e}", p.display())),
        },
    };
    let (addr, target_name, _reference) = match target(args) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !addr.ip().is_loopback() && !args.allow_remote {
        return usage(format!(
            "{addr} is not a loopback address: --explore sends hostile requests; add --allow-remote to explore a server you run or may test"
        ));
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let _ = writeln!(
        io::stderr(),
        "hijack conform: exploring {target_name} with up to {exchanges} exchanges, seed {seed} (rerun them with --seed {seed})"
    );
    let options = hijack_conform::explore::ExploreOptions {
        exchanges,
        seed,
        time: args.time,
        jobs: args.jobs,
        timeout: args.timeout,
        max_findings: args.max_findings,
        stop_after: 0,
        shrink_time: args.shrink_time,
        out: Some(args.explore_out.clone()),
        intermediary: args.intermediary,
        progress: true,
    };
    let report = match hijack_conform::explore::explore(addr, &target_name, &options) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let _ = print_out(&report.summary());
    if let Some((path, mut f)) = json_file
        && let Err(e) = f.write_all(report.json().as_bytes())
    {
        return usage(format!("cannot write {}: {e}", path.display()));
    }
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `hijack report --html OUT REPORT.json...`: every report read and checked before OUT is
/// written, so a bad one leaves OUT as it was.
fn report(out: &Path, paths: &[PathBuf]) -> ExitCode {
    let mut reports: Vec<(String, RunReport)> = Vec::new();
    for p in paths {
        let text = match std::fs::read_to_string(p) {
            Ok(text) => text,
            Err(e) => return usage_of("report", format!("cannot read {}: {e}", p.display())),
        };
        let report: RunReport = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                return usage_of(
                    "report",
                    format!(
                        "{} is not a conformance report (the JSON of hijack conform --json): {e}",
                        p.display()
                    ),
                );
            }
        };
        let name = p.file_stem().map_or_else(
            || p.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        reports.push((name, report));
    }
    let columns: Vec<(&str, &RunReport)> = reports.iter().map(|(n, r)| (n.as_str(), r)).collect();
    if let Err(e) = std::fs::write(out, html::page(&columns)) {
        return usage_of("report", format!("cannot write {}: {e}", out.display()));
    }
    let cases: usize = reports
        .iter()
        .map(|(_, r)| r.cases.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        io::stderr(),
        "hijack report: wrote {} ({} report{}, up to {cases} cases each)",
        out.display(),
        reports.len(),
        if reports.len() == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}

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
        Command::Conform(_) | Command::Report { .. } => "warn",
        Command::Serve { .. } => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in a redirected log.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve { addr } => {
            let (demo, config) = reference_server();
            match hijack::Server::bind(addr.as_str(), config, demo) {
                Ok(server) => {
                    if print_out(&format!("listening on http://{}\n", server.local_addr())).is_err()
                    {
                        return ExitCode::FAILURE;
                    }
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = writeln!(io::stderr(), "hijack serve: cannot listen on {addr}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Conform(args) => conform(*args),
        Command::Report { html, reports } => report(&html, &reports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        let bare = parse_duration("2").unwrap_err();
        assert!(
            bare.contains("no unit") && bare.contains("2s or 2ms"),
            "{bare}"
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5m").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
