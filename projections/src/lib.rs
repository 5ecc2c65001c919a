#![doc = include_str!("../README.md")]

pub mod cashless;
pub mod invariants;
pub mod payments;
pub mod receipts;
pub mod reconciliation;
pub mod runner;
pub mod treasury;

// Where read models are stored and who runs each projection: SQL, so it lives in the storage
// module of the infrastructure crate; these paths stay for the projections' code.
pub use feeledger_infrastructure::storage::{documents, lease};
