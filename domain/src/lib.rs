#![doc = include_str!("../README.md")]

pub mod agency;
pub mod bank_credit;
pub mod case_fees;
pub mod codes;
pub mod fee_schedule;
pub mod money;
pub mod payer;
pub mod vietnam_time;
pub mod vietqr;
