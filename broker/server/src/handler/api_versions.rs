//! ApiVersions (key 18): the APIs and version ranges this broker serves.

use bytes::Bytes;
use ironlog_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use ironlog_protocol::kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use ironlog_protocol::response::{encode_response, EncodeError};
use ironlog_protocol::{versions, ResponseError};

fn api_keys() -> Vec<ApiVersion> {
    versions::advertised()
        .into_iter()
        .map(|(api, range)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys())
}

/// The answer to an ApiVersions request in a version we don't serve: version 0 with
/// UNSUPPORTED_VERSION and our ranges, so the client retries with a version we do.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, EncodeError> {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    encode_response(correlation_id, 0, &body)
}
