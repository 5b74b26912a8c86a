//! The hostile corpus (`hostile/*.http`) is compiled in with `include_dir!`; a file added to or
//! removed from the folder rebuilds the crate (Cargo watches every file under it).
fn main() {
    println!("cargo::rerun-if-changed=hostile");
}
