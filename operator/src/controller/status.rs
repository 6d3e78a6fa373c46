//! Status conditions, computed purely from what the reconcile observed.
//!
//! Conditions follow the Kubernetes convention: one entry per type, `lastTransitionTime` only
//! moves when `status` flips, `observedGeneration` says which spec the condition describes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::health::BrokerHealth;
use crate::crd::BrokerState;

/// A condition before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Turns `conds` into Kubernetes conditions, keeping `lastTransitionTime` from `previous` where
/// the status did not change.
pub fn to_conditions(
    conds: &[Cond],
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    conds
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" }.to_string();
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: c.type_.to_string(),
                status,
                reason: c.reason.clone(),
                message: c.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// What the cluster reconcile observed, input to [`cluster_conditions`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterObservation {
    /// Validation problems; non-empty means nothing was applied.
    pub invalid: Vec<String>,
    /// Server-side apply failed with this message.
    pub apply_error: Option<String>,
    pub desired_replicas: i32,
    /// StatefulSet `.spec.replicas` after apply.
    pub sts_replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    /// The StatefulSet controller has seen the latest StatefulSet spec.
    pub sts_current: bool,
    /// A scale or roll step in progress: (reason, message).
    pub in_progress: Option<(String, String)>,
    /// A scale or roll step refused: (reason, message).
    pub blocked: Option<(String, String)>,
    /// Per-broker health (empty when the brokers were not looked at).
    pub brokers: Vec<BrokerHealth>,
    /// Under-replicated partitions per Metadata, when the cluster answered.
    pub under_replicated: Option<i32>,
    /// Partitions being reassigned, when the cluster answered.
    pub reassigning: Option<i32>,
}

/// Ready, Progressing and Degraded for a KafkaCluster.
pub fn cluster_conditions(o: &ClusterObservation) -> Vec<Cond> {
    if !o.invalid.is_empty() {
        let msg = o.invalid.join("; ");
        return vec![
            Cond::new("Ready", false, "InvalidSpec", msg.clone()),
            Cond::new(
                "Progressing",
                false,
                "InvalidSpec",
                "fix the spec to continue",
            ),
            Cond::new("Degraded", true, "InvalidSpec", msg),
        ];
    }
    if let Some(err) = &o.apply_error {
        return vec![
            Cond::new("Ready", false, "ApplyFailed", err.clone()),
            Cond::new("Progressing", false, "ApplyFailed", "retrying"),
            Cond::new("Degraded", true, "ApplyFailed", err.clone()),
        ];
    }
    let all_ready = o.sts_current
        && o.sts_replicas == o.desired_replicas
        && o.ready_replicas >= o.desired_replicas
        && o.updated_replicas >= o.desired_replicas;
    let ready = if all_ready {
        Cond::new(
            "Ready",
            true,
            "AllBrokersReady",
            format!(
                "{} of {} brokers ready",
                o.ready_replicas, o.desired_replicas
            ),
        )
    } else {
        Cond::new(
            "Ready",
            false,
            "BrokersNotReady",
            format!(
                "{} of {} brokers ready",
                o.ready_replicas, o.desired_replicas
            ),
        )
    };
    let progressing = match (&o.in_progress, all_ready) {
        (Some((reason, message)), _) => {
            Cond::new("Progressing", true, reason.clone(), message.clone())
        }
        (None, false) if o.blocked.is_none() => Cond::new(
            "Progressing",
            true,
            "WaitingForBrokers",
            format!(
                "{} of {} brokers ready and up to date",
                o.ready_replicas.min(o.updated_replicas),
                o.desired_replicas
            ),
        ),
        _ => Cond::new("Progressing", false, "Stable", "no change in progress"),
    };
    let unavailable: Vec<String> = o
        .brokers
        .iter()
        .filter(|b| {
            matches!(
                b.state,
                BrokerState::Lost | BrokerState::Unreachable | BrokerState::Fenced
            )
        })
        .map(|b| format!("broker {} {:?}", b.id, b.state))
        .collect();
    let degraded = match &o.blocked {
        Some((reason, message)) => Cond::new("Degraded", true, reason.clone(), message.clone()),
        None if !unavailable.is_empty() => Cond::new(
            "Degraded",
            true,
            if o.brokers.iter().any(|b| b.state == BrokerState::Lost) {
                "BrokersLost"
            } else {
                "BrokersUnavailable"
            },
            unavailable.join(", "),
        ),
        None => Cond::new("Degraded", false, "AsExpected", "no problem found"),
    };
    vec![ready, progressing, degraded]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> ClusterObservation {
        ClusterObservation {
            desired_replicas: 3,
            sts_replicas: 3,
            ready_replicas: 3,
            updated_replicas: 3,
            sts_current: true,
            ..ClusterObservation::default()
        }
    }

    fn by_type<'a>(c: &'a [Cond], t: &str) -> &'a Cond {
        c.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn all_ready_is_ready_and_stable() {
        let c = cluster_conditions(&obs());
        assert!(by_type(&c, "Ready").status);
        assert!(!by_type(&c, "Progressing").status);
        assert!(!by_type(&c, "Degraded").status);
    }

    #[test]
    fn brokers_starting_is_progressing() {
        let c = cluster_conditions(&ClusterObservation {
            ready_replicas: 1,
            ..obs()
        });
        assert_eq!(by_type(&c, "Ready").message, "1 of 3 brokers ready");
        assert!(!by_type(&c, "Ready").status);
        assert_eq!(by_type(&c, "Progressing").reason, "WaitingForBrokers");
    }

    #[test]
    fn invalid_spec_is_degraded_with_every_problem() {
        let c = cluster_conditions(&ClusterObservation {
            invalid: vec!["a".into(), "b".into()],
            ..obs()
        });
        assert_eq!(by_type(&c, "Degraded").reason, "InvalidSpec");
        assert_eq!(by_type(&c, "Degraded").message, "a; b");
        assert!(!by_type(&c, "Ready").status);
    }

    #[test]
    fn blocked_scale_down_is_degraded_not_progressing() {
        let c = cluster_conditions(&ClusterObservation {
            desired_replicas: 2,
            blocked: Some((
                "ScaleDownBlocked".into(),
                "topic x has replication factor 3".into(),
            )),
            ..obs()
        });
        assert!(by_type(&c, "Degraded").status);
        assert_eq!(by_type(&c, "Degraded").reason, "ScaleDownBlocked");
        assert!(!by_type(&c, "Progressing").status);
        assert!(!by_type(&c, "Ready").status);
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2024-01-02T00:00:00Z".parse().unwrap();
        let first = to_conditions(&cluster_conditions(&obs()), &[], Some(1), t0);
        let same = to_conditions(&cluster_conditions(&obs()), &first, Some(2), t1);
        assert_eq!(same[0].last_transition_time, Time(t0));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = to_conditions(
            &cluster_conditions(&ClusterObservation {
                ready_replicas: 0,
                ..obs()
            }),
            &same,
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
    }
}
