#![doc = include_str!("../README.md")]

pub mod cashless;
pub mod documents;
pub mod invariants;
pub mod lease;
pub mod payments;
pub mod receipts;
pub mod reconciliation;
pub mod runner;
pub mod treasury;
