//! Request header decoding.
//!
//! A request frame is `[api_key: i16][api_version: i16][correlation_id: i32][client_id]
//! [tagged fields, header v2 only][body]`. The first eight bytes have the same layout in every
//! header version, which is what lets a broker answer a request whose version it doesn't
//! know: ApiVersions with an unsupported version must still get an UNSUPPORTED_VERSION
//! answer (in version 0) so the client can fall back.

use std::ops::Range;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, RequestKind};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::Decodable;

use crate::{schema, versions};

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("request frame of {len} bytes is shorter than a request header")]
    TooShort { len: usize },
    #[error("unknown API key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("{api:?} version {version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error("malformed {api:?} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        reason: String,
    },
}

/// A request whose header has been decoded; the body is still bytes.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub api: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// The fixed first eight bytes of any request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the fixed part of a request header without consuming the frame.
pub fn peek_prefix(frame: &[u8]) -> Result<HeaderPrefix, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort { len: frame.len() });
    }
    let mut b = &frame[..8];
    Ok(HeaderPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes the request header of `frame` and checks the API version is served.
pub fn decode_header(frame: Bytes) -> Result<RawRequest, DecodeError> {
    let prefix = peek_prefix(&frame)?;
    let api = ApiKey::try_from(prefix.api_key).map_err(|()| DecodeError::UnknownApiKey {
        api_key: prefix.api_key,
        correlation_id: prefix.correlation_id,
    })?;
    if !versions::is_supported(api, prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api,
            version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        });
    }
    let header_version = api.request_header_version(prefix.api_version);
    let malformed = |reason: String| DecodeError::Malformed {
        api,
        version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        reason,
    };
    schema::check(
        &schema::tables::request_header::REQUEST_HEADER,
        header_version,
        &frame,
    )
    .map_err(|e| malformed(format!("header: {e}")))?;
    let mut rest = SharingLargeFields(frame);
    let header = RequestHeader::decode(&mut rest, header_version)
        .map_err(|e| malformed(format!("header: {e:#}")))?;
    Ok(RawRequest {
        api,
        header,
        body: rest.0,
    })
}

/// Byte fields of at least this many bytes keep sharing the request frame when the header
/// or a Produce body is decoded; smaller ones are copied out of it.
pub const SHARED_FIELD_MIN: usize = 1024;

/// A frame being decoded (the header, or a Produce body), whose small byte fields (client
/// id, topic names, tagged fields) are copied out and whose large ones (record sets) stay
/// slices of it.
///
/// Why: once the decoded request is all that is left of the frame (the caller drops
/// [`RawRequest::body`]), a Produce request's records are then the only owner of the frame's
/// allocation, and the broker can turn them back into a `BytesMut` (`BytesMut::from(Bytes)`
/// reuses a uniquely owned allocation) to patch batch headers in place instead of copying
/// every produced byte. The copies are a few short strings per request.
struct SharingLargeFields(Bytes);

impl Buf for SharingLargeFields {
    fn remaining(&self) -> usize {
        self.0.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.0.chunk()
    }

    fn advance(&mut self, cnt: usize) {
        self.0.advance(cnt);
    }
}

impl ByteBuf for SharingLargeFields {
    fn peek_bytes(&mut self, r: Range<usize>) -> Bytes {
        Bytes::copy_from_slice(&self.0[r])
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        if size < SHARED_FIELD_MIN {
            let small = Bytes::copy_from_slice(&self.0[..size]);
            self.0.advance(size);
            small
        } else {
            self.0.split_to(size)
        }
    }
}

impl RawRequest {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// Decodes the body as the message type of this request's API (a
    /// [`legacy`](crate::legacy) version as the version it is read as, see
    /// [`legacy::effective_version`](crate::legacy::effective_version)).
    ///
    /// Bytes left after the body are ignored, as Kafka does: some clients send them
    /// (librdkafka 2.x appends stray bytes to Metadata v12+ "all topics" requests), and those
    /// clients work against Kafka only because it reads the body and stops there.
    ///
    /// Every length and count in the body is checked against the bytes present first
    /// ([`schema::check`]), so a hostile prefix is a [`DecodeError::Malformed`], never an
    /// allocation the frame can't pay for.
    ///
    /// A Produce request's records share the frame if they are [`SHARED_FIELD_MIN`] bytes or
    /// more, and everything else in it is a copy (see [`SharingLargeFields`]): with `self`
    /// dropped, such records are the frame's only owner unless the request has several.
    pub fn decode_body(&self) -> Result<RequestKind, DecodeError> {
        let malformed = |reason: String| DecodeError::Malformed {
            api: self.api,
            version: self.version(),
            correlation_id: self.correlation_id(),
            reason,
        };
        if crate::legacy::is_legacy(self.api, self.version()) {
            return crate::legacy::decode(self.api, self.version(), &self.body).map_err(malformed);
        }
        let layout = schema::request_layout(self.api)
            .ok_or_else(|| malformed(schema::Reason::NoLayout.to_string()))?;
        schema::check(layout, self.version(), &self.body).map_err(|e| malformed(e.to_string()))?;
        let mut body = self.body.clone();
        match self.api {
            ApiKey::Produce => {
                ProduceRequest::decode(&mut SharingLargeFields(body), self.version())
                    .map(RequestKind::Produce)
            }
            api => RequestKind::decode(api, &mut body, self.version()),
        }
        .map_err(|e| malformed(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn produce_frame(version: i16, request: &ProduceRequest) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(version)
            .with_correlation_id(3)
            .with_client_id(Some(StrBytes::from_static_str("producer-1")));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, ApiKey::Produce.request_header_version(version))
            .unwrap();
        request.encode(&mut frame, version).unwrap();
        frame.freeze()
    }

    fn produce(partitions: &[(&str, usize)]) -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(
                partitions
                    .iter()
                    .enumerate()
                    .map(|(i, &(topic, len))| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(topic.into())))
                            .with_partition_data(vec![PartitionProduceData::default()
                                .with_index(i as i32)
                                .with_records(Some(Bytes::from(vec![i as u8 + 1; len])))])
                    })
                    .collect(),
            )
    }

    fn records(request: RequestKind) -> Vec<Bytes> {
        let RequestKind::Produce(r) = request else {
            panic!("not a Produce request");
        };
        r.topic_data
            .into_iter()
            .flat_map(|t| t.partition_data)
            .filter_map(|p| p.records)
            .collect()
    }

    /// What the produce path relies on to patch batch headers without copying the payload.
    #[test]
    fn large_produce_records_become_the_frames_only_owner() {
        for version in [3, 7, 9, 11] {
            let request = produce(&[("orders", 100_000)]);
            let raw = decode_header(produce_frame(version, &request)).unwrap();
            let body = raw.decode_body().unwrap();
            drop(raw);
            let [records] = <[Bytes; 1]>::try_from(records(body)).unwrap();
            assert!(records.is_unique(), "v{version}");
            let at = records.as_ptr();
            let owned = BytesMut::from(records);
            assert_eq!(owned.as_ptr(), at, "v{version}: reused, not copied");
            assert_eq!(&owned[..], &[1; 100_000][..]);
        }
    }

    #[test]
    fn small_fields_are_copied_and_the_request_decodes_the_same() {
        let request = produce(&[
            ("a", 10),
            ("b", SHARED_FIELD_MIN - 1),
            ("c", SHARED_FIELD_MIN),
            ("d", 5000),
        ]);
        for version in [3, 8, 9, 11] {
            let frame = produce_frame(version, &request);
            let raw = decode_header(frame.clone()).unwrap();
            assert_eq!(raw.header.client_id.as_deref(), Some("producer-1"));
            let shared = raw.decode_body().unwrap();
            // What plain kafka-protocol decoding of the same bytes gives.
            let mut body = raw.body.clone();
            let plain = RequestKind::decode(ApiKey::Produce, &mut body, version).unwrap();
            assert_eq!(shared, plain, "v{version}");
            drop(raw);
            let records = records(shared);
            let inside = |b: &Bytes| frame.as_ptr_range().contains(&b.as_ptr());
            assert_eq!(
                records.iter().map(inside).collect::<Vec<_>>(),
                [false, false, true, true],
                "v{version}: only fields of SHARED_FIELD_MIN bytes or more share the frame"
            );
        }
    }

    #[test]
    fn a_truncated_produce_body_is_malformed() {
        let frame = produce_frame(9, &produce(&[("t", 2000)]));
        let mut cut = BytesMut::from(&frame[..frame.len() - 1500]);
        cut.put_u8(0);
        let raw = decode_header(cut.freeze()).unwrap();
        assert!(matches!(
            raw.decode_body(),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
