use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{owned_meta, selector_labels, Names};
use crate::crd::KafkaCluster;

/// PodDisruptionBudget allowing one broker down at a time. Built as `policy/v1`; the apply phase
/// sends it as `policy/v1beta1` when that is all the API server serves (same fields).
pub fn build_pdb(kc: &KafkaCluster) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: owned_meta(kc, Names::of(kc).pdb()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(kc)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    #[test]
    fn one_broker_may_be_unavailable() {
        let pdb = build_pdb(&cluster(3));
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()["app.kubernetes.io/component"],
            "broker"
        );
    }
}
