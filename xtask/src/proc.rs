//! Running the commands the tasks drive: where the repository is, output captured under a time
//! limit, output copied to a log as it arrives, stopping a process tree by its pids. Owns no
//! task's logic.

use rustix::process::{Pid, Signal, kill_process};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The repository root: the parent of this package's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// `~/.cargo/bin`, where `cargo install` puts duvet and cargo-fuzz.
pub fn cargo_bin() -> PathBuf {
    Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin")
}

/// PATH with `~/.cargo/bin` in front (what `export PATH="$HOME/.cargo/bin:$PATH"` did).
pub fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut dirs = vec![cargo_bin()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// The first executable `name` on PATH (`command -v name`).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The shell's view of an exit status: the code, or 128 + the signal that ended it.
pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The last `n` characters of `text` (Python's `text[-n:]`).
pub fn tail_chars(text: &str, n: usize) -> &str {
    let count = text.chars().count();
    if count <= n {
        return text;
    }
    let (at, _) = text.char_indices().nth(count - n).expect("in range");
    &text[at..]
}

/// What a command printed, and how it ended (`None`: killed at its time limit).
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub status: Option<ExitStatus>,
}

/// Runs `cmd` with stdout and stderr captured, killing it and every process it started when
/// it runs past `limit` (a hung test binary would otherwise outlive its cargo).
pub fn run_captured(cmd: &mut Command, limit: Duration) -> io::Result<Captured> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let out = collect(child.stdout.take().expect("piped"));
    let err = collect(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            kill_tree(child.id(), Signal::KILL);
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    // After a kill, a process that left the tree may still hold the pipes: wait a little only.
    let patience = if status.is_some() {
        Duration::MAX
    } else {
        Duration::from_secs(5)
    };
    Ok(Captured {
        stdout: out.take(patience),
        stderr: err.take(patience),
        status,
    })
}

struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: thread::JoinHandle<()>,
}

fn collect(mut from: impl Read + Send + 'static) -> Collector {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let thread = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("not poisoned")
                .extend_from_slice(&chunk[..n]);
        }
    });
    Collector { buf, thread }
}

impl Collector {
    fn take(self, patience: Duration) -> String {
        let start = Instant::now();
        while !self.thread.is_finished() && start.elapsed() < patience {
            thread::sleep(Duration::from_millis(20));
        }
        let bytes = self.buf.lock().expect("not poisoned");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Runs `cmd` with stdout and stderr both going to the terminal and to `log` as they arrive
/// (`cmd 2>&1 | tee log`). True when the command succeeded.
pub fn run_tee(cmd: &mut Command, log: &Path) -> io::Result<bool> {
    let mut file = File::create(log)?;
    let (mut reader, writer) = io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd.spawn()?;
    // Our copies of the write end must go, or the read below never sees end of file.
    drop(std::mem::replace(cmd, Command::new("true")));
    let mut chunk = [0u8; 8192];
    let mut stdout = io::stdout();
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        stdout.write_all(&chunk[..n])?;
        stdout.flush()?;
        file.write_all(&chunk[..n])?;
    }
    Ok(child.wait()?.success())
}

/// Sends `signal` to `pid` and every process below it (read from /proc), parents first.
pub fn kill_tree(pid: u32, signal: Signal) {
    for p in tree(pid) {
        if let Some(p) = Pid::from_raw(p as i32) {
            // A process that is already gone is fine.
            let _ = kill_process(p, signal);
        }
    }
}

/// `pid` and its descendants, parents before children.
fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let ppid = stat
                .rfind(')')
                .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    out
}

/// A process this task started and must stop on every way out: SIGTERM, up to 5 s, then
/// SIGKILL (the `stop` trap of scripts/conform-peers). Only its own pid is signalled.
pub struct Stoppable(pub Option<Child>);

impl Stoppable {
    pub fn stop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        // Our own child, not yet reaped.
        if let Some(pid) = Pid::from_raw(child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        for _ in 0..50 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Whether the process has exited (reaping it).
    pub fn exited(&mut self) -> bool {
        match &mut self.0 {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Stoppable {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Seconds since `start`, rounded down (the shell's `$((SECONDS - t0))`).
pub fn whole_secs(start: Instant) -> u64 {
    start.elapsed().as_secs()
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn utc_date() -> String {
    civil_date(unix_secs())
}

/// Now in UTC to the minute, `YYYY-MM-DD HH:MM` (`date -u '+%Y-%m-%d %H:%M'`).
pub fn utc_date_time() -> String {
    let secs = unix_secs();
    let minute = secs % 86_400 / 60;
    format!("{} {:02}:{:02}", civil_date(secs), minute / 60, minute % 60)
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The UTC date of `secs` since the epoch, `YYYY-MM-DD`.
fn civil_date(secs: u64) -> String {
    // Days to civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// For a command that takes no argument: `Some(0)` after printing `usage` for `-h`/`--help`,
/// `Some(2)` with a message for anything else, `None` when there is nothing to say.
pub fn no_arguments(command: &str, usage: &str, args: &[String]) -> Option<i32> {
    match args {
        [] => None,
        [help] if help == "-h" || help == "--help" => {
            println!("{usage}");
            Some(0)
        }
        _ => {
            eprintln!(
                "xtask {command}: unrecognized argument '{}'\n{usage}",
                args[0]
            );
            Some(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_chars_counts_characters_not_bytes() {
        assert_eq!(tail_chars("ab–cd", 3), "–cd");
        assert_eq!(tail_chars("ab", 3), "ab");
    }

    #[test]
    fn run_captured_kills_the_whole_tree_at_its_limit() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30 & sleep 30"]);
        let start = Instant::now();
        let out = run_captured(&mut cmd, Duration::from_millis(500)).expect("sh runs");
        assert!(out.status.is_none(), "not reported as timed out");
        assert_eq!(out.stdout, "started\n");
        // The background sleep held the pipe: it ended too, or this would wait for it.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn run_captured_keeps_both_streams_and_the_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run_captured(&mut cmd, Duration::from_secs(30)).expect("sh runs");
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert_eq!(out.status.map(code), Some(3));
    }

    #[test]
    fn run_tee_logs_both_streams() {
        let log = std::env::temp_dir().join(format!("xtask-tee-{}.log", std::process::id()));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2"]);
        assert!(run_tee(&mut cmd, &log).expect("sh runs"));
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert_eq!(text, "one\ntwo\n");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 1"]);
        assert!(!run_tee(&mut cmd, &log).expect("sh runs"));
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn utc_date_is_a_date() {
        let d = utc_date();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }
}
