//! Response encoding: `[size: i32][correlation_id: i32][tagged fields, header v1 only][body]`.
//!
//! A response leaves as a [`ResponseFrame`]: one piece for most, and for Fetch the encoded
//! fields with the record bytes between them as pieces of their own
//! ([`encode_fetch_response`]), so fetched records are never copied into a response buffer.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchResponse, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// A response body could not be encoded in the requested version. This is a broker bug (a
/// handler set a field that the version doesn't have), never the client's fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {message} v{version} response: {reason}")]
pub struct EncodeError {
    pub message: &'static str,
    pub version: i16,
    pub reason: String,
}

/// Encodes a complete, length-prefixed response frame.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let err = |reason: String| EncodeError {
        message: short_type_name::<R>(),
        version,
        reason,
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = R::header_version(version);
    let size = header
        .compute_size(header_version)
        .map_err(|e| err(format!("{e:#}")))?
        + body
            .compute_size(version)
            .map_err(|e| err(format!("{e:#}")))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| err(format!("{e:#}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| err(format!("{e:#}")))?;
    Ok(buf.freeze())
}

/// Encodes a Fetch response frame, byte for byte what [`encode_response`] produces, without
/// copying the record bytes: each partition's `records` becomes a piece of the frame of its
/// own (shared with whoever else holds those `Bytes`, the log read that produced them).
///
/// The encoder stays kafka-protocol's: the response is encoded with every non-null `records`
/// replaced by a same-width placeholder, twice: once empty (`00 00 00 00` up to v11, varint
/// `01` from v12), once null (`ff ff ff ff` / `00`). Only the placeholders differ between the
/// two encodings, so the differing positions are the records fields, in partition order; the
/// frame is the first encoding with each placeholder replaced by the real length prefix and
/// followed by the records. Field order, versions and tagged fields (the partitions' ones
/// after their records, the node endpoints after the last partition) need no knowledge here.
///
/// # Errors
/// As [`encode_response`]; also if the two encodings disagree anywhere else (a bug).
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    mut body: FetchResponse,
) -> Result<ResponseFrame, EncodeError> {
    let err = |reason: String| EncodeError {
        message: "FetchResponse",
        version,
        reason,
    };
    // Taking leaves `Some(empty)`: the first placeholder.
    let records: Vec<Bytes> = partitions(&mut body)
        .filter_map(|p| p.records.as_mut().map(std::mem::take))
        .collect();
    let total: usize = records.iter().map(Bytes::len).sum();
    if total == 0 {
        // Nothing worth sparing (a long poll that found no data): encode it as it is.
        return encode_response(correlation_id, version, &body).map(ResponseFrame::from);
    }
    let empty = encode_response(correlation_id, version, &body)?;
    for p in partitions(&mut body) {
        p.records = None;
    }
    let null = encode_response(correlation_id, version, &body)?;
    if empty.len() != null.len() {
        return Err(err("placeholders of different widths".into()));
    }
    let flexible = version >= 12;
    let width = if flexible { 1 } else { 4 };

    let size = empty.len() - 4
        + total
        + records
            .iter()
            .map(|r| length_prefix_size(flexible, r.len()))
            .sum::<usize>()
        - width * records.len();
    let size = i32::try_from(size).map_err(|_| err(format!("{size} bytes is too large")))?;
    let mut frame = ResponseFrame::default();
    // The encoded fields between two records are copied (a few dozen bytes per partition),
    // so each partition costs two pieces, not three.
    let mut fields = BytesMut::with_capacity(empty.len() + 5 * records.len());
    fields.put_i32(size);
    let mut at = 4;
    for r in records {
        let Some(found) = empty[at..]
            .iter()
            .zip(&null[at..])
            .position(|(a, b)| a != b)
        else {
            return Err(err(
                "fewer records fields than partitions with records".into()
            ));
        };
        let field = at + found;
        fields.extend_from_slice(&empty[at..field]);
        put_length_prefix(&mut fields, flexible, r.len());
        frame.push(fields.split().freeze());
        frame.push(r);
        at = field + width;
    }
    if empty[at..] != null[at..] {
        return Err(err(
            "more records fields than partitions with records".into()
        ));
    }
    fields.extend_from_slice(&empty[at..]);
    frame.push(fields.freeze());
    Ok(frame)
}

fn partitions(body: &mut FetchResponse) -> impl Iterator<Item = &mut PartitionData> {
    body.responses.iter_mut().flat_map(|t| &mut t.partitions)
}

/// Writes a `len`-byte records field's length prefix: INT32 up to v11 (BYTES), an unsigned
/// varint of `len + 1` from v12 (COMPACT_BYTES). `len` fits in an i32: the frame's size does.
fn put_length_prefix(out: &mut BytesMut, flexible: bool, len: usize) {
    if !flexible {
        out.put_i32(len as i32);
        return;
    }
    let mut v = len as u64 + 1;
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Bytes [`put_length_prefix`] writes.
fn length_prefix_size(flexible: bool, len: usize) -> usize {
    if !flexible {
        return 4;
    }
    let mut v = len as u64 + 1;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A response frame as the pieces to write, in order (the length prefix included).
///
/// Most responses are one piece. A Fetch response ([`encode_fetch_response`]) is its encoded
/// fields with each partition's record bytes as pieces of their own: the `Bytes` the log read
/// returned, written from where they are rather than copied into the frame. It implements
/// [`Buf`], so a writer sends it with vectored writes (tokio's `write_all_buf`).
///
/// Invariant: no piece is empty, so [`Buf::chunk`] is empty only at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFrame {
    pieces: VecDeque<Bytes>,
    remaining: usize,
}

impl ResponseFrame {
    /// Appends `piece` (nothing if it is empty).
    pub fn push(&mut self, piece: Bytes) {
        if !piece.is_empty() {
            self.remaining += piece.len();
            self.pieces.push_back(piece);
        }
    }

    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The pieces not yet written, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        self.pieces.iter()
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(bytes: Bytes) -> Self {
        let mut frame = ResponseFrame::default();
        frame.push(bytes);
        frame
    }
}

impl Buf for ResponseFrame {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.pieces.front().map_or(&[], |p| &p[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(
            cnt <= self.remaining,
            "advance({cnt}) past the end of a {}-byte frame",
            self.remaining
        );
        self.remaining -= cnt;
        while cnt > 0 {
            let front = self
                .pieces
                .front_mut()
                .expect("remaining counts the pieces");
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.pieces.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, piece) in dst.iter_mut().zip(&self.pieces) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        n
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse_frame;
    use crate::request::decode_header;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
        SnapshotId,
    };
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, RequestHeader,
        RequestKind,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn request_frame<R: Encodable>(
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &R,
    ) -> BytesMut {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut inner = BytesMut::new();
        header
            .encode(&mut inner, api.request_header_version(version))
            .unwrap();
        body.encode(&mut inner, version).unwrap();
        let mut framed = BytesMut::new();
        framed.put_i32(inner.len() as i32);
        framed.extend_from_slice(&inner);
        framed
    }

    #[test]
    fn api_versions_response_uses_header_v0_even_when_flexible() {
        let body = ApiVersionsResponse::default();
        let frame = encode_response(7, 3, &body).unwrap();
        let mut rest = frame.slice(4..);
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            rest.len()
        );
        assert_eq!(i32::from_be_bytes(rest[..4].try_into().unwrap()), 7);
        rest = rest.slice(4..);
        assert_eq!(ApiVersionsResponse::decode(&mut rest, 3).unwrap(), body);
    }

    proptest! {
        #[test]
        fn metadata_requests_round_trip_through_frame_and_header(
            version in 0i16..=12, correlation_id in any::<i32>(), topics in proptest::collection::vec("[a-z]{1,12}", 0..5)
        ) {
            use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
            let mut req = MetadataRequest::default().with_topics(Some(topics.iter().map(|t| {
                MetadataRequestTopic::default().with_name(Some(StrBytes::from_string(t.clone()).into()))
            }).collect()));
            if version >= 4 { req.allow_auto_topic_creation = false; }
            let mut buf = request_frame(ApiKey::Metadata, version, correlation_id, &req);
            let frame = parse_frame(&mut buf, 1 << 20).unwrap().unwrap();
            let raw = decode_header(frame).unwrap();
            prop_assert_eq!(raw.correlation_id(), correlation_id);
            prop_assert_eq!(raw.version(), version);
            match raw.decode_body().unwrap() {
                RequestKind::Metadata(decoded) => prop_assert_eq!(decoded, req),
                other => prop_assert!(false, "decoded as {:?}", other),
            }
        }
    }

    #[test]
    fn unknown_api_and_unsupported_version_keep_the_correlation_id() {
        let mut buf = request_frame(ApiKey::ApiVersions, 0, 42, &ApiVersionsRequest::default());
        buf[4..6].copy_from_slice(&999i16.to_be_bytes());
        let frame = parse_frame(&mut buf, 1 << 20).unwrap().unwrap();
        match decode_header(frame) {
            Err(crate::request::DecodeError::UnknownApiKey {
                api_key: 999,
                correlation_id: 42,
            }) => {}
            other => panic!("{other:?}"),
        }
        let mut buf = request_frame(ApiKey::ApiVersions, 0, 43, &ApiVersionsRequest::default());
        buf[6..8].copy_from_slice(&77i16.to_be_bytes());
        let frame = parse_frame(&mut buf, 1 << 20).unwrap().unwrap();
        match decode_header(frame) {
            Err(crate::request::DecodeError::UnsupportedVersion {
                version: 77,
                correlation_id: 43,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trailing_bytes_after_the_body_are_ignored_like_kafka() {
        // Metadata v12 "all topics" exactly as librdkafka 2.x sends it: three stray bytes
        // follow the null topic array.
        let hex = "0003000c00000003000772646b61666b610000000000010000";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let raw = decode_header(Bytes::from(bytes)).unwrap();
        match raw.decode_body().unwrap() {
            RequestKind::Metadata(m) => assert_eq!(m.topics, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_body_is_malformed_not_a_panic() {
        let req = MetadataRequest::default().with_topics(None);
        let mut buf = request_frame(ApiKey::Metadata, 9, 5, &req);
        let len = buf.len();
        buf.truncate(len - 1);
        let new_len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&new_len.to_be_bytes());
        let frame = parse_frame(&mut buf, 1 << 20).unwrap().unwrap();
        let raw = decode_header(frame).unwrap();
        assert!(matches!(
            raw.decode_body(),
            Err(crate::request::DecodeError::Malformed { .. })
        ));
    }

    // --- Fetch responses encoded around their records -------------------------------------

    fn concat(frame: &ResponseFrame) -> Vec<u8> {
        frame.pieces().flat_map(|p| p.iter().copied()).collect()
    }

    /// Unknown tagged fields, with tags above the message's known ones.
    fn tagged(version: i16) -> impl Strategy<Value = BTreeMap<i32, Bytes>> {
        let max = if version >= 12 { 2 } else { 0 };
        proptest::collection::btree_map(
            10i32..20,
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(Bytes::from),
            0..=max,
        )
    }

    /// Records as the log hands them out: null, empty, or bytes (lengths across the one- and
    /// two-byte compact length prefixes).
    fn records() -> impl Strategy<Value = Option<Bytes>> {
        prop_oneof![
            Just(None),
            Just(Some(Bytes::new())),
            proptest::collection::vec(any::<u8>(), 1..300).prop_map(|v| Some(Bytes::from(v))),
        ]
    }

    fn partition(version: i16) -> impl Strategy<Value = PartitionData> {
        let flexible = version >= 12;
        (
            (
                any::<i32>(),
                any::<i16>(),
                any::<i64>(),
                any::<i64>(),
                any::<i64>(),
            ),
            proptest::option::of(proptest::collection::vec(
                (any::<i64>(), any::<i64>(), tagged(version)),
                0..3,
            )),
            any::<i32>(),
            records(),
            (
                proptest::option::of((any::<i32>(), any::<i64>())),
                proptest::option::of((any::<i32>(), any::<i32>())),
                proptest::option::of((any::<i64>(), any::<i32>())),
            ),
            tagged(version),
        )
            .prop_map(
                move |(
                    (index, error, hw, lso, start),
                    aborted,
                    replica,
                    records,
                    tags,
                    unknown,
                )| {
                    let mut p = PartitionData::default()
                        .with_partition_index(index)
                        .with_error_code(error)
                        .with_high_watermark(hw)
                        .with_last_stable_offset(lso)
                        .with_log_start_offset(if version >= 5 { start } else { -1 })
                        .with_aborted_transactions(aborted.map(|a| {
                            a.into_iter()
                                .map(|(producer, first, unknown)| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(producer))
                                        .with_first_offset(first)
                                        .with_unknown_tagged_fields(unknown)
                                })
                                .collect()
                        }))
                        .with_preferred_read_replica(BrokerId(if version >= 11 {
                            replica
                        } else {
                            -1
                        }))
                        .with_records(records);
                    if flexible {
                        let (diverging, leader, snapshot) = tags;
                        if let Some((epoch, end_offset)) = diverging {
                            p.diverging_epoch = EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset);
                        }
                        if let Some((id, epoch)) = leader {
                            p.current_leader = LeaderIdAndEpoch::default()
                                .with_leader_id(BrokerId(id))
                                .with_leader_epoch(epoch);
                        }
                        if let Some((end_offset, epoch)) = snapshot {
                            p.snapshot_id = SnapshotId::default()
                                .with_end_offset(end_offset)
                                .with_epoch(epoch);
                        }
                        p.unknown_tagged_fields = unknown;
                    }
                    p
                },
            )
    }

    fn topic(version: i16) -> impl Strategy<Value = FetchableTopicResponse> {
        (
            "[a-z]{0,12}",
            any::<u128>(),
            proptest::collection::vec(partition(version), 0..4),
            tagged(version),
        )
            .prop_map(move |(name, id, partitions, unknown)| {
                let mut t = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= 13 {
                    t.topic_id = Uuid::from_u128(id);
                } else {
                    t.topic = TopicName(StrBytes::from_string(name));
                }
                if version >= 12 {
                    t.unknown_tagged_fields = unknown;
                }
                t
            })
    }

    fn fetch_response(version: i16) -> impl Strategy<Value = FetchResponse> {
        (
            (any::<i32>(), any::<i16>(), any::<i32>()),
            proptest::collection::vec(topic(version), 0..4),
            proptest::collection::vec(
                (
                    any::<i32>(),
                    "[a-z.]{1,12}",
                    any::<u16>(),
                    proptest::option::of("[a-z]{1,5}"),
                ),
                0..3,
            ),
            tagged(version),
        )
            .prop_map(
                move |((throttle, error, session), topics, nodes, unknown)| {
                    let mut r = FetchResponse::default()
                        .with_throttle_time_ms(throttle)
                        .with_responses(topics);
                    if version >= 7 {
                        r.error_code = error;
                        r.session_id = session;
                    }
                    if version >= 16 {
                        r.node_endpoints = nodes
                            .into_iter()
                            .map(|(id, host, port, rack)| {
                                NodeEndpoint::default()
                                    .with_node_id(BrokerId(id))
                                    .with_host(StrBytes::from_string(host))
                                    .with_port(i32::from(port))
                                    .with_rack(rack.map(StrBytes::from_string))
                            })
                            .collect();
                    }
                    if version >= 12 {
                        r.unknown_tagged_fields = unknown;
                    }
                    r
                },
            )
    }

    fn served_fetch_versions() -> std::ops::RangeInclusive<i16> {
        let range = crate::versions::supported(ApiKey::Fetch).expect("Fetch is served");
        range.min..=range.max
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The pieces, concatenated, are what kafka-protocol encodes, in every served version.
        #[test]
        fn fetch_pieces_concatenate_to_kafka_protocols_encoding(
            (version, response) in served_fetch_versions().prop_flat_map(|v| (Just(v), fetch_response(v))),
            correlation_id in any::<i32>(),
        ) {
            let expected = encode_response(correlation_id, version, &response).unwrap();
            let frame = encode_fetch_response(correlation_id, version, response.clone()).unwrap();
            prop_assert_eq!(frame.len(), expected.len());
            prop_assert_eq!(concat(&frame), expected.to_vec());
            // Each non-empty records field is a piece of its own, the caller's bytes.
            let records: Vec<&Bytes> = response
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.records.as_ref())
                .filter(|r| !r.is_empty())
                .collect();
            let shared = frame
                .pieces()
                .filter(|piece| records.iter().any(|r| r.as_ptr() == piece.as_ptr()))
                .count();
            prop_assert_eq!(shared, records.len());
        }
    }

    #[test]
    fn fetch_records_are_not_copied_into_the_frame() {
        let records = Bytes::from(vec![0xff; 100_000]);
        for version in served_fetch_versions() {
            let mut topic = FetchableTopicResponse::default().with_partitions(vec![
                PartitionData::default().with_records(Some(records.clone())),
                PartitionData::default()
                    .with_partition_index(1)
                    .with_records(None),
            ]);
            if version < 13 {
                topic.topic = TopicName(StrBytes::from_static_str("t"));
            }
            let response = FetchResponse::default().with_responses(vec![topic]);
            let frame = encode_fetch_response(9, version, response.clone()).unwrap();
            let pieces: Vec<&Bytes> = frame.pieces().collect();
            assert_eq!(pieces.len(), 3, "v{version}: fields, records, fields");
            assert_eq!(pieces[1].as_ptr(), records.as_ptr(), "v{version}");
            assert!(pieces[0].len() + pieces[2].len() < 200, "v{version}");
            assert_eq!(
                concat(&frame),
                encode_response(9, version, &response).unwrap().to_vec(),
                "v{version}"
            );
        }
    }

    /// Record lengths where the compact (v12+) length prefix gains a byte.
    #[test]
    fn fetch_length_prefixes_at_varint_boundaries() {
        let lengths = [
            1, 126, 127, 128, 16_382, 16_383, 16_384, 2_097_150, 2_097_151,
        ];
        for version in served_fetch_versions() {
            let partitions = lengths
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_records(Some(Bytes::from(vec![i as u8; len])))
                })
                .collect();
            let response = FetchResponse::default().with_responses(vec![
                FetchableTopicResponse::default().with_partitions(partitions),
            ]);
            let frame = encode_fetch_response(1, version, response.clone()).unwrap();
            assert_eq!(
                concat(&frame),
                encode_response(1, version, &response).unwrap().to_vec(),
                "v{version}"
            );
        }
    }

    #[test]
    fn a_frame_is_written_across_its_pieces() {
        let mut frame = ResponseFrame::default();
        frame.push(Bytes::from_static(b"abc"));
        frame.push(Bytes::new());
        frame.push(Bytes::from_static(b"defg"));
        frame.push(Bytes::from_static(b"h"));
        assert_eq!(frame.pieces().count(), 3, "empty pieces are dropped");
        let mut slices = [std::io::IoSlice::new(&[]); 2];
        assert_eq!(frame.chunks_vectored(&mut slices), 2);
        assert_eq!((&*slices[0], &*slices[1]), (&b"abc"[..], &b"defg"[..]));
        // A partial write ends inside the second piece.
        frame.advance(5);
        assert_eq!((frame.remaining(), frame.chunk()), (3, &b"fg"[..]));
        frame.advance(2);
        assert_eq!(frame.chunk(), b"h");
        frame.advance(1);
        assert!(frame.is_empty() && frame.chunk().is_empty());
    }
}
