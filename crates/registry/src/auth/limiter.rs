//! Failed logins by client address: after too many in a minute, that address gets 429
//! until the minute is over, so passwords cannot be guessed at speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

pub struct Limiter {
    limit: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    pub fn new(limit: u32) -> Limiter {
        Limiter {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` has used up its failures for now.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let failures = self.failures.lock().expect("limiter lock");
        failures
            .get(&ip)
            .is_some_and(|(since, n)| since.elapsed() < WINDOW && *n >= self.limit)
    }

    pub fn fail(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().expect("limiter lock");
        failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }
}
