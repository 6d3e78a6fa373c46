//! Response encoding: `[size: i32][correlation_id: i32][tagged fields, header v1 only][body]`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
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

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse_frame;
    use crate::request::decode_header;
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, RequestHeader,
        RequestKind,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;

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
}
