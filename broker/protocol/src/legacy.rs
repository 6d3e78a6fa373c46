//! Old request versions the `kafka-protocol` codec no longer reads, served by translation.
//!
//! Kafka 4 dropped a set of old versions (KIP-896), and so did the codec. Some clients still
//! send two of them whatever the broker advertises: Sarama (the pure-Go client, e.g.
//! Debian's 1.22 with `Version = V2_1_0_0`) commits offsets with **OffsetCommit v1** unless a
//! retention is configured, and its admin client's `ListTopics` and `DescribeConfig` send
//! **DescribeConfigs v0**. Both differ from the next version only slightly, so they are
//! served as that version:
//!
//! | request | read as | differences |
//! |---|---|---|
//! | OffsetCommit v1 | v2 | v1 has a per-partition `commit_timestamp` (ignored, as Kafka ignores it since 2.1) and no `retention_time_ms` (-1: the broker's retention) |
//! | DescribeConfigs v0 | v1 | v0 has no `include_synonyms` (false) |
//!
//! The responses: OffsetCommit v1's is byte for byte v2's (both are `topics` only; v3 adds
//! throttle_time_ms), so it is encoded as v2. DescribeConfigs v0's has `is_default`
//! (a boolean) where v1 has `config_source`, and no synonyms; [`encode_describe_configs_v0`]
//! writes it.
//!
//! OffsetCommit v1 is read with [`crate::reader`], which checks every length and count
//! against the bytes present, as the generated layouts' checks ([`crate::schema`]) do for
//! the codec's versions.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, OffsetCommitRequest, RequestKind,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::reader::{ReadError, Reader};
use crate::response::EncodeError;

/// `(api, legacy version, version it is read as)`.
pub const LEGACY_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::OffsetCommit, 1, 2),
    (ApiKey::DescribeConfigs, 0, 1),
];

/// The version `version` of `api` is read and handled as: itself, or for a legacy version
/// the next version up (see the module docs).
pub fn effective_version(api: ApiKey, version: i16) -> i16 {
    LEGACY_VERSIONS
        .iter()
        .find(|&&(a, v, _)| a == api && v == version)
        .map_or(version, |&(_, _, as_version)| as_version)
}

/// Whether `version` of `api` is one served here.
pub fn is_legacy(api: ApiKey, version: i16) -> bool {
    effective_version(api, version) != version
}

/// The lowest legacy version of `api`, if it has one.
pub fn min_version(api: ApiKey) -> Option<i16> {
    LEGACY_VERSIONS
        .iter()
        .filter(|&&(a, _, _)| a == api)
        .map(|&(_, v, _)| v)
        .min()
}

/// Decodes the body of a legacy request as the message of its effective version.
///
/// # Errors
/// Why the body is malformed (it ends early, or a length or count is negative or runs past
/// the end).
pub fn decode(api: ApiKey, version: i16, body: &[u8]) -> Result<RequestKind, String> {
    match (api, version) {
        (ApiKey::OffsetCommit, 1) => decode_offset_commit_v1(body).map(RequestKind::OffsetCommit),
        (ApiKey::DescribeConfigs, 0) => {
            // v0 is v1 without the trailing include_synonyms boolean.
            let mut v1 = BytesMut::with_capacity(body.len() + 1);
            v1.put_slice(body);
            v1.put_u8(0);
            let v1 = v1.freeze();
            crate::schema::check(
                &crate::schema::tables::describe_configs_request::DESCRIBE_CONFIGS_REQUEST,
                1,
                &v1,
            )
            .map_err(|e| e.to_string())?;
            DescribeConfigsRequest::decode(&mut v1.clone(), 1)
                .map(RequestKind::DescribeConfigs)
                .map_err(|e| format!("{e:#}"))
        }
        _ => Err(format!("{api:?} v{version} is not a legacy version")),
    }
}

/// OffsetCommit v1: group_id, generation_id, member_id, topics [name, partitions
/// [partition_index, committed_offset, commit_timestamp, committed_metadata]].
fn decode_offset_commit_v1(body: &[u8]) -> Result<OffsetCommitRequest, String> {
    let mut r = Reader::new(body);
    let field = |name: &'static str| move |e: ReadError| format!("{name}: {e}");
    let string = |r: &mut Reader<'_>, name: &'static str| -> Result<StrBytes, String> {
        let s = r.nullable_str().map_err(field(name))?;
        let s = s.ok_or_else(|| format!("{name} is null"))?;
        Ok(StrBytes::from_string(s.to_string()))
    };
    let group_id = string(&mut r, "group_id")?;
    let generation = r.i32().map_err(field("generation_id"))?;
    let member_id = string(&mut r, "member_id")?;
    // A topic is at least a name length and a partition count.
    let topic_count = r.count(2 + 4).map_err(field("topics"))?;
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        let name = string(&mut r, "topic name")?;
        // A partition is 4 + 8 + 8 bytes and a metadata length.
        let partition_count = r.count(4 + 8 + 8 + 2).map_err(field("partitions"))?;
        let mut partitions = Vec::new();
        for _ in 0..partition_count {
            let partition_index = r.i32().map_err(field("partition_index"))?;
            let committed_offset = r.i64().map_err(field("committed_offset"))?;
            let _commit_timestamp = r.i64().map_err(field("commit_timestamp"))?;
            let committed_metadata = r
                .nullable_str()
                .map_err(field("committed_metadata"))?
                .map(|m| StrBytes::from_string(m.to_string()));
            partitions.push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(partition_index)
                    .with_committed_offset(committed_offset)
                    .with_committed_metadata(committed_metadata),
            );
        }
        topics.push(
            OffsetCommitRequestTopic::default()
                .with_name(name.into())
                .with_partitions(partitions),
        );
    }
    Ok(OffsetCommitRequest::default()
        .with_group_id(group_id.into())
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member_id)
        .with_retention_time_ms(-1)
        .with_topics(topics))
}

/// Kafka's `ConfigSource.DEFAULT_CONFIG`: the value is the broker's default.
const DEFAULT_CONFIG: i8 = 5;

/// Encodes a DescribeConfigs **v0** response frame: throttle_time_ms, results [error_code,
/// error_message, resource_type, resource_name, configs [name, value, read_only,
/// is_default, is_sensitive]]. `is_default` is v1's `config_source == DEFAULT_CONFIG`.
///
/// # Errors
/// If a string is longer than a v0 string can be.
pub fn encode_describe_configs_v0(
    correlation_id: i32,
    response: &DescribeConfigsResponse,
) -> Result<Bytes, EncodeError> {
    let err = |reason: String| EncodeError {
        message: "DescribeConfigsResponse",
        version: 0,
        reason,
    };
    let mut body = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut body, 0)
        .map_err(|e| err(format!("{e:#}")))?;
    body.put_i32(response.throttle_time_ms);
    put_count(&mut body, response.results.len()).map_err(err)?;
    for result in &response.results {
        body.put_i16(result.error_code);
        put_string(&mut body, result.error_message.as_deref()).map_err(err)?;
        body.put_i8(result.resource_type);
        put_string(&mut body, Some(&result.resource_name)).map_err(err)?;
        put_count(&mut body, result.configs.len()).map_err(err)?;
        for config in &result.configs {
            put_string(&mut body, Some(&config.name)).map_err(err)?;
            put_string(&mut body, config.value.as_deref()).map_err(err)?;
            body.put_u8(u8::from(config.read_only));
            body.put_u8(u8::from(config.config_source == DEFAULT_CONFIG));
            body.put_u8(u8::from(config.is_sensitive));
        }
    }
    let mut frame = BytesMut::with_capacity(4 + body.len());
    let size = i32::try_from(body.len()).map_err(|_| err("response too large".into()))?;
    frame.put_i32(size);
    frame.put_slice(&body);
    Ok(frame.freeze())
}

fn put_string(out: &mut BytesMut, s: Option<&str>) -> Result<(), String> {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            let len = i16::try_from(s.len()).map_err(|_| format!("string of {} bytes", s.len()))?;
            out.put_i16(len);
            out.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

fn put_count(out: &mut BytesMut, n: usize) -> Result<(), String> {
    out.put_i32(i32::try_from(n).map_err(|_| format!("array of {n} elements"))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };

    /// OffsetCommit v1 as Sarama 1.22 encodes it: one topic, two partitions.
    fn offset_commit_v1() -> Vec<u8> {
        let mut b = BytesMut::new();
        let s = |b: &mut BytesMut, s: &str| {
            b.put_i16(s.len() as i16);
            b.put_slice(s.as_bytes());
        };
        s(&mut b, "group-1");
        b.put_i32(7); // generation
        s(&mut b, "member-a");
        b.put_i32(1);
        s(&mut b, "orders");
        b.put_i32(2);
        for (p, offset) in [(0, 42i64), (3, 9)] {
            b.put_i32(p);
            b.put_i64(offset);
            b.put_i64(-1); // commit_timestamp
            if p == 0 {
                s(&mut b, "meta");
            } else {
                b.put_i16(-1);
            }
        }
        b.to_vec()
    }

    #[test]
    fn offset_commit_v1_reads_as_v2() {
        let RequestKind::OffsetCommit(r) =
            decode(ApiKey::OffsetCommit, 1, &offset_commit_v1()).unwrap()
        else {
            panic!("not an OffsetCommit");
        };
        assert_eq!(&*r.group_id, "group-1");
        assert_eq!(
            (r.generation_id_or_member_epoch, &*r.member_id),
            (7, "member-a")
        );
        assert_eq!(r.retention_time_ms, -1);
        assert_eq!(r.topics.len(), 1);
        assert_eq!(&*r.topics[0].name, "orders");
        let parts: Vec<(i32, i64, Option<&str>)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_metadata.as_deref(),
                )
            })
            .collect();
        assert_eq!(parts, [(0, 42, Some("meta")), (3, 9, None)]);
    }

    #[test]
    fn every_truncation_and_hostile_count_is_an_error_not_a_panic() {
        let full = offset_commit_v1();
        for cut in 0..full.len() {
            assert!(
                decode(ApiKey::OffsetCommit, 1, &full[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // The topic count (after group, generation and member) set to i32::MAX and -1.
        let at = 2 + 7 + 4 + 2 + 8;
        for count in [i32::MAX, -1] {
            let mut b = full.clone();
            b[at..at + 4].copy_from_slice(&count.to_be_bytes());
            let e = decode(ApiKey::OffsetCommit, 1, &b).unwrap_err();
            assert!(e.contains("topics"), "{e}");
        }
    }

    #[test]
    fn describe_configs_v0_reads_as_v1_without_synonyms() {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let v1 = DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("orders"))
                .with_configuration_keys(None)])
            .with_include_synonyms(false);
        let mut bytes = BytesMut::new();
        v1.encode(&mut bytes, 1).unwrap();
        // v0 is the same bytes minus the trailing boolean.
        let v0 = &bytes[..bytes.len() - 1];
        let RequestKind::DescribeConfigs(r) = decode(ApiKey::DescribeConfigs, 0, v0).unwrap()
        else {
            panic!("not a DescribeConfigs");
        };
        assert_eq!(r, v1);
        assert!(decode(ApiKey::DescribeConfigs, 0, &v0[..v0.len() - 3]).is_err());
    }

    #[test]
    fn describe_configs_v0_response_has_is_default() {
        let response = DescribeConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(vec![DescribeConfigsResult::default()
                .with_error_message(None)
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str("a"))
                        .with_value(Some(StrBytes::from_static_str("1")))
                        .with_config_source(DEFAULT_CONFIG),
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str("b"))
                        .with_value(None)
                        .with_config_source(1)
                        .with_is_sensitive(true),
                ])]);
        let frame = encode_describe_configs_v0(9, &response).unwrap();
        let expected: Vec<u8> = [
            &[0, 0, 0, 0][..],   // size, patched below
            &9i32.to_be_bytes(), // correlation id
            &0i32.to_be_bytes(), // throttle
            &1i32.to_be_bytes(), // one result
            &0i16.to_be_bytes(), // error code
            &(-1i16).to_be_bytes(),
            &[2],
            &1i16.to_be_bytes(),
            b"t",
            &2i32.to_be_bytes(),
            &1i16.to_be_bytes(),
            b"a",
            &1i16.to_be_bytes(),
            b"1",
            &[0, 1, 0], // read_only, is_default, is_sensitive
            &1i16.to_be_bytes(),
            b"b",
            &(-1i16).to_be_bytes(),
            &[0, 0, 1],
        ]
        .concat();
        let mut expected = expected;
        let size = (expected.len() - 4) as i32;
        expected[..4].copy_from_slice(&size.to_be_bytes());
        assert_eq!(&frame[..], &expected[..]);
    }
}
