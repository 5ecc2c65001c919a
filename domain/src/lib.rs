#![doc = include_str!("../README.md")]

pub mod agency;
pub mod allocation;
pub mod amount_in_words;
pub mod bank_credit;
pub mod case_fees;
pub mod codes;
pub mod fee_schedule;
pub mod money;
pub mod payer;
pub mod receipt;
pub mod reconciliation;
pub mod treasury;
pub mod vietnam_time;
pub mod vietqr;
