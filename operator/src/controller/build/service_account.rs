use k8s_openapi::api::core::v1::ServiceAccount;

use super::{owned_meta, Names};
use crate::crd::KafkaCluster;

/// The brokers' ServiceAccount. Brokers never call the Kubernetes API, so no token is mounted.
pub fn build_service_account(kc: &KafkaCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(kc, Names::of(kc).service_account()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;

    #[test]
    fn no_token_is_mounted() {
        let sa = build_service_account(&cluster(1));
        assert_eq!(sa.metadata.name.as_deref(), Some("events-broker"));
        assert_eq!(sa.automount_service_account_token, Some(false));
    }
}
