//! Where a new partition's replicas go: Kafka's replica assignment, made rack-aware.
//!
//! Brokers are ordered so that consecutive positions alternate racks (`a1 b1 c1 a2 b2 …`).
//! Partition `p`'s first replica (its preferred leader) is the broker at `(start + p) % n`,
//! so leaders go round the brokers; each further replica is the next broker, from a
//! shift that grows every `n` partitions, on a rack not used yet by this partition (once
//! every rack is used, any broker not used yet). `start` comes from the topic id, so the
//! choice is the same on every node and differs between topics.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::image::{BrokerId, BrokerRegistration};

/// Replica lists for partitions `first_partition .. first_partition + count`, each of
/// `replication_factor` distinct brokers out of `brokers` (the live ones). The caller has
/// checked `1 <= replication_factor <= brokers.len()`.
pub fn place(
    brokers: &[&BrokerRegistration],
    topic_id: Uuid,
    first_partition: i32,
    count: i32,
    replication_factor: usize,
) -> Vec<Vec<BrokerId>> {
    let order = rack_alternating(brokers);
    let n = order.len();
    let seed = topic_id.as_u128();
    let start = (seed % n as u128) as usize;
    let shift_seed = ((seed >> 64) % n as u128) as usize;
    let racks_total = {
        let mut racks: Vec<_> = order.iter().map(|(_, r)| r.clone()).collect();
        racks.sort();
        racks.dedup();
        racks.len()
    };
    (first_partition..first_partition + count)
        .map(|p| {
            let p = p as usize;
            let first = (start + p) % n;
            let shift = shift_seed + p / n;
            let mut chosen = vec![first];
            let mut racks_used = vec![order[first].1.clone()];
            let mut candidate = 0;
            while chosen.len() < replication_factor {
                // Walk positions after `first`, starting at a shift so that followers
                // spread too; prefer an unused rack while one is left.
                let rack_free = racks_used.len() < racks_total;
                let mut picked = None;
                for step in 0..n {
                    let pos = (first + 1 + (shift + candidate + step) % (n - 1).max(1)) % n;
                    if chosen.contains(&pos) {
                        continue;
                    }
                    if rack_free && racks_used.contains(&order[pos].1) {
                        continue;
                    }
                    picked = Some(pos);
                    break;
                }
                // Every position after `first` in shift order was taken or on a used rack:
                // fall back to the first free one.
                let pos = picked.unwrap_or_else(|| {
                    (0..n)
                        .find(|pos| !chosen.contains(pos))
                        .expect("replication factor <= brokers")
                });
                chosen.push(pos);
                racks_used.push(order[pos].1.clone());
                candidate += 1;
            }
            chosen.into_iter().map(|pos| order[pos].0).collect()
        })
        .collect()
}

/// Brokers as `(id, rack)`, racks interleaved: the first broker of each rack (racks in
/// name order, brokers in id order), then the second of each, and so on. Brokers without a
/// rack count as one rack of their own name "".
fn rack_alternating(brokers: &[&BrokerRegistration]) -> Vec<(BrokerId, String)> {
    let mut by_rack: BTreeMap<String, Vec<BrokerId>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.clone().unwrap_or_default())
            .or_default()
            .push(b.id);
    }
    for ids in by_rack.values_mut() {
        ids.sort();
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let mut order = Vec::new();
    for i in 0..deepest {
        for (rack, ids) in &by_rack {
            if let Some(id) = ids.get(i) {
                order.push((*id, rack.clone()));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn broker(id: BrokerId, rack: Option<&str>) -> BrokerRegistration {
        BrokerRegistration {
            id,
            incarnation: Uuid::nil(),
            host: "h".into(),
            port: 9092,
            rack: rack.map(String::from),
            listeners: Vec::new(),
            fenced: false,
        }
    }

    #[test]
    fn leaders_go_round_the_brokers() {
        let brokers = [broker(1, None), broker(2, None), broker(3, None)];
        let refs: Vec<_> = brokers.iter().collect();
        let placed = place(&refs, Uuid::from_u128(0), 0, 6, 2);
        let leaders: Vec<_> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        for replicas in &placed {
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0], replicas[1]);
        }
    }

    #[test]
    fn replicas_go_to_different_racks_first() {
        let brokers = [
            broker(1, Some("a")),
            broker(2, Some("a")),
            broker(3, Some("b")),
            broker(4, Some("b")),
            broker(5, Some("c")),
            broker(6, Some("c")),
        ];
        let refs: Vec<_> = brokers.iter().collect();
        let rack = |id: BrokerId| brokers.iter().find(|b| b.id == id).unwrap().rack.clone();
        for replicas in place(&refs, Uuid::from_u128(77), 0, 12, 3) {
            let mut racks: Vec<_> = replicas.iter().map(|id| rack(*id)).collect();
            racks.sort();
            racks.dedup();
            assert_eq!(racks.len(), 3, "{replicas:?} share a rack");
        }
    }

    proptest! {
        #[test]
        fn placements_are_distinct_balanced_and_rack_diverse(
            racks in proptest::collection::vec(proptest::option::of(0u8..3), 1..8),
            partitions in 1i32..40,
            rf_seed in 0usize..8,
            id in any::<u128>(),
        ) {
            let brokers: Vec<_> = racks.iter().enumerate()
                .map(|(i, r)| broker(i as i32 * 10, r.map(|r| ["x", "y", "z"][r as usize])))
                .collect();
            let refs: Vec<_> = brokers.iter().collect();
            let rf = 1 + rf_seed % brokers.len();
            let placed = place(&refs, Uuid::from_u128(id), 0, partitions, rf);
            prop_assert_eq!(placed.len(), partitions as usize);
            let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
            let rack_count = { let mut r: Vec<_> = brokers.iter().map(|b| b.rack.clone()).collect(); r.sort(); r.dedup(); r.len() };
            for replicas in &placed {
                prop_assert_eq!(replicas.len(), rf);
                let mut sorted = replicas.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), rf, "duplicate replica in {:?}", replicas);
                *leaders.entry(replicas[0]).or_default() += 1;
                let mut used: Vec<_> = replicas.iter()
                    .map(|id| brokers.iter().find(|b| b.id == *id).unwrap().rack.clone()).collect();
                used.sort();
                used.dedup();
                prop_assert_eq!(used.len(), rf.min(rack_count), "{:?} not rack-diverse", replicas);
            }
            // Leaders differ by at most one partition between brokers.
            let most = leaders.values().max().copied().unwrap_or(0);
            let least = if leaders.len() < brokers.len() { 0 } else { leaders.values().min().copied().unwrap_or(0) };
            prop_assert!(most - least <= 1, "leaders unbalanced: {:?}", leaders);
        }
    }
}
