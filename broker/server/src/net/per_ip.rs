//! Open connections per client address: Kafka's `max.connections.per.ip`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections by peer IP and refuses one beyond the limit.
pub struct ConnectionsPerIp {
    max: usize,
    /// A std mutex: held for a map update, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
pub struct IpSlot {
    tracker: Arc<ConnectionsPerIp>,
    ip: IpAddr,
}

impl ConnectionsPerIp {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionsPerIp {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or `None` if `ip` already has `max` open.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            tracker: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            // Forget addresses with nothing open, so the map doesn't grow with every client
            // that ever connected.
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_beyond_the_limit_is_refused_and_a_close_frees_a_slot() {
        let tracker = ConnectionsPerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = tracker.try_open(a).unwrap();
        let _a2 = tracker.try_open(a).unwrap();
        assert!(tracker.try_open(a).is_none());
        assert_eq!(tracker.open(a), 2, "a refused connection is not counted");
        let _b1 = tracker.try_open(b).expect("limits are per address");
        drop(a1);
        assert_eq!(tracker.open(a), 1);
        let _a3 = tracker.try_open(a).unwrap();
        assert!(tracker.try_open(a).is_none());
    }

    #[test]
    fn addresses_with_nothing_open_are_forgotten() {
        let tracker = ConnectionsPerIp::new(1);
        let a: IpAddr = "::1".parse().unwrap();
        drop(tracker.try_open(a).unwrap());
        assert!(tracker.open.lock().unwrap().is_empty());
    }
}
