//! Per-broker health, computed purely from what a reconcile observed: the broker pods, their
//! Nodes, the cluster's Metadata and the previous status (which carries the node-loss clock, so
//! a restarted operator resumes counting where the last one was).
//!
//! A broker is *unhealthy* while its Node is NotReady or gone, or while the cluster has fenced
//! it (it is missing from Metadata although its pod runs). Unhealthy for longer than
//! `nodeLossTimeoutSeconds` makes it *lost*: its replicas move to healthy brokers, and when its
//! Node is the cause the operator frees its StatefulSet slot (see `cluster.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::admin::BrokerId;
use crate::crd::{BrokerState, BrokerStatus};

/// A Node's readiness as the node-lifecycle controller reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeHealth {
    Ready,
    /// Ready condition False or Unknown since the given time.
    NotReady {
        since: Timestamp,
    },
}

/// One broker pod, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerPod {
    pub ordinal: BrokerId,
    pub node: Option<String>,
    pub ready: bool,
    pub terminating: bool,
    /// Runs an older revision of the pod template than the StatefulSet's update revision.
    pub outdated: bool,
}

/// What [`assess`] decides about one broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerHealth {
    pub id: BrokerId,
    pub state: BrokerState,
    pub node: Option<String>,
    /// Start of the node-loss clock, while unhealthy.
    pub unhealthy_since: Option<Timestamp>,
    /// Its Node is NotReady or gone (as opposed to the broker alone being fenced).
    pub node_down: bool,
}

impl BrokerHealth {
    pub fn lost(&self) -> bool {
        self.state == BrokerState::Lost
    }
}

/// Inputs of [`assess`].
pub struct Observed<'a> {
    /// Brokers the StatefulSet runs: ordinals `0..sts_replicas`.
    pub sts_replicas: i32,
    /// `spec.replicas`: ordinals at or above it are being drained.
    pub desired: i32,
    pub pods: &'a [BrokerPod],
    /// Nodes by name; a Node missing from the map is gone.
    pub nodes: &'a BTreeMap<String, NodeHealth>,
    /// Unfenced brokers per Metadata; `None` when the cluster could not be asked.
    pub live: Option<&'a BTreeSet<BrokerId>>,
    pub previous: &'a [BrokerStatus],
    pub now: Timestamp,
    pub node_loss_timeout: Duration,
}

/// The health of every broker `0..sts_replicas`.
pub fn assess(o: &Observed) -> Vec<BrokerHealth> {
    (0..o.sts_replicas)
        .map(|id| {
            let pod = o.pods.iter().find(|p| p.ordinal == id);
            let node = pod.and_then(|p| p.node.clone());
            let node_health = node.as_ref().map(|n| o.nodes.get(n));
            let node_down = matches!(node_health, Some(None | Some(NodeHealth::NotReady { .. })));
            let fenced = pod.is_some_and(|p| !p.terminating)
                && o.live.is_some_and(|live| !live.contains(&id));
            let previous = o.previous.iter().find(|b| b.node_id == id);
            let unhealthy_since = (node_down || fenced).then(|| {
                let carried = previous
                    .and_then(|b| b.unhealthy_since.as_ref())
                    .map(|t| t.0);
                let node_since = match node_health {
                    Some(Some(NodeHealth::NotReady { since })) => Some(*since),
                    _ => None,
                };
                [carried, node_since]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(o.now)
            });
            let timed_out = unhealthy_since.is_some_and(|since| {
                o.now.duration_since(since).unsigned_abs() >= o.node_loss_timeout
            });
            let state = if timed_out {
                BrokerState::Lost
            } else if id >= o.desired {
                BrokerState::Draining
            } else if node_down {
                BrokerState::Unreachable
            } else if !pod.is_some_and(|p| p.ready && !p.terminating) || o.live.is_none() {
                // Not serving yet (the clock runs all the same while it is fenced: a broker
                // that never comes back is lost too).
                BrokerState::Starting
            } else if fenced {
                BrokerState::Fenced
            } else {
                BrokerState::Ready
            };
            BrokerHealth {
                id,
                state,
                node,
                unhealthy_since,
                node_down,
            }
        })
        .collect()
}

/// Brokers that are registered, unfenced and not lost: where replicas may go.
pub fn healthy_brokers(health: &[BrokerHealth], live: &BTreeSet<BrokerId>) -> Vec<BrokerId> {
    health
        .iter()
        .filter(|h| live.contains(&h.id) && !h.lost() && !h.node_down)
        .map(|h| h.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod(ordinal: i32, node: &str) -> BrokerPod {
        BrokerPod {
            ordinal,
            node: Some(node.to_string()),
            ready: true,
            terminating: false,
            outdated: false,
        }
    }

    struct Case {
        pods: Vec<BrokerPod>,
        nodes: BTreeMap<String, NodeHealth>,
        live: BTreeSet<BrokerId>,
        previous: Vec<BrokerStatus>,
        now: Timestamp,
    }

    impl Case {
        fn healthy() -> Self {
            Case {
                pods: vec![pod(0, "a"), pod(1, "b"), pod(2, "c")],
                nodes: ["a", "b", "c"]
                    .iter()
                    .map(|n| (n.to_string(), NodeHealth::Ready))
                    .collect(),
                live: BTreeSet::from([0, 1, 2]),
                previous: Vec::new(),
                now: ts("2026-01-01T00:10:00Z"),
            }
        }

        fn run(&self) -> Vec<BrokerHealth> {
            assess(&Observed {
                sts_replicas: 3,
                desired: 3,
                pods: &self.pods,
                nodes: &self.nodes,
                live: Some(&self.live),
                previous: &self.previous,
                now: self.now,
                node_loss_timeout: Duration::from_secs(60),
            })
        }
    }

    fn states(h: &[BrokerHealth]) -> Vec<BrokerState> {
        h.iter().map(|b| b.state).collect()
    }

    #[test]
    fn all_running_and_registered_is_ready() {
        let h = Case::healthy().run();
        assert_eq!(states(&h), [BrokerState::Ready; 3]);
        assert!(h.iter().all(|b| b.unhealthy_since.is_none()));
    }

    #[test]
    fn a_node_not_ready_counts_from_its_transition_and_is_lost_after_the_timeout() {
        let mut c = Case::healthy();
        c.nodes.insert(
            "b".into(),
            NodeHealth::NotReady {
                since: ts("2026-01-01T00:09:30Z"),
            },
        );
        let h = c.run();
        assert_eq!(h[1].state, BrokerState::Unreachable);
        assert_eq!(h[1].unhealthy_since, Some(ts("2026-01-01T00:09:30Z")));
        assert!(h[1].node_down);
        c.now = ts("2026-01-01T00:10:30Z");
        let h = c.run();
        assert_eq!(h[1].state, BrokerState::Lost);
        assert_eq!(healthy_brokers(&h, &c.live), [0, 2]);
    }

    #[test]
    fn a_gone_node_starts_the_clock_now_and_the_status_carries_it() {
        let mut c = Case::healthy();
        c.nodes.remove("c");
        let h = c.run();
        assert_eq!(h[2].state, BrokerState::Unreachable);
        assert_eq!(h[2].unhealthy_since, Some(c.now));
        // A restarted operator reads the clock back from the status.
        c.previous = vec![BrokerStatus {
            node_id: 2,
            pod: "x-2".into(),
            address: "x".into(),
            voter: true,
            state: BrokerState::Unreachable,
            node: Some("c".into()),
            unhealthy_since: Some(Time(ts("2026-01-01T00:08:00Z"))),
        }];
        let h = c.run();
        assert_eq!(h[2].state, BrokerState::Lost);
    }

    #[test]
    fn a_fenced_broker_on_a_ready_node_is_lost_only_after_the_timeout() {
        let mut c = Case::healthy();
        c.live.remove(&0);
        let h = c.run();
        assert_eq!(h[0].state, BrokerState::Fenced);
        assert!(!h[0].node_down);
        c.previous = vec![BrokerStatus {
            node_id: 0,
            pod: "x-0".into(),
            address: "x".into(),
            voter: true,
            state: BrokerState::Fenced,
            node: Some("a".into()),
            unhealthy_since: Some(Time(ts("2026-01-01T00:09:30Z"))),
        }];
        assert_eq!(c.run()[0].state, BrokerState::Fenced);
        c.now = ts("2026-01-01T00:10:31Z");
        assert_eq!(c.run()[0].state, BrokerState::Lost);
    }

    #[test]
    fn a_starting_broker_shows_starting_while_the_clock_runs() {
        let mut c = Case::healthy();
        c.pods[2].ready = false;
        c.live.remove(&2);
        let h = c.run();
        assert_eq!(h[2].state, BrokerState::Starting);
        assert_eq!(h[2].unhealthy_since, Some(c.now));
    }

    #[test]
    fn recovery_before_the_timeout_clears_the_clock() {
        let mut c = Case::healthy();
        c.previous = vec![BrokerStatus {
            node_id: 1,
            pod: "x-1".into(),
            address: "x".into(),
            voter: true,
            state: BrokerState::Unreachable,
            node: Some("b".into()),
            unhealthy_since: Some(Time(ts("2026-01-01T00:09:50Z"))),
        }];
        let h = c.run();
        assert_eq!(h[1].state, BrokerState::Ready);
        assert_eq!(h[1].unhealthy_since, None);
    }

    #[test]
    fn brokers_above_the_desired_count_are_draining_and_missing_pods_starting() {
        let mut c = Case::healthy();
        c.pods.retain(|p| p.ordinal != 1);
        let h = assess(&Observed {
            sts_replicas: 3,
            desired: 2,
            pods: &c.pods,
            nodes: &c.nodes,
            live: Some(&c.live),
            previous: &[],
            now: c.now,
            node_loss_timeout: Duration::from_secs(60),
        });
        assert_eq!(
            states(&h),
            [
                BrokerState::Ready,
                BrokerState::Starting,
                BrokerState::Draining
            ]
        );
    }
}
