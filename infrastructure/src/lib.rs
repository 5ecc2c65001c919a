#![doc = include_str!("../README.md")]

pub mod audit;
pub mod bank_feed;
pub mod canonical_json;
pub mod codec;
pub mod command;
pub mod event_store;
pub mod inbox;
pub mod ledger;
pub mod live_feed;
pub mod payment_intake;
pub mod remittance;
pub mod settings;
pub mod statement;
pub mod statement_store;
pub mod strict_json;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
