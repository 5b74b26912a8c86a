//! Seeded bugs for the kill matrix: `HIJACK_MUTANT=name cargo test` compiles the library with
//! `cfg(hijack_mutant = "name")`. Only this crate is rebuilt, not its dependencies, so the
//! matrix stays fast. Unset (the default), no mutant code exists.
fn main() {
    println!("cargo::rerun-if-env-changed=HIJACK_MUTANT");
    match std::env::var("HIJACK_MUTANT") {
        Ok(mutant) if !mutant.is_empty() => {
            println!("cargo::rustc-cfg=hijack_mutant=\"{mutant}\"");
        }
        _ => {}
    }
}
