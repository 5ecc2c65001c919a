//! Black-box tests of the whole service over HTTP, on SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod audit;
mod authz;
mod bad_input;
mod browser;
mod case_flow;
mod counter;
mod crash;
mod failover;
mod finance;
mod health;
mod hostile;
mod live_routes;
mod nodes;
mod oversight;
mod pay_browser;
mod public_pay;
mod reconciliation;
mod remittance;
mod treasury;
mod webhooks;
// issue 15: the banks' own statement exports
mod bank_statements;
