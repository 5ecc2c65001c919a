#![doc = include_str!("../README.md")]

pub mod audit;
pub mod bank_feed;
pub mod canonical_json;
pub mod clock;
pub mod codec;
pub mod command;
pub mod ledger;
pub mod live_feed;
pub mod payment_intake;
pub mod reconciliation;
pub mod remittance;
pub mod settings;
pub mod statement;
pub mod storage;
pub mod strict_json;
pub mod tasks;

// The tables beside the event log live in the storage module, with all the SQL.
pub use storage::{inbox, statement_store};

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
