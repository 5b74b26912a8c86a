//! `cargo xtask <command>`: the project's tooling, one Rust entry point (the xtask convention;
//! the alias is in .cargo/config.toml). Each command is the one place of its logic; the files
//! in scripts/ and benches/run are one-line wrappers, and peers/build, peers/start and scripts/install-go stay
//! small shell launchers. Run with the working directory at the repository root.

#![forbid(unsafe_code)]

mod baselines;
mod bench;
mod cflite;
mod duvet;
mod fuzz;
mod html_check;
mod kill_matrix;
mod layout;
mod mutants;
mod peers;
mod peers_explore;
mod proc;
mod soak;
mod test_all;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command> [args]   (cargo xtask <command> --help)
commands:
  test-all        every test of the project (what CI runs); logs in target/test-all/
  kill-matrix     each test suite against each seeded bug [--suite S]... [--mutant M]...
  fuzz-check      the fuzz targets built, their corpora replayed, a short smoke run
  cflite-check    .clusterfuzzlite/build.sh in a simulated builder, its $OUT checked; the workflows' schema
  fuzz-mutants    the fuzz column of the kill matrix [--mutant M]... [--target T]... [--seconds N] [--no-readme]
  duvet-check     SPEC.md's MUSTs against the tests that cite them [-v]
  conform-peers   the conformance suite against the reference server and the peers,
                  compared with their baselines [--update-baselines] [NAME...]
  html-check      the conformance matrix page rendered in headless Chromium and checked; a screenshot
  soak            the bounded soak [--full]
  bench           ours against Go 1.24.11 and 1.27.3, one table (BENCH_QUICK=1: shorter); target/bench/";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    if let Err(e) = std::env::set_current_dir(proc::root()) {
        eprintln!("xtask: cd {}: {e}", proc::root().display());
        return ExitCode::from(1);
    }
    let code = match command.as_str() {
        "test-all" => test_all::main(&rest),
        "kill-matrix" => kill_matrix::main(&rest),
        "fuzz-check" => fuzz::check(&rest),
        "fuzz-mutants" => fuzz::mutants_main(&rest),
        "cflite-check" => cflite::main(&rest),
        "duvet-check" => duvet::main(&rest),
        "conform-peers" => peers::main(&rest),
        "html-check" => html_check::main(&rest),
        "soak" => soak::main(&rest),
        "bench" => bench::main(&rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        other => {
            eprintln!("xtask: unknown command '{other}'\n{USAGE}");
            2
        }
    };
    // An exit status is a byte, as the shell's `exit N` makes it.
    ExitCode::from((code & 0xff) as u8)
}
