//! What keeps a fuzz input bounded and its failures readable: a watchdog, bounded waits,
//! deliberate handler panics that are not crashes, and seeded byte patterns.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one input may run before the watchdog aborts the process (a hang is a crash).
pub const CASE_LIMIT: Duration = Duration::from_secs(20);

pub use hijack_testkit::served::{DELIBERATE_PANIC, WAIT_LIMIT, pattern};

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// When the running input started, in microseconds since [`EPOCH`] plus one; 0 when idle.
static CASE_STARTED: AtomicU64 = AtomicU64::new(0);

fn now_micros() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

/// Once per process: lets deliberate handler panics unwind quietly (libfuzzer-sys' hook
/// aborts on every panic, which is what every other panic should do), and starts the
/// watchdog thread. Call before measuring anything.
pub fn init(target: &'static str) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let aborting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE_PANIC) {
                aborting(info);
            }
        }));
        now_micros();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let started = CASE_STARTED.load(Ordering::SeqCst);
                    if started != 0
                        && now_micros().saturating_sub(started) > CASE_LIMIT.as_micros() as u64
                    {
                        eprintln!(
                            "{target}: watchdog: one input ran for more than {} s: a hang",
                            CASE_LIMIT.as_secs()
                        );
                        std::process::abort();
                    }
                }
            })
            .expect("watchdog thread");
    });
}

/// Marks one input as running for the watchdog until dropped.
pub struct Watched(());

/// Starts watching one input.
pub fn watch() -> Watched {
    CASE_STARTED.store(now_micros(), Ordering::SeqCst);
    Watched(())
}

impl Drop for Watched {
    fn drop(&mut self) {
        CASE_STARTED.store(0, Ordering::SeqCst);
    }
}

/// Waits until `cond` holds, at most [`WAIT_LIMIT`]; returns whether it held.
pub fn wait_until(cond: impl FnMut() -> bool) -> bool {
    hijack_testkit::poll_until(WAIT_LIMIT, cond)
}
