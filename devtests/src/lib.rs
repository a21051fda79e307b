//! Nothing: this crate only holds tests (see Cargo.toml).
