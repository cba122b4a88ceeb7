//! Integration tests of shikaku-db against a real PostgreSQL (one database per test, cloned
//! from a migrated template; see `shikaku_db::testing`). Needs `DATABASE_URL`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod benefits;
mod certificates;
mod constraints;
mod counter;
mod explain;
mod export;
mod identity_check;
mod import_initial;
mod import_linkages;
mod import_persons;
mod import_residents;
mod keys;
mod linkages;
mod migrations;
mod queue_bench;
mod roles;
mod stats;
mod util;
