//! `cargo xtask bench`: our server against Go 1.24.11's and Go 1.27.3's `net/http`, side by side
//! in the same run (benches/README.md explains each measure). Installs the Go toolchains
//! (scripts/install-go) and wrk, builds ours, the benches and the Go side (benches/go), runs
//! measures 1 to 5, keeps the raw figures in target/bench/results.txt (`WHO WHAT VALUE` lines)
//! and prints one markdown table and the machine. It owns the driving, the parsing of each
//! tool's output and the table; what is measured stays in benches/*.rs and benches/go.
//! Every server it starts is stopped on every way out, and every run has a time limit.

use crate::peers::HIJACK_BIN;
use crate::proc::{self, Stoppable};
use rustix::process::Signal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const USAGE: &str = "usage: cargo xtask bench
  ours against Go 1.24.11's and Go 1.27.3's net/http in the same run, one markdown table and
  the machine on stdout (benches/README.md). About 2 minutes; BENCH_QUICK=1 for a shorter,
  noisier run. Installs the Go toolchains and wrk; raw figures in target/bench/results.txt.";

const GO_VERSIONS: [&str; 2] = ["1.24.11", "1.27.3"];
/// The servers of 3 and 5, in the order each round visits them.
const ORDER: [&str; 3] = ["ours", "go1.27.3", "go1.24.11"];
const OUT: &str = "target/bench";
/// Connections of the retained measure (2).
const RETAINED_CONNS: &str = "2000";

// Time limits: a build or install on a cold machine takes minutes; a measure, seconds.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
const GO_TEST_LIMIT: Duration = Duration::from_secs(20 * 60);
const MEASURE_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Beyond a timed run's own length.
const GRACE: Duration = Duration::from_secs(60);

/// Rounds and lengths of the measures (`BENCH_QUICK=1`: shorter, noisier).
struct Plan {
    rounds: u32,
    secs: u64,
    cn: u32,
    wrk_secs: u64,
}

impl Plan {
    fn from_env() -> Plan {
        if std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty()) {
            Plan {
                rounds: 1,
                secs: 1,
                cn: 300,
                wrk_secs: 2,
            }
        } else {
            Plan {
                rounds: 3,
                secs: 2,
                cn: 1000,
                wrk_secs: 3,
            }
        }
    }
}

pub fn main(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    if let Some(arg) = args.first() {
        eprintln!("xtask bench: unrecognized argument '{arg}'\n{USAGE}");
        return 2;
    }
    match run(&Plan::from_env()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    }
}

fn log(what: &str) {
    eprintln!("bench: {what}");
}

fn run(plan: &Plan) -> Result<(), String> {
    let out = std::env::current_dir()
        .map_err(|e| format!("the working directory: {e}"))?
        .join(OUT);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    // --- tools ---
    let mut goroots = Vec::new();
    for v in GO_VERSIONS {
        let goroot = install_go(v)?;
        let mut build = go_command(&goroot, v, &out);
        build
            .current_dir("benches/go")
            .args(["build", "-o"])
            .arg(out.join(format!("go-{v}")))
            .arg(".");
        run_bounded(build.stdout(Stdio::from(std::io::stderr())), BUILD_LIMIT)?;
        goroots.push((v, goroot));
    }
    ensure_wrk()?;
    log("building ours (release)");
    let mut cargo = Command::new("cargo");
    cargo.args([
        "build",
        "--release",
        "-p",
        "hijack-conform",
        "--bin",
        "hijack",
    ]);
    run_bounded(cargo.stdout(Stdio::from(std::io::stderr())), BUILD_LIMIT)?;
    let mut cargo = Command::new("cargo");
    cargo.args([
        "bench", "--no-run", "--bench", "hijack", "--bench", "retained",
    ]);
    cargo.args(["--bench", "load"]);
    run_bounded(cargo.stdout(Stdio::from(std::io::stderr())), BUILD_LIMIT)?;
    let hijack_bench = bench_exe("hijack")?;
    let retained_bench = bench_exe("retained")?;
    let load = bench_exe("load")?;

    let mut results = Results::create(&out.join("results.txt"))?;

    // --- 1. Go's BenchmarkServerHijack and ours ---
    log("1. hijack on an in-memory connection");
    let divan_txt = out.join("divan.txt");
    run_to_file(
        Command::new(&hijack_bench).arg("--bench"),
        &divan_txt,
        MEASURE_LIMIT,
    )?;
    match divan_hijack(&read(&divan_txt)?)? {
        Some(lines) => results.put(&lines)?,
        None => log(&format!("no server_hijack row in {}", divan_txt.display())),
    }
    for (v, goroot) in &goroots {
        let txt = out.join(format!("gobench-{v}.txt"));
        let mut test = go_command(goroot, v, &out);
        test.current_dir(goroot.join("src"))
            .args(["test", "net/http", "-run", "XXX", "-bench", "ServerHijack$"])
            .args(["-benchmem", "-count", &plan.rounds.to_string()]);
        run_to_file(&mut test, &txt, GO_TEST_LIMIT)?;
        let lines = go_hijack(&read(&txt)?, v).map_err(|e| format!("{}: {e}", txt.display()))?;
        results.put(&lines)?;
    }

    // --- 2. retained bytes per hijacked connection ---
    log("2. retained bytes per hijacked connection (2,000)");
    let printed = stdout_of(
        Command::new(&retained_bench).arg(RETAINED_CONNS),
        MEASURE_LIMIT,
    )?;
    results.put(&ours_retained(&printed))?;
    for v in GO_VERSIONS {
        let mut go = Command::new(out.join(format!("go-{v}")));
        let printed = stdout_of(go.args(["retained", RETAINED_CONNS]), MEASURE_LIMIT)?;
        results.put(&go_retained(&printed, v))?;
    }

    // --- servers for 3-5 ---
    let mut servers = Servers::default();
    let mut ours = Command::new(HIJACK_BIN);
    ours.args(["serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    servers.start("ours", ours, &out)?;
    let mut ours_cn = Command::new(&load);
    ours_cn
        .args(["serve", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    servers.start("ours_cn", ours_cn, &out)?;
    for v in GO_VERSIONS {
        let mut go = Command::new(out.join(format!("go-{v}")));
        go.args(["serve", "127.0.0.1:0"]);
        servers.start(&format!("go{v}"), go, &out)?;
    }

    // --- 3. hijack throughput, alternately ---
    log(&format!(
        "3. hijack throughput ({} rounds of {}s per server and concurrency)",
        plan.rounds, plan.secs
    ));
    for _ in 0..plan.rounds {
        for clients in [1, 32] {
            for who in ORDER {
                let server = servers.get(who)?;
                let before = server.cpu_us()?;
                let mut echo = Command::new(&load);
                echo.arg("echo").arg(&server.addr).arg(clients.to_string());
                echo.arg((plan.secs * 1000).to_string());
                let line = stdout_of(&mut echo, Duration::from_secs(plan.secs) + GRACE)?;
                let used = server.cpu_us()? - before;
                results.put(&echo_lines(&line, who, clients, used))?;
            }
        }
    }

    // --- 4. close-notify latency ---
    log(&format!(
        "4. close-notify latency ({} rounds of {} connections per server)",
        plan.rounds, plan.cn
    ));
    // Interleaved: one connection to each server in turn, so the machine's load falls on all
    // alike. p50 and p99 of each round's connections; the table shows the median round.
    let cn_servers = [
        ("ours", "ours_cn"),
        ("go1.27.3", "go1.27.3"),
        ("go1.24.11", "go1.24.11"),
    ];
    let mut by_addr = Vec::new();
    for (who, server) in cn_servers {
        by_addr.push((servers.get(server)?.addr.clone(), who));
    }
    let addrs: Vec<&str> = by_addr.iter().map(|(a, _)| a.as_str()).collect();
    for _ in 0..plan.rounds {
        let mut cn = Command::new(&load);
        cn.arg("cn").arg(addrs.join(",")).arg(plan.cn.to_string());
        let printed = stdout_of(&mut cn, MEASURE_LIMIT)?;
        results.put(&cn_lines(&printed, &by_addr))?;
    }

    // --- 5. keep-alive GET throughput ---
    log(&format!(
        "5. keep-alive GET throughput (wrk, {} rounds of {}s per server)",
        plan.rounds, plan.wrk_secs
    ));
    let wrk_txt = out.join("wrk.txt");
    for _ in 0..plan.rounds {
        for who in ORDER {
            let server = servers.get(who)?;
            let before = server.cpu_us()?;
            let mut wrk = Command::new("wrk");
            wrk.args(["-t2", "-c32", &format!("-d{}s", plan.wrk_secs)]);
            wrk.arg(format!("http://{}/", server.addr));
            run_to_file(
                &mut wrk,
                &wrk_txt,
                Duration::from_secs(plan.wrk_secs) + GRACE,
            )?;
            let used = server.cpu_us()? - before;
            results.put(&wrk_lines(&read(&wrk_txt)?, who, used))?;
        }
    }
    drop(servers);

    // --- the table ---
    let text = read(&out.join("results.txt"))?;
    print!("{}", table(&text)?);
    println!("\n{}", machine());
    Ok(())
}

// --- running the tools ---------------------------------------------------------------------

/// Waits for `child` at most `limit`; at the limit, kills it and everything it started.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                proc::kill_tree(child.id(), Signal::KILL);
                let _ = child.wait();
                return Err(format!("still running after {} s: killed", limit.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `cmd` shown as the shell would show it, for messages.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` (its stdio as the caller set it) to success within `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(), String> {
    let what = shown(cmd);
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let status = wait_bounded(&mut child, limit).map_err(|e| format!("{what}: {e}"))?;
    if !status.success() {
        return Err(format!("{what}: exit {}", proc::code(status)));
    }
    Ok(())
}

/// Runs `cmd` to success within `limit`, its stdout and stderr in `file` (`cmd >file 2>&1`).
fn run_to_file(cmd: &mut Command, file: &Path, limit: Duration) -> Result<(), String> {
    let log = File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let err = log
        .try_clone()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    run_bounded(cmd.stdout(log).stderr(err), limit)
        .map_err(|e| format!("{e} (see {})", file.display()))
}

/// What `cmd` printed on stdout, having succeeded within `limit`; its stderr goes to ours.
fn stdout_of(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let what = shown(cmd);
    let out = proc::run_captured(cmd, limit).map_err(|e| format!("{what}: {e}"))?;
    eprint!("{}", out.stderr);
    match out.status {
        Some(status) if status.success() => Ok(out.stdout),
        Some(status) => Err(format!("{what}: exit {}", proc::code(status))),
        None => Err(format!(
            "{what}: still running after {} s: killed",
            limit.as_secs()
        )),
    }
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `scripts/install-go VERSION`: the toolchain's GOROOT (installed once).
fn install_go(version: &str) -> Result<PathBuf, String> {
    let printed = stdout_of(Command::new("scripts/install-go").arg(version), BUILD_LIMIT)?;
    Ok(PathBuf::from(printed.trim_end()))
}

/// The toolchain's `go`, local and offline (the Go side is standard library only).
fn go_command(goroot: &Path, version: &str, out: &Path) -> Command {
    let mut go = Command::new(goroot.join("bin/go"));
    go.env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", out.join(format!("gocache-{version}")));
    go
}

/// wrk from Debian, when it is not on PATH.
fn ensure_wrk() -> Result<(), String> {
    if proc::which("wrk").is_some() {
        return Ok(());
    }
    log("installing wrk (apt-get)");
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "wrk"]);
        run_bounded(apt.stdout(Stdio::from(std::io::stderr())), BUILD_LIMIT)
    };
    if install().is_ok() {
        return Ok(());
    }
    let mut update = Command::new("apt-get");
    run_bounded(
        update.arg("update").stdout(Stdio::from(std::io::stderr())),
        BUILD_LIMIT,
    )?;
    install()
}

/// The executable of bench target `name`, from cargo's JSON messages (already built).
fn bench_exe(name: &str) -> Result<PathBuf, String> {
    let mut cargo = Command::new("cargo");
    cargo.args([
        "bench",
        "--bench",
        name,
        "--no-run",
        "--message-format=json",
    ]);
    let what = shown(&cargo);
    let out = proc::run_captured(&mut cargo, BUILD_LIMIT).map_err(|e| format!("{what}: {e}"))?;
    bench_executable(&out.stdout, name).ok_or(format!("{what}: no executable of bench {name}"))
}

/// The last `compiler-artifact` message's executable whose target is the bench `name`.
fn bench_executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| {
            let kinds = m["target"]["kind"].as_array();
            kinds.is_some_and(|k| k.iter().any(|k| k == "bench"))
        })
        .filter_map(|m| m["executable"].as_str().map(str::to_owned))
        .rfind(|e| !e.is_empty())
        .map(PathBuf::from)
}

/// Appends `WHO WHAT VALUE` lines to results.txt as the measures go.
struct Results(File);

impl Results {
    fn create(path: &Path) -> Result<Results, String> {
        File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = OpenOptions::new().append(true).open(path);
        file.map(Results)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn put(&mut self, lines: &[String]) -> Result<(), String> {
        lines
            .iter()
            .try_for_each(|l| writeln!(self.0, "{l}"))
            .map_err(|e| format!("results.txt: {e}"))
    }
}

// --- the servers of 3-5 ----------------------------------------------------------------------

/// A server of 3-5 on 127.0.0.1, with the address it announced.
struct Server {
    name: String,
    addr: String,
    process: Stoppable,
}

impl Server {
    /// CPU time (user + system) the server has used, in µs: the per-operation figures divide
    /// it by the operations, which the machine's load disturbs much less than a rate.
    fn cpu_us(&self) -> Result<i64, String> {
        let pid = self.process.0.as_ref().map(Child::id).unwrap_or(0);
        let stat = read(Path::new(&format!("/proc/{pid}/stat")))?;
        let ticks =
            cpu_ticks(&stat).ok_or(format!("{}: /proc/{pid}/stat unreadable", self.name))?;
        let hz = rustix::param::clock_ticks_per_second() as f64;
        Ok((ticks as f64 * 1e6 / hz).round_ties_even() as i64)
    }
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // "pid (comm) state ...": comm may hold spaces; field 3 is the first after the ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The servers started; dropping it stops every one of them.
#[derive(Default)]
struct Servers(Vec<Server>);

impl Servers {
    /// Starts `cmd` (stdout in OUT/NAME.out, stderr in OUT/NAME.err) and waits up to 5 s for
    /// its `listening on http://ADDR` line.
    fn start(&mut self, name: &str, mut cmd: Command, out: &Path) -> Result<(), String> {
        let stdout = out.join(format!("{name}.out"));
        let stderr = out.join(format!("{name}.err"));
        let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
        cmd.stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?);
        let child = cmd.spawn().map_err(|e| format!("{}: {e}", shown(&cmd)))?;
        let mut process = Stoppable(Some(child));
        for _ in 0..100 {
            if let Some(addr) = announced_addr(&fs::read_to_string(&stdout).unwrap_or_default()) {
                let name = name.to_string();
                self.0.push(Server {
                    name,
                    addr,
                    process,
                });
                return Ok(());
            }
            if process.exited() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        process.stop();
        Err(format!("{name} did not start (see {})", stderr.display()))
    }

    fn get(&self, name: &str) -> Result<&Server, String> {
        self.0
            .iter()
            .find(|s| s.name == name)
            .ok_or(format!("no server {name}"))
    }
}

/// The rest of the first `listening on http://` line.
fn announced_addr(printed: &str) -> Option<String> {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("listening on http://"))
        .map(str::to_owned)
}

// --- reading each tool's output into results lines ---------------------------------------------

/// Measure 1, ours: the median time, allocations and bytes of divan's `server_hijack` row
/// (`None`: no such row). divan prints a row `├─ server_hijack  FASTEST │ SLOWEST │ MEDIAN │
/// ...`, then under it `alloc:` and a row of counts and one of sizes in the same columns.
fn divan_hijack(table: &str) -> Result<Option<Vec<String>>, String> {
    let lines: Vec<&str> = table.lines().collect();
    let Some(n) = lines.iter().position(|l| is_server_hijack_row(l)) else {
        return Ok(None);
    };
    let ns = scaled(
        divan_median(lines[n])?,
        &[("ns", 1.0), ("µs", 1e3), ("ms", 1e6)],
    )?;
    let alloc = (n..lines.len())
        .find(|&i| lines[i].trim_matches([' ', '│']).starts_with("alloc:"))
        .ok_or("server_hijack: no alloc: rows")?;
    let row = |i: usize| {
        lines
            .get(i)
            .copied()
            .ok_or("server_hijack: alloc: rows cut short")
    };
    let count = divan_median(row(alloc + 1)?)?;
    let allocs: f64 = count
        .parse()
        .map_err(|_| format!("alloc count '{count}'"))?;
    let bytes = scaled(
        divan_median(row(alloc + 2)?)?,
        &[("B", 1.0), ("KB", 1e3), ("MB", 1e6)],
    )?;
    Ok(Some(vec![
        format!("ours hijack_ns {ns:.0}"),
        format!("ours hijack_allocs {allocs:.0}"),
        format!("ours hijack_bytes {bytes:.0}"),
    ]))
}

/// `├─ server_hijack` or `╰─ server_hijack` followed by a space (not `server_hijack_with_…`).
fn is_server_hijack_row(line: &str) -> bool {
    ["├─ server_hijack", "╰─ server_hijack"].iter().any(|name| {
        line.match_indices(name).any(|(at, _)| {
            let next = line[at + name.len()..].chars().next();
            next.is_some_and(char::is_whitespace)
        })
    })
}

/// The median column of a divan row: the third cell, the tree's own `│` before the name
/// (rows under a benchmark that is not the last) not counted.
fn divan_median(row: &str) -> Result<&str, String> {
    let cells: Vec<&str> = row.split('│').collect();
    let skip = usize::from(cells[0].trim().is_empty());
    let cell = cells
        .get(skip + 2)
        .ok_or(format!("no median column in '{row}'"))?;
    Ok(cell.trim())
}

/// `2.33 µs` or `751 B` as a number of the base unit, given each unit's factor.
fn scaled(figure: &str, units: &[(&str, f64)]) -> Result<f64, String> {
    let digits = figure
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(figure.len());
    let value: f64 = figure[..digits]
        .parse()
        .map_err(|_| format!("not a figure: '{figure}'"))?;
    let unit = figure[digits..].split_whitespace().next().unwrap_or("");
    let factor = units
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or(format!("unknown unit in '{figure}'"))?;
    Ok(value * factor.1)
}

/// Measure 1, Go `version`: the medians over `go test -bench` rows
/// `BenchmarkServerHijack-2  100000  11900 ns/op  12240 B/op  43 allocs/op`.
fn go_hijack(printed: &str, version: &str) -> Result<Vec<String>, String> {
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .filter(|l| l.starts_with("BenchmarkServerHijack"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let med = |field: usize| -> Result<f64, String> {
        let mut values = Vec::new();
        for row in &rows {
            let cell = row
                .get(field)
                .ok_or(format!("short row: {}", row.join(" ")))?;
            values.push(cell.parse().map_err(|_| format!("not a number: {cell}"))?);
        }
        median(values).ok_or("no BenchmarkServerHijack row".to_string())
    };
    Ok(vec![
        format!("go{version} hijack_ns {:.0}", med(2)?),
        format!("go{version} hijack_bytes {:.0}", med(4)?),
        format!("go{version} hijack_allocs {:.0}", med(6)?),
    ])
}

/// Measure 2, ours: `retained N PER_CONN HANDED_OVER ...`.
fn ours_retained(printed: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for f in printed.lines().map(fields).filter(|f| f.len() >= 4) {
        lines.push(format!("ours retained {}", f[2]));
        lines.push(format!("ours handed_over {}", f[3]));
    }
    lines
}

/// Measure 2, Go: `inproc N PER_CONN` (clients in the process) and `server N PER_CONN`.
fn go_retained(printed: &str, version: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for f in printed.lines().map(fields).filter(|f| f.len() >= 3) {
        match f[0] {
            "inproc" => lines.push(format!("go{version} retained {}", f[2])),
            "server" => lines.push(format!("go{version} retained_server {}", f[2])),
            _ => {}
        }
    }
    lines
}

/// Measure 3: `echo CLIENTS RATE ERRORS DONE` from `load echo`, and the server's CPU per
/// connection (`used` µs over DONE).
fn echo_lines(printed: &str, who: &str, clients: u32, used: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for f in printed.lines().map(fields).filter(|f| f.len() >= 5) {
        lines.push(format!("{who} echo{clients} {}", f[2]));
        if number(f[3]) > 0.0 {
            lines.push(format!("{who} echo_errors {}", f[3]));
        }
        let done = number(f[4]);
        if done > 0.0 {
            let per_conn = awk_number(used as f64 / done);
            lines.push(format!("{who} echo_cpu{clients} {per_conn}"));
        }
    }
    lines
}

/// Measure 4: `cn ADDR N P50 P99 LOST` per server from `load cn`, each named by its address
/// (`by_addr`; an address not listed is the last name's).
fn cn_lines(printed: &str, by_addr: &[(String, &str)]) -> Vec<String> {
    let mut lines = Vec::new();
    for f in printed.lines().map(fields).filter(|f| f.len() >= 6) {
        let who = by_addr
            .iter()
            .find(|(a, _)| a == f[1])
            .or(by_addr.last())
            .map_or("", |(_, who)| *who);
        lines.push(format!("{who} cn_p50 {}", f[3]));
        lines.push(format!("{who} cn_p99 {}", f[4]));
        lines.push(format!("{who} cn_lost {}", f[5]));
    }
    lines
}

/// Measure 5: wrk's `Requests/sec: R` and, from `N requests in ...`, the server's CPU per
/// request (`used` µs over N).
fn wrk_lines(printed: &str, who: &str, used: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for line in printed.lines() {
        let f = fields(line);
        if line.starts_with("Requests/sec") && f.len() >= 2 {
            lines.push(format!("{who} get {}", f[1]));
        }
        if line.contains(" requests in ") && number(f[0]) > 0.0 {
            let per_request = awk_number(used as f64 / number(f[0]));
            lines.push(format!("{who} get_cpu {per_request}"));
        }
    }
    lines
}

fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// A field as a number, 0 when it is none (awk's view of a field).
fn number(field: &str) -> f64 {
    field.parse().unwrap_or(0.0)
}

/// A number as awk prints it: an integer as one, otherwise six significant digits (`%.6g`).
fn awk_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if !v.is_finite() {
        return format!("{v}").to_lowercase();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let trim = |s: &str| s.trim_end_matches('0').trim_end_matches('.').to_string();
    if (-4..6).contains(&exp) {
        trim(&format!("{v:.*}", (5 - exp) as usize))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    }
}

/// The median (of the middle two when even), `None` of nothing.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

// --- the table -------------------------------------------------------------------------------

/// How a row's figures are shown.
#[derive(Clone, Copy)]
enum Unit {
    /// ns, shown in µs above 100.
    Nanos,
    /// Whole µs.
    Micros,
    /// µs to a tenth.
    CpuMicros,
    /// A whole number with thousands separators and this suffix.
    Number(&'static str),
}

/// A row's goal.
#[derive(Clone, Copy)]
enum Goal {
    /// Ours at most this many times Go 1.27's.
    AtMostTimesGo(f64),
    /// Ours at least this many times Go 1.27's.
    AtLeastTimesGo(f64),
    /// Ours at most this figure, written so.
    AtMost(f64, &'static str),
    /// 512 B plus the bytes handed over with each connection.
    RetainedBudget,
    /// No goal of its own; the note says why.
    Note(&'static str),
}

struct Row {
    measure: &'static str,
    key: &'static str,
    unit: Unit,
    goal: Goal,
}

const ROWS: [Row; 11] = [
    row(
        "hijack, in-memory: time/op",
        "hijack_ns",
        Unit::Nanos,
        Goal::AtMostTimesGo(0.5),
    ),
    row(
        "hijack, in-memory: allocs/op",
        "hijack_allocs",
        Unit::Number(""),
        Goal::AtMost(10.0, "≤ 10"),
    ),
    row(
        "hijack, in-memory: bytes/op",
        "hijack_bytes",
        Unit::Number(" B"),
        Goal::AtMost(4096.0, "≤ 4,096 B"),
    ),
    row(
        "retained per held hijacked conn (B)",
        "retained",
        Unit::Number(" B"),
        Goal::RetainedBudget,
    ),
    row(
        "hijack throughput, 1 client (conn/s)",
        "echo1",
        Unit::Number(""),
        Goal::AtLeastTimesGo(1.25),
    ),
    row(
        "hijack throughput, 32 clients (conn/s)",
        "echo32",
        Unit::Number(""),
        Goal::AtLeastTimesGo(1.25),
    ),
    row(
        "close-notify latency p50",
        "cn_p50",
        Unit::Micros,
        Goal::Note("(p99 is the goal)"),
    ),
    row(
        "close-notify latency p99",
        "cn_p99",
        Unit::Micros,
        Goal::AtMostTimesGo(1.0),
    ),
    row(
        "keep-alive GET, wrk -t2 -c32 (req/s)",
        "get",
        Unit::Number(""),
        Goal::AtLeastTimesGo(1.0),
    ),
    row(
        "server CPU per hijacked echo conn, 32 clients",
        "echo_cpu32",
        Unit::CpuMicros,
        Goal::Note("(what bounds the rates above)"),
    ),
    row(
        "server CPU per keep-alive GET",
        "get_cpu",
        Unit::CpuMicros,
        Goal::Note("(what bounds the rates above)"),
    ),
];

const fn row(measure: &'static str, key: &'static str, unit: Unit, goal: Goal) -> Row {
    Row {
        measure,
        key,
        unit,
        goal,
    }
}

/// Every figure of results.txt by (who, what).
struct Figures(BTreeMap<(String, String), Vec<f64>>);

impl Figures {
    fn parse(results: &str) -> Result<Figures, String> {
        let mut figures: BTreeMap<_, Vec<f64>> = BTreeMap::new();
        for line in results.lines() {
            let [who, what, value] = fields(line)[..] else {
                return Err(format!("results.txt: not WHO WHAT VALUE: '{line}'"));
            };
            let value = value
                .parse()
                .map_err(|_| format!("results.txt: not a number: '{line}'"))?;
            figures
                .entry((who.to_string(), what.to_string()))
                .or_default()
                .push(value);
        }
        Ok(Figures(figures))
    }

    /// The median over the rounds.
    fn get(&self, who: &str, what: &str) -> Option<f64> {
        let values = self.0.get(&(who.to_string(), what.to_string()))?;
        median(values.clone())
    }
}

/// The markdown table of results.txt (the median of each figure's rounds), then the retained
/// server-side line and, when anything was lost, the warnings line.
fn table(results: &str) -> Result<String, String> {
    let figures = Figures::parse(results)?;
    let mut out = String::from(
        "| measure | ours | Go 1.24.11 | Go 1.27.3 | ours / Go 1.27 | goal | met? |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in &ROWS {
        out.push_str(&table_row(row, &figures));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&retained_line(&figures));
    out.push('\n');
    if let Some(warnings) = warnings_line(&figures) {
        out.push_str(&format!("\n{warnings}\n"));
    }
    Ok(out)
}

fn table_row(row: &Row, figures: &Figures) -> String {
    let ours = figures.get("ours", row.key);
    let go24 = figures.get("go1.24.11", row.key);
    let go27 = figures.get("go1.27.3", row.key);
    let ratio = match (ours, go27) {
        (Some(o), Some(g)) if g != 0.0 => Some(o / g),
        _ => None,
    };
    let (goal, met) = judge(row.goal, ours, ratio, figures);
    let met = match met {
        None => "–",
        Some(true) => "yes",
        Some(false) => "**no**",
    };
    let ratio = ratio.map_or("–".to_string(), |r| format!("{r:.2}×"));
    let [ours, go24, go27] = [ours, go24, go27].map(|v| shown_figure(v, row.unit));
    format!(
        "| {} | {ours} | {go24} | {go27} | {ratio} | {goal} | {met} |",
        row.measure
    )
}

/// The goal as written in the table, and whether ours meets it (`None`: no goal).
fn judge(
    goal: Goal,
    ours: Option<f64>,
    ratio: Option<f64>,
    figures: &Figures,
) -> (String, Option<bool>) {
    match goal {
        // `{:?}` writes 1.0 as "1.0", as the table always has.
        Goal::AtLeastTimesGo(g) => (
            format!("≥ {g:?}× Go 1.27"),
            Some(ratio.is_some_and(|r| r >= g)),
        ),
        Goal::AtMostTimesGo(g) => {
            let text = if g == 1.0 {
                "≤ Go 1.27".to_string()
            } else {
                format!("≤ {g:?}× Go 1.27")
            };
            (text, Some(ratio.is_some_and(|r| r <= g)))
        }
        Goal::AtMost(limit, text) => (text.to_string(), Some(ours.is_some_and(|o| o <= limit))),
        Goal::RetainedBudget => {
            let limit = 512.0 + figures.get("ours", "handed_over").unwrap_or(0.0);
            let text = "≤ 512 B + handed-over bytes".to_string();
            (text, Some(ours.is_some_and(|o| o <= limit)))
        }
        Goal::Note(note) => (note.to_string(), None),
    }
}

fn shown_figure(value: Option<f64>, unit: Unit) -> String {
    let Some(v) = value else {
        return "–".to_string();
    };
    match unit {
        Unit::Nanos if v > 100.0 => format!("{:.2} µs", v / 1e3),
        Unit::Nanos => format!("{v:.0} ns"),
        Unit::Micros => format!("{v:.0} µs"),
        Unit::CpuMicros => format!("{v:.1} µs"),
        Unit::Number(suffix) => format!("{}{suffix}", grouped(v)),
    }
}

/// A figure rounded to a whole number, with thousands separators (Python's `f"{v:,.0f}"`).
fn grouped(v: f64) -> String {
    let text = format!("{v:.0}");
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let mut out = String::from(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Go's retained bytes with its clients in a child process, next to ours.
fn retained_line(figures: &Figures) -> String {
    let bytes = |who: &str, what: &str| figures.get(who, what).map_or("–".to_string(), grouped);
    format!(
        "Retained, server side only (Go's clients in a child process): Go 1.24.11 {} B, \
         Go 1.27.3 {} B; ours {} B (a std TcpStream client owns no heap).",
        bytes("go1.24.11", "retained_server"),
        bytes("go1.27.3", "retained_server"),
        bytes("ours", "retained")
    )
}

/// Close-notify datagrams lost and echo errors (medians, summed over the servers), if any.
fn warnings_line(figures: &Figures) -> Option<String> {
    let sum = |what: &str| -> f64 {
        ORDER
            .iter()
            .map(|s| figures.get(s, what).unwrap_or(0.0))
            .sum()
    };
    let (lost, errors) = (sum("cn_lost"), sum("echo_errors"));
    (lost != 0.0 || errors != 0.0).then(|| {
        format!(
            "Warnings: {lost:.0} close-notify datagrams lost, {errors:.0} echo errors (median per run)."
        )
    })
}

/// The machine: CPUs, model, kernel, load average now, and the time.
fn machine() -> String {
    let cpus = rustix::thread::sched_getaffinity(None).map_or(0, |set| set.count());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.contains("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("", |(_, m)| m.trim_start_matches(' '));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = loadavg.split(' ').take(3).collect();
    format!(
        "Machine: {cpus} CPUs, {model}, Linux {}; load average at the end: {}. {} UTC.",
        kernel.trim_end(),
        load.join(" "),
        proc::utc_date_time()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// divan 0.1.21's layout (src/tree_painter.rs): the tree's `│` leads the rows under a
    /// benchmark that is not the last; `max alloc:`, `alloc:`, `dealloc:` each head a row of
    /// counts and one of sizes.
    const DIVAN: &str = "\
Timer precision: 20 ns
hijack                           fastest       │ slowest       │ median        │ mean          │ samples │ iters
├─ server_hijack                 2.1 µs        │ 3.4 µs        │ 2.33 µs       │ 2.41 µs       │ 200     │ 10000
│                                max alloc:    │               │               │               │         │
│                                  3           │ 3             │ 3             │ 3             │         │
│                                  512 B       │ 512 B         │ 512 B         │ 512 B         │         │
│                                alloc:        │               │               │               │         │
│                                  9           │ 9             │ 9             │ 9             │         │
│                                  751 B       │ 751 B         │ 751 B         │ 751 B         │         │
│                                dealloc:      │               │               │               │         │
│                                  9           │ 9             │ 9             │ 9             │         │
│                                  751 B       │ 751 B         │ 751 B         │ 751 B         │         │
╰─ server_hijack_with_transport  2.5 µs        │ 3.9 µs        │ 2.7 µs        │ 2.8 µs        │ 200     │ 10000
                                 alloc:        │               │               │               │         │
                                   11          │ 11            │ 11            │ 11            │         │
                                   1.011 KB    │ 1.011 KB      │ 1.011 KB      │ 1.011 KB      │         │
";

    #[test]
    fn divan_hijack_reads_the_median_time_allocations_and_bytes() {
        let lines = divan_hijack(DIVAN).unwrap().unwrap();
        assert_eq!(
            lines,
            [
                "ours hijack_ns 2330",
                "ours hijack_allocs 9",
                "ours hijack_bytes 751"
            ]
        );
    }

    #[test]
    fn divan_hijack_reads_the_last_row_and_scaled_bytes() {
        // As the last benchmark (`╰─`), with no `│` before the alloc rows, and sizes in KB.
        let last = DIVAN
            .replace("├─ server_hijack ", "├─ server_other  ")
            .replace(
                "╰─ server_hijack_with_transport",
                "╰─ server_hijack              ",
            );
        let lines = divan_hijack(&last).unwrap().unwrap();
        assert_eq!(
            lines,
            [
                "ours hijack_ns 2700",
                "ours hijack_allocs 11",
                "ours hijack_bytes 1011"
            ]
        );
        assert_eq!(divan_hijack("hijack  fastest │ slowest\n").unwrap(), None);
        assert!(divan_hijack(&DIVAN.replace("2.33 µs", "2.33 s ")).is_err());
    }

    #[test]
    fn go_hijack_takes_the_median_of_each_figure() {
        let printed = "goos: linux\ngoarch: amd64\npkg: net/http\n\
BenchmarkServerHijack-2   \t  100000\t     11900 ns/op\t   12240 B/op\t      43 allocs/op
BenchmarkServerHijack-2   \t  100000\t     12500 ns/op\t   12250 B/op\t      43 allocs/op
BenchmarkServerHijack-2   \t  100000\t     11000 ns/op\t   12230 B/op\t      44 allocs/op
PASS\nok  \tnet/http\t5.123s\n";
        assert_eq!(
            go_hijack(printed, "1.27.3").unwrap(),
            [
                "go1.27.3 hijack_ns 11900",
                "go1.27.3 hijack_bytes 12240",
                "go1.27.3 hijack_allocs 43"
            ]
        );
        assert!(go_hijack("FAIL\n", "1.27.3").is_err());
    }

    #[test]
    fn bench_executable_is_the_bench_targets_artifact() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"path+file:///r#hijack@0.1.0","target":{"kind":["lib"],"crate_types":["lib"],"name":"hijack","src_path":"/r/src/lib.rs"},"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///r#hijack@0.1.0","target":{"kind":["bench"],"crate_types":["bin"],"name":"hijack","src_path":"/r/benches/hijack.rs"},"profile":{"opt_level":"3"},"filenames":["/r/target/release/deps/hijack-0123abcd"],"executable":"/r/target/release/deps/hijack-0123abcd","fresh":true}
{"reason":"compiler-artifact","target":{"kind":["bench"],"name":"load"},"executable":"/r/target/release/deps/load-99"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            bench_executable(messages, "hijack"),
            Some(PathBuf::from("/r/target/release/deps/hijack-0123abcd"))
        );
        assert_eq!(bench_executable(messages, "retained"), None);
    }

    #[test]
    fn table_shows_medians_goals_and_missing_figures() {
        let results = "\
ours hijack_ns 2330
go1.27.3 hijack_ns 11900
go1.24.11 hijack_ns 15070
ours hijack_allocs 12
go1.27.3 hijack_allocs 43
ours retained 291
ours handed_over 0
go1.24.11 retained_server 15645
ours echo1 5000
ours echo1 6105
ours echo1 7000
go1.27.3 echo1 4049
ours cn_lost 2
";
        let t = table(results).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "| measure | ours | Go 1.24.11 | Go 1.27.3 | ours / Go 1.27 | goal | met? |"
        );
        assert_eq!(
            lines[2],
            "| hijack, in-memory: time/op | 2.33 µs | 15.07 µs | 11.90 µs | 0.20× | ≤ 0.5× Go 1.27 | yes |"
        );
        assert_eq!(
            lines[3],
            "| hijack, in-memory: allocs/op | 12 | – | 43 | 0.28× | ≤ 10 | **no** |"
        );
        assert_eq!(
            lines[4],
            "| hijack, in-memory: bytes/op | – | – | – | – | ≤ 4,096 B | **no** |"
        );
        assert_eq!(
            lines[5],
            "| retained per held hijacked conn (B) | 291 B | – | – | – | ≤ 512 B + handed-over bytes | yes |"
        );
        assert_eq!(
            lines[6],
            "| hijack throughput, 1 client (conn/s) | 6,105 | – | 4,049 | 1.51× | ≥ 1.25× Go 1.27 | yes |"
        );
        assert_eq!(
            lines[8],
            "| close-notify latency p50 | – | – | – | – | (p99 is the goal) | – |"
        );
        assert_eq!(
            lines[9],
            "| close-notify latency p99 | – | – | – | – | ≤ Go 1.27 | **no** |"
        );
        assert_eq!(
            lines[10],
            "| keep-alive GET, wrk -t2 -c32 (req/s) | – | – | – | – | ≥ 1.0× Go 1.27 | **no** |"
        );
        assert_eq!(lines[13], "");
        assert_eq!(
            lines[14],
            "Retained, server side only (Go's clients in a child process): Go 1.24.11 15,645 B, Go 1.27.3 – B; ours 291 B (a std TcpStream client owns no heap)."
        );
        assert_eq!(
            lines[16],
            "Warnings: 2 close-notify datagrams lost, 0 echo errors (median per run)."
        );
        assert_eq!(lines.len(), 17);
        assert!(table("ours hijack_ns\n").is_err());
    }

    #[test]
    fn tool_output_becomes_results_lines() {
        assert_eq!(
            echo_lines("echo 32 19573 0 39146\n", "ours", 32, 1_949_000),
            ["ours echo32 19573", "ours echo_cpu32 49.788"]
        );
        let wrk = "Running 3s test @ http://127.0.0.1:1/\n  229401 requests in 3.00s, 30.2MB read\nRequests/sec:  76467.12\n";
        assert_eq!(
            wrk_lines(wrk, "go1.27.3", 3_487_000),
            ["go1.27.3 get_cpu 15.2005", "go1.27.3 get 76467.12"]
        );
        let by_addr = [
            ("127.0.0.1:1".to_string(), "ours"),
            ("127.0.0.1:2".to_string(), "go1.27.3"),
        ];
        assert_eq!(
            cn_lines("cn 127.0.0.1:2 1000 54.0 127.3 0\n", &by_addr),
            [
                "go1.27.3 cn_p50 54.0",
                "go1.27.3 cn_p99 127.3",
                "go1.27.3 cn_lost 0"
            ]
        );
        assert_eq!(
            ours_retained("retained 2000 291 0 write_buf_capacity=0 handover_size=96\n"),
            ["ours retained 291", "ours handed_over 0"]
        );
        assert_eq!(
            go_retained("inproc 2000 9134\nserver 2000 8830\n", "1.27.3"),
            ["go1.27.3 retained 9134", "go1.27.3 retained_server 8830"]
        );
    }

    #[test]
    fn awk_number_prints_like_awk() {
        assert_eq!(awk_number(42.0), "42");
        assert_eq!(awk_number(49.78812), "49.7881");
        assert_eq!(awk_number(0.5), "0.5");
        assert_eq!(awk_number(1234567.5), "1.23457e+06");
        assert_eq!(awk_number(0.0000123456), "1.23456e-05");
    }

    #[test]
    fn cpu_ticks_adds_utime_and_stime_past_the_command_name() {
        let stat = "4242 (go 1.27) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 37 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat), Some(187));
        assert_eq!(
            announced_addr("x\nlistening on http://127.0.0.1:4000\n").as_deref(),
            Some("127.0.0.1:4000")
        );
    }

    #[test]
    fn a_started_server_is_found_measured_and_stopped() {
        let out = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&out).unwrap();
        let mut servers = Servers::default();
        let mut fake = Command::new("sh");
        fake.args(["-c", "echo listening on http://127.0.0.1:9; exec sleep 30"]);
        servers.start("fake", fake, &out).unwrap();
        let server = servers.get("fake").unwrap();
        assert_eq!(server.addr, "127.0.0.1:9");
        assert!(server.cpu_us().unwrap() >= 0);
        let pid = server.process.0.as_ref().unwrap().id();
        let started = Instant::now();
        drop(servers);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "still running"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut silent = Command::new("sh");
        silent.args(["-c", "exit 1"]);
        let mut servers = Servers::default();
        assert!(servers.start("silent", silent, &out).is_err());
        assert!(servers.get("silent").is_err());
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn machine_names_the_cpus_kernel_and_time() {
        let m = machine();
        assert!(
            m.starts_with("Machine: ") && m.contains(" CPUs, ") && m.ends_with(" UTC."),
            "{m}"
        );
        assert!(!m.starts_with("Machine: 0 CPUs"), "{m}");
    }
}
