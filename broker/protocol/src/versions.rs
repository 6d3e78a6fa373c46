//! The API versions this broker serves, as advertised in ApiVersions.
//!
//! Each range is our own cap intersected with what the `kafka_protocol` crate can decode.
//! Caps are chosen so every field of every version in range is handled by the broker; raising
//! a cap means reading the new version's schema and handling its new fields.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// `(api, min, max)` before intersecting with the codec's range.
const CAPS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 0, 16),
    (ApiKey::ListOffsets, 0, 8),
    // v3 adds the replica id (followers), v4 is flexible.
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 4),
    // Consumer groups (classic protocol). FindCoordinator v4+ batches keys; v6 adds share
    // groups (not served). OffsetCommit v9 / OffsetFetch v9 are KIP-848 member epochs.
    // DescribeGroups v6 and ListGroups v5 add group types / error messages.
    (ApiKey::FindCoordinator, 0, 5),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 0, 8),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // Cluster administration. DescribeQuorum v2 adds node listeners and directory ids;
    // AlterPartitionReassignments v1 adds allow_replication_factor_change.
    (ApiKey::DescribeQuorum, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    // Security. SaslHandshake v0 is followed by raw SASL tokens (no Kafka header), v1 by
    // SaslAuthenticate; SaslAuthenticate v1 adds session_lifetime_ms (KIP-368).
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // ACLs (v1 added pattern types; v2 is flexible).
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // Client quotas (v1 is flexible).
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The version range served for `api`, or `None` if the broker doesn't serve that API.
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    CAPS.iter()
        .find(|(key, _, _)| *key == api)
        .and_then(|&(_, min, max)| {
            let range = VersionRange { min, max }.intersect(&api.valid_versions());
            (!range.is_empty()).then_some(range)
        })
}

/// Every served API with its version range, in API key order.
pub fn all_supported() -> Vec<(ApiKey, VersionRange)> {
    let mut apis: Vec<_> = CAPS
        .iter()
        .filter_map(|&(key, _, _)| supported(key).map(|range| (key, range)))
        .collect();
    apis.sort_by_key(|(key, _)| *key as i16);
    apis
}

/// What ApiVersions advertises: [`all_supported`] with each range extended down to the
/// API's [`legacy`](crate::legacy) versions, which are read as a newer one.
pub fn advertised() -> Vec<(ApiKey, VersionRange)> {
    all_supported()
        .into_iter()
        .map(|(api, range)| {
            let min = crate::legacy::min_version(api).map_or(range.min, |m| m.min(range.min));
            (api, VersionRange { min, ..range })
        })
        .collect()
}

/// Whether `version` of `api` is served (by the codec or as a legacy version).
pub fn is_supported(api: ApiKey, version: i16) -> bool {
    supported(api).is_some_and(|r| r.min <= version && version <= r.max)
        || crate::legacy::is_legacy(api, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_within_the_codec() {
        for (api, range) in all_supported() {
            let codec = api.valid_versions();
            assert!(range.min >= codec.min && range.max <= codec.max, "{api:?}");
        }
    }

    #[test]
    fn versions_that_kafka_2_1_and_later_clients_negotiate_are_served() {
        // librdkafka 2.0 asks for Produce v7, Fetch v11, Metadata v9/12; Kafka 2.1 Java
        // clients for Produce v7 and Fetch v10.
        assert!(is_supported(ApiKey::Produce, 7));
        assert!(is_supported(ApiKey::Fetch, 10) && is_supported(ApiKey::Fetch, 11));
        assert!(is_supported(ApiKey::Fetch, 13), "topic-id fetches");
        assert!(is_supported(ApiKey::Metadata, 1) && is_supported(ApiKey::Metadata, 12));
        assert!(is_supported(ApiKey::ApiVersions, 0) && is_supported(ApiKey::ApiVersions, 3));
        assert!(
            !is_supported(ApiKey::Produce, 2),
            "magic v0/v1 produce is not served"
        );
        // Sarama 1.22 sends these whatever ApiVersions says.
        assert!(is_supported(ApiKey::OffsetCommit, 1) && is_supported(ApiKey::DescribeConfigs, 0));
        assert!(!is_supported(ApiKey::OffsetCommit, 0));
        let advertised = advertised();
        let range = |api| advertised.iter().find(|(a, _)| *a == api).unwrap().1;
        assert_eq!(range(ApiKey::OffsetCommit).min, 1);
        assert_eq!(range(ApiKey::DescribeConfigs).min, 0);
    }

    #[test]
    fn every_served_api_has_a_request_layout_covering_its_versions() {
        for (api, range) in all_supported() {
            let layout = crate::schema::request_layout(api)
                .unwrap_or_else(|| panic!("{api:?} has no layout"));
            assert!(
                layout.versions.0 <= range.min && range.max <= layout.versions.1,
                "{api:?} served {}..={} but the layout covers {:?}",
                range.min,
                range.max,
                layout.versions
            );
            assert!(crate::schema::response_layout(api).is_some());
        }
    }
}
