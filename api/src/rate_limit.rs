//! Rate limits of the public payment page (`/pay` and its GraphQL fields): one per client
//! address and one for all clients together, so that nobody can walk through case codes and a
//! crowd cannot take the service down.
//!
//! Each limit is a GCRA ("generic cell rate algorithm", a token bucket kept as one instant): a
//! limit of N a minute lets a client make N requests at once, then one every 60/N seconds.
//! Integer time only. The per-client table is bounded ([`MAX_CLIENTS`]); when it is full of
//! clients still limited, new clients are refused like the global limit refuses them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many client addresses are remembered at once.
pub const MAX_CLIENTS: usize = 100_000;

/// The address a request came from (the TCP peer, or the last `X-Forwarded-For` entry behind
/// a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_seconds(self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Time between two requests once the burst is used.
    interval: Duration,
    /// How far ahead of now the bucket may run: (burst − 1) intervals.
    tolerance: Duration,
}

impl Rate {
    fn per_minute(requests: u32) -> Rate {
        let requests = requests.max(1);
        let interval = Duration::from_secs(60) / requests;
        Rate { interval, tolerance: interval * (requests - 1) }
    }

    /// Takes one request from the bucket whose theoretical arrival time is `tat`.
    fn take(self, tat: &mut Instant, now: Instant) -> Result<(), Limited> {
        let start = (*tat).max(now);
        // Not money: an instant before the clock's origin is simply "long ago", so allowed.
        let allowed_from = start.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_from > now {
            return Err(Limited { retry_after: allowed_from - now });
        }
        *tat = start + self.interval;
        Ok(())
    }

    /// Whether a bucket at `tat` would allow a request now (without taking it).
    fn allows(self, tat: Instant, now: Instant) -> Result<(), Limited> {
        let mut copy = tat;
        self.take(&mut copy, now)
    }
}

#[derive(Debug)]
struct Buckets {
    global: Instant,
    clients: HashMap<IpAddr, Instant>,
}

/// The public page's limits. Cheap to clone; clones share the buckets.
#[derive(Debug, Clone)]
pub struct PublicRateLimit {
    per_client: Rate,
    global: Rate,
    buckets: Arc<Mutex<Buckets>>,
}

impl PublicRateLimit {
    pub fn new(per_client_per_minute: u32, global_per_minute: u32) -> Self {
        let now = Instant::now();
        PublicRateLimit {
            per_client: Rate::per_minute(per_client_per_minute),
            global: Rate::per_minute(global_per_minute),
            buckets: Arc::new(Mutex::new(Buckets { global: now, clients: HashMap::new() })),
        }
    }

    /// Counts one request of `client`, or says how long to wait. A refused request costs
    /// nothing, so a client that waits as told gets through.
    pub fn check(&self, client: IpAddr) -> Result<(), Limited> {
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Buckets { global, clients } = &mut *buckets;
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, tat| *tat > now);
            if clients.len() >= MAX_CLIENTS {
                return Err(Limited { retry_after: self.per_client.interval });
            }
        }
        let client_tat = clients.get(&client).copied().unwrap_or(now);
        self.per_client.allows(client_tat, now)?;
        self.global.take(global, now)?;
        let tat = clients.entry(client).or_insert(now);
        self.per_client.take(tat, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let limit = PublicRateLimit::new(3, 1_000);
        for _ in 0..3 {
            assert!(limit.check(ip(1)).is_ok());
        }
        let refused = limit.check(ip(1)).unwrap_err();
        assert!(refused.retry_after <= Duration::from_secs(20) && refused.retry_after_seconds() >= 1);
        assert!(limit.check(ip(2)).is_ok(), "another client is not affected");
    }

    #[test]
    fn all_clients_together_are_limited_too() {
        let limit = PublicRateLimit::new(100, 4);
        for n in 0..4 {
            assert!(limit.check(ip(n)).is_ok());
        }
        assert!(limit.check(ip(99)).is_err(), "a fresh client meets the global limit");
    }

    #[test]
    fn a_refused_request_costs_nothing() {
        let limit = PublicRateLimit::new(1, 1_000);
        assert!(limit.check(ip(1)).is_ok());
        let first = limit.check(ip(1)).unwrap_err();
        let second = limit.check(ip(1)).unwrap_err();
        assert!(second.retry_after <= first.retry_after, "waiting is not made longer by asking");
    }
}
