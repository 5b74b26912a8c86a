//! `cargo xtask soak`: the bounded soak over loopback (issue 9): hijacks, then many hijacked
//! connections held at once, then everything closed; zero lost bytes, and descriptors, threads
//! and live heap back to their baseline (examples/soak.rs prints the figures and exits non-zero
//! otherwise). Raises the open-files limit for the run: two descriptors per held connection
//! (client and server end, both in the one process), plus slack.

use rustix::process::{Resource, getrlimit, setrlimit};
use std::os::unix::process::CommandExt;
use std::process::Command;

// Layout: change these when the example moves.
/// The package with examples/soak.rs.
const SOAK_PACKAGE: &str = "hijack";
/// Where `cargo build --release --example soak` puts it.
const SOAK_BIN: &str = "target/release/examples/soak";

pub const USAGE: &str = "usage: cargo xtask soak [--full]
  reduced: 10,000 hijacks, 1,000 held (well under 60 s)
  --full:  100,000 hijacks, 5,000 held (the example stops itself at 5 min)";

pub fn main(args: &[String]) -> i32 {
    let (hijacks, held): (u64, u64) = match args {
        [] => (10_000, 1_000),
        [full] if full == "--full" => (100_000, 5_000),
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            return 0;
        }
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };

    // Two descriptors per held connection (client and server end, both in one process), plus
    // slack.
    let need = held * 2 + 1024;
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|soft| soft < need) {
        if let Some(hard) = limit.maximum.filter(|&hard| hard < need) {
            eprintln!("soak: the open-files hard limit ({hard}) is below the {need} needed");
            return 1;
        }
        limit.current = Some(need);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("soak: setrlimit: {e}");
            return 1;
        }
    }

    match Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            SOAK_PACKAGE,
            "--example",
            "soak",
        ])
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => return crate::proc::code(s),
        Err(e) => {
            eprintln!("soak: cargo: {e}");
            return 1;
        }
    }
    let e = Command::new(SOAK_BIN)
        .args([
            "--hijacks",
            &hijacks.to_string(),
            "--held",
            &held.to_string(),
        ])
        .exec();
    eprintln!("soak: {SOAK_BIN}: {e}");
    1
}
