//! The time commands are decided at: the store's clock (see `feeledger_infrastructure::clock`),
//! so that what a command decides and when its events are recorded agree, in tests too.

pub use feeledger_infrastructure::clock::Clock;
