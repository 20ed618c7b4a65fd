//! `embed_migrations!` reads `migrations/` at compile time, but a macro cannot tell cargo to
//! watch a directory: without this, a new migration would not reach a binary built from a
//! warm target directory.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
