#![doc = include_str!("../README.md")]

pub mod codec;
pub mod event_store;
pub mod ledger;
pub mod live_feed;
pub mod settings;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
