//! `sqlx::migrate!` embeds `migrations/` at compile time, but cargo does not know the macro read
//! that directory: without this, a new migration file is missed by incremental builds.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
