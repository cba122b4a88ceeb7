//! The audit crate's integration tests, one binary: the engine against generated data sets
//! ([`fixtures`]) and the runner against PostgreSQL ([`runner`]).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod runner;
