//! Bounded soak over loopback (issue 9, point 3): many short hijacks, then many hijacked
//! connections held at once, then everything closed; nothing lost, nothing left behind.
//!
//! 1. **Hijacks**: `--hijacks N` connections (default 100,000), from 4 client threads: each
//!    connects, sends the `/echo` upgrade with the first payload bytes in the same write,
//!    reads the 101 and the echo, sends the rest of its payload, half-closes, reads to the end
//!    and closes. Every byte must come back, in order.
//! 2. **Held**: `--held M` connections (default 5,000) upgraded on `/hold`, whose handler keeps
//!    the handover and returns, so a held connection costs no thread. Once all are held, each
//!    is checked both ways (a byte from the client read through its handover, a byte written
//!    through the handover read by the client), then every handover is dropped and every
//!    client reads the end of stream and closes.
//!
//! Open descriptors (`/proc/self/fd`), threads (`/proc/self/task`) and live heap bytes (a
//! counting global allocator) are printed before, while holding, and after (a bounded settle
//! wait), with each phase's rate. Exits non-zero if a byte was lost or changed, anything did
//! not return to its baseline, or the run took more than 5 minutes (a watchdog ends it).
//! Clients and server share this process.
//!
//! Run: `scripts/soak` (reduced: 10,000 hijacks, 1,000 held) or `scripts/soak --full`, or
//! `cargo run --release --example soak -- [--hijacks N] [--held M] [--seed-leak K]`
//! (`--seed-leak K` never drops K held handovers: the run must then fail). Linux only.

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hijack::tcp::TcpConn;
use hijack::{Handover, Request, ResponseWriter, Server, ServerConfig};
use http::{HeaderValue, StatusCode, header};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The whole run, warm-up included, must end within this.
const HARD_LIMIT: Duration = Duration::from_secs(300);
const CLIENT_THREADS: u64 = 4;
/// The most threads a server may run besides its connections' handlers: the accept loop,
/// the background-read watcher, and at most 64 idle pooled connection threads
/// (`IDLE_WORKERS` in src/server.rs). Holding connections must not add any.
const SERVER_THREADS_MAX: usize = 2 + 64;
/// Bytes each hijack echoes: 64 with the head, 192 after the 101.
const FIRST: usize = 64;
const PAYLOAD: usize = 256;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Usage {
    fds: usize,
    threads: usize,
    heap: isize,
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} fds, {} threads, {} B live heap",
            self.fds, self.threads, self.heap
        )
    }
}

fn usage() -> Usage {
    let count = |dir| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let fds = count("/proc/self/fd");
    let threads = count("/proc/self/task");
    let stats = GLOBAL.stats();
    Usage {
        fds,
        threads,
        heap: stats.bytes_allocated as isize - stats.bytes_deallocated as isize,
    }
}

/// Polls until the usage equals `baseline` or `wait` passed; returns the last sample.
fn settle(baseline: Usage, wait: Duration) -> Usage {
    let deadline = Instant::now() + wait;
    loop {
        let now = usage();
        if now == baseline || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Raises the soft open-files limit to `needed`, within the hard limit.
fn raise_nofile(needed: u64) -> Result {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= needed) {
        return Ok(());
    }
    if limit.maximum.is_some_and(|hard| hard < needed) {
        return Err(format!(
            "the open-files hard limit {:?} is below the {needed} needed",
            limit.maximum
        )
        .into());
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )?;
    Ok(())
}

/// Handovers kept by `/hold`: the held connections, with no thread each.
type Held = Arc<Mutex<Vec<Handover<TcpStream>>>>;

fn handler(held: Held) -> impl Fn(Request<'_>, ResponseWriter<'_, TcpConn>) + Send + Sync {
    move |req: Request<'_>, mut w: ResponseWriter<'_, TcpConn>| {
        let hold = match req.path() {
            "/echo" => false,
            "/hold" => true,
            _ => {
                w.write_header(StatusCode::NOT_FOUND);
                return;
            }
        };
        w.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("echo"));
        w.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        w.write_header(StatusCode::SWITCHING_PROTOCOLS);
        let Ok(mut parts) = w.hijack() else { return };
        drop(req);
        if hold {
            held.lock().unwrap_or_else(|p| p.into_inner()).push(parts);
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = parts.read(&mut buf) {
            if n == 0
                || parts
                    .write_all(&buf[..n])
                    .and_then(|()| parts.flush())
                    .is_err()
            {
                break;
            }
        }
    }
}

const ECHO: &[u8] =
    b"GET /echo HTTP/1.1\r\nHost: soak\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
const HOLD: &[u8] =
    b"GET /hold HTTP/1.1\r\nHost: soak\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads up to the end of a 101 head; returns the bytes read after it.
fn read_101(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if !got.starts_with(b"HTTP/1.1 101 ") {
                return Err(format!("not a 101: {:?}", String::from_utf8_lossy(&got)).into());
            }
            return Ok(got[end + 4..].to_vec());
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err("end of stream inside the 101 head".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// The payload of hijack `i`: distinct per connection, so a byte from another is noticed.
fn payload(i: u64) -> Vec<u8> {
    (0..PAYLOAD as u64)
        .map(|k| (i.wrapping_mul(31).wrapping_add(k * 7) % 251) as u8)
        .collect()
}

/// One hijack: upgrade, echo the payload, half-close, read to the end. Returns the bytes
/// lost or changed (0 when the echo is exact).
fn one_hijack(addr: SocketAddr, i: u64) -> Result<u64> {
    let sent = payload(i);
    let mut c = connect(addr)?;
    let mut first = ECHO.to_vec();
    first.extend_from_slice(&sent[..FIRST]);
    c.write_all(&first)?;
    let mut echoed = read_101(&mut c)?;
    c.write_all(&sent[FIRST..])?;
    c.shutdown(Shutdown::Write)?;
    c.read_to_end(&mut echoed)?;
    let same = sent.iter().zip(&echoed).filter(|(a, b)| a == b).count();
    Ok((sent.len().max(echoed.len()) - same) as u64)
}

struct Phase1 {
    lost: u64,
    errors: u64,
    first_error: Option<String>,
    took: Duration,
}

fn hijacks(addr: SocketAddr, total: u64) -> Phase1 {
    let lost = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            let (lost, errors, first_error) = (lost.clone(), errors.clone(), first_error.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while i < total {
                    match one_hijack(addr, i) {
                        Ok(n) => {
                            lost.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap()
                                .get_or_insert_with(|| format!("hijack {i}: {e}"));
                        }
                    }
                    i += CLIENT_THREADS;
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let took = started.elapsed();
    let first_error = first_error.lock().unwrap().take();
    Phase1 {
        lost: lost.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        took,
    }
}

struct Phase2 {
    holding: Usage,
    /// The threads while holding, by name.
    names: String,
    opened_in: Duration,
    checked_in: Duration,
    closed_in: Duration,
    lost: u64,
}

fn hold(addr: SocketAddr, held: &Held, count: usize) -> Result<Phase2> {
    let started = Instant::now();
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let mut c = connect(addr)?;
        c.write_all(HOLD)?;
        let extra = read_101(&mut c)?;
        if !extra.is_empty() {
            return Err(format!("bytes after the 101 of a held connection: {extra:?}").into());
        }
        clients.push(c);
    }
    // The handler pushes the handover just before it returns: wait until all are there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.lock().unwrap().len() < count {
        if Instant::now() >= deadline {
            return Err("not every held connection reached its handler".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let opened_in = started.elapsed();
    let holding = settle_threads();
    let names = thread_names();
    // Both directions of every held connection still work, and carry exactly one byte.
    let started = Instant::now();
    let mut lost = 0u64;
    let mut parts = std::mem::take(&mut *held.lock().unwrap());
    // The handovers are in the order the handlers ran, not the clients' order: pair them by
    // a byte the client sends (its index, in two bytes) and the handover reads.
    let mut by_index: Vec<Option<Handover<TcpStream>>> = (0..count).map(|_| None).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(&(i as u16).to_be_bytes())?;
    }
    for mut p in parts.drain(..) {
        let mut index = [0u8; 2];
        p.read_exact(&mut index)?;
        let i = u16::from_be_bytes(index) as usize;
        if i >= count || by_index[i].is_some() {
            return Err(format!("a held connection read index {i} twice or out of range").into());
        }
        by_index[i] = Some(p);
    }
    for (i, (c, p)) in clients.iter_mut().zip(&mut by_index).enumerate() {
        let p = p.as_mut().ok_or("a held connection is missing")?;
        p.write_all(&[(i % 251) as u8])?;
        p.flush()?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
        if b[0] != (i % 251) as u8 {
            lost += 1;
        }
    }
    let checked_in = started.elapsed();
    let started = Instant::now();
    // The seeded leak (`--seed-leak K`): K handovers are never dropped.
    let leak = SEED_LEAK.load(Ordering::Relaxed).min(count);
    std::mem::forget(by_index.drain(..leak).collect::<Vec<_>>());
    drop(by_index);
    drop(parts);
    for mut c in clients.drain(leak..) {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)?;
        lost += rest.len() as u64;
    }
    let closed_in = started.elapsed();
    Ok(Phase2 {
        holding,
        names,
        opened_in,
        checked_in,
        closed_in,
        lost,
    })
}

/// The threads of this process by name (`/proc/self/task/*/comm`), as `name x count`.
fn thread_names() -> String {
    let mut names = std::collections::BTreeMap::<String, usize>::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            // Connection threads are named per connection: count them together.
            let name = name.trim().trim_end_matches(|c: char| c.is_ascii_digit());
            *names.entry(name.to_string()).or_default() += 1;
        }
    }
    names
        .iter()
        .map(|(name, n)| format!("{name} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The usage while holding, once the connection threads of the held connections ended.
fn settle_threads() -> Usage {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usage();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = usage();
        if now.threads == last.threads {
            return now;
        }
        last = now;
    }
    last
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

struct Args {
    hijacks: u64,
    held: usize,
}

/// `--seed-leak K`: keep K held handovers forever, to show that the check reports a leak.
static SEED_LEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn args() -> Result<Args> {
    let mut args = Args {
        hijacks: 100_000,
        held: 5_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--hijacks" => args.hijacks = value()?.parse()?,
            "--held" => args.held = value()?.parse()?,
            "--seed-leak" => SEED_LEAK.store(value()?.parse()?, Ordering::Relaxed),
            _ => return Err(format!("unknown argument {arg}").into()),
        }
    }
    if args.held > u16::MAX as usize {
        return Err("--held is at most 65535".into());
    }
    Ok(args)
}

/// More connections than the core keeps idle read buffers for (64), open at once.
const POOL_FILL: usize = 128;

/// The core keeps a process-wide pool of idle read buffers (`read_buffers` in src/conn.rs),
/// which grows up to its cap only when more connections than ever before are open at once:
/// the warm-up fills it, so that its size is part of the baseline rather than a leak.
fn fill_process_wide_caches(addr: SocketAddr) -> Result {
    let mut clients = Vec::with_capacity(POOL_FILL);
    for _ in 0..POOL_FILL {
        let mut c = connect(addr)?;
        c.write_all(b"GET /none HTTP/1.1\r\nHost: soak\r\n\r\n")?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.read(&mut buf)?;
            if n == 0 {
                return Err("end of stream before a response".into());
            }
            got.extend_from_slice(&buf[..n]);
        }
        clients.push(c);
    }
    Ok(())
}

/// Waits (bounded) until the process is quiet again: the descriptors and threads of `idle`
/// (before any server existed) and a live heap that holds still for 100 ms. Connection
/// threads of the warm-up that are still ending must not count toward the baseline.
fn quiet(idle: Usage) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usage();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = usage();
        let still = (now.fds, now.threads) == (idle.fds, idle.threads) && now == last;
        if still || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// One server, `hijacks` hijacks and `held` held connections; the server shut down after.
/// The warm-up round (`print` false) also fills the core's process-wide caches first.
fn round(hijack_count: u64, held_count: usize, print: bool) -> Result<(Phase1, Phase2)> {
    let held: Held = Arc::default();
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::default(),
        handler(held.clone()),
    )?;
    let addr = server.local_addr();
    if !print {
        fill_process_wide_caches(addr)?;
    }
    let phase1 = hijacks(addr, hijack_count);
    if print {
        println!(
            "hijacks: {} in {:.2} s ({:.0}/s), {} bytes lost or changed, {} failed{}",
            hijack_count,
            phase1.took.as_secs_f64(),
            rate(hijack_count, phase1.took),
            phase1.lost,
            phase1.errors,
            phase1
                .first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    // The warm-up never leaks: the seeded leak is for the measured round only.
    let leak = SEED_LEAK.swap(0, Ordering::Relaxed);
    if print {
        SEED_LEAK.store(leak, Ordering::Relaxed);
    }
    let phase2 = hold(addr, &held, held_count)?;
    SEED_LEAK.store(leak, Ordering::Relaxed);
    if print {
        println!(
            "held: {} opened in {:.2} s ({:.0}/s), while holding: {} ({}); checked both ways in {:.2} s; closed in {:.2} s; {} bytes lost",
            held_count,
            phase2.opened_in.as_secs_f64(),
            rate(held_count as u64, phase2.opened_in),
            phase2.holding,
            phase2.names,
            phase2.checked_in.as_secs_f64(),
            phase2.closed_in.as_secs_f64(),
            phase2.lost
        );
    }
    if server.connections() != 0 {
        return Err(format!("the server still owns {} connections", server.connections()).into());
    }
    server.shutdown(Duration::from_secs(5))?;
    drop(server);
    Ok((phase1, phase2))
}

fn run() -> Result<bool> {
    let args = args()?;
    // Two descriptors per held connection (client and server end), plus slack.
    raise_nofile(args.held as u64 * 2 + 1024)?;
    println!(
        "soak: {} hijacks, {} held connections, {} client threads, loopback",
        args.hijacks, args.held, CLIENT_THREADS
    );
    let idle = usage();
    // Warm-up: lazily initialised statics allocate once, outside the measurement.
    let (warm1, warm2) = round(200, 20, false)?;
    if warm1.lost + warm1.errors + warm2.lost > 0 {
        return Err(format!("the warm-up lost bytes or failed: {:?}", warm1.first_error).into());
    }
    let before = quiet(idle);
    println!("before: {before}");
    if (before.fds, before.threads) != (idle.fds, idle.threads) {
        return Err(
            format!("the warm-up left something behind: idle {idle}, then {before}").into(),
        );
    }
    let (phase1, phase2) = round(args.hijacks, args.held, true)?;
    let (lost, errors, holding) = (phase1.lost + phase2.lost, phase1.errors, phase2.holding);
    // The phases' strings (thread names, the first error) are not the server's: free them
    // before comparing the heap with the baseline.
    drop((phase1, phase2));
    let after = settle(before, Duration::from_secs(10));
    println!("after:  {after}");
    let mut ok = true;
    if lost > 0 || errors > 0 {
        println!("FAIL: {lost} bytes lost or changed, {errors} hijacks failed");
        ok = false;
    }
    // Held connections must cost no thread: at most the baseline plus the server's own.
    if holding.threads > before.threads + SERVER_THREADS_MAX {
        println!(
            "FAIL: {} threads while holding {} connections (baseline {})",
            holding.threads, args.held, before.threads
        );
        ok = false;
    }
    if after != before {
        println!(
            "FAIL: not back to baseline: {:+} fds, {:+} threads, {:+} B live heap",
            after.fds as isize - before.fds as isize,
            after.threads as isize - before.threads as isize,
            after.heap - before.heap
        );
        ok = false;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let started = Instant::now();
    std::thread::spawn(|| {
        std::thread::sleep(HARD_LIMIT);
        eprintln!("soak: FAIL: still running after {HARD_LIMIT:?}; stopping");
        std::process::exit(2);
    });
    match run() {
        Ok(true) => {
            println!(
                "soak: OK in {:.1} s: zero bytes lost, descriptors, threads and live heap back to baseline",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("soak: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
