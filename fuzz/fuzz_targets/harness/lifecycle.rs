//! The `lifecycle` target: an input decoded into operations (`hijack_testkit::lifecycle::ops`),
//! run on the core and on the model by the test kit's driver, which compares them step by
//! step; then the live heap bytes must be back where they were.

use std::sync::OnceLock;

use hijack_testkit::lifecycle::{ops, run_case, warm_up_sequences};

use crate::{alloc, guard};

/// One input: run, compared, and then the live heap bytes are back where they were.
pub fn run(data: &[u8]) {
    guard::init("lifecycle");
    let _watched = guard::watch();
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| warm_up_sequences().iter().for_each(|ops| run_case(ops)));
    let ops = ops(data);
    if std::env::var_os("HIJACK_FUZZ_DEBUG").is_some() {
        eprintln!("lifecycle: {ops:?}");
    }
    let before = alloc::live();
    run_case(&ops);
    if let Err(grown) = alloc::settle_to(before, guard::WAIT_LIMIT) {
        // A lazily initialized static of the process grows once; a leak grows every time.
        if std::env::var_os("HIJACK_FUZZ_DEBUG").is_some() {
            eprintln!("{grown} bytes live after the first run: running again");
        }
        let again = alloc::live();
        run_case(&ops);
        if let Err(grown_again) = alloc::settle_to(again, guard::WAIT_LIMIT) {
            panic!(
                "lifecycle: {grown} then {grown_again} heap bytes still live after the run: {ops:?}"
            );
        }
    }
}
