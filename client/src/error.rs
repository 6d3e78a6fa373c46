//! The client's error type and the one table mapping Kafka error codes to names.

use std::time::Duration;

/// Everything that can go wrong in `ironlog-client`.
///
/// Per-item failures reported by a broker (one topic of a `CreateTopics`, one partition of a
/// `Produce`) are [`ClientError::Kafka`]; callers match on [`ClientError::code`] or on `name`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A bootstrap or broker address is not of the form `host:port`.
    #[error("invalid broker address {address:?}: expected host:port")]
    InvalidAddress { address: String },

    /// No TCP connection could be established.
    #[error("could not connect to broker {broker}: {source}")]
    Connect {
        broker: String,
        #[source]
        source: std::io::Error,
    },

    /// None of the bootstrap servers answered; `last` is the error from the last one tried.
    #[error("no bootstrap server reachable ({servers}); last error: {last}")]
    NoBrokerAvailable {
        servers: String,
        last: Box<ClientError>,
    },

    /// The connection broke while sending a request or reading its response.
    #[error("I/O error on connection to broker {broker} during {api}: {source}")]
    Io {
        broker: String,
        api: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The broker did not answer within the request timeout. The connection is closed.
    #[error("{api} request to broker {broker} timed out after {timeout:?}")]
    Timeout {
        broker: String,
        api: &'static str,
        timeout: Duration,
    },

    /// The broker does not offer the API in any version this client can speak.
    /// The operator relies on this to refuse actions it cannot perform safely.
    #[error("broker {broker} does not support the {api} API in any version this client speaks")]
    UnsupportedApi { api: &'static str, broker: String },

    /// A frame could not be encoded or decoded: a bug on one side or a corrupt stream.
    #[error("protocol error in {context}: {message}")]
    Protocol { context: String, message: String },

    /// The broker answered with a Kafka error code.
    #[error("{context}: {name} (error code {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        code: i16,
        name: &'static str,
        message: Option<String>,
        context: String,
    },

    /// Metadata names no leader or no such partition after the bounded retries.
    #[error("no leader known for {topic}-{partition}")]
    NoLeader { topic: String, partition: i32 },

    /// Invalid input rejected before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The security settings are unusable: they don't fit the security protocol, or a PEM
    /// file cannot be read. Nothing was sent.
    #[error("security settings: {0}")]
    Security(String),

    /// The TLS handshake failed: the broker's certificate is not trusted or does not name
    /// the host, the broker refused the client certificate, or the port does not speak TLS.
    #[error("TLS handshake with broker {broker} failed: {message}")]
    Tls { broker: String, message: String },

    /// SASL authentication failed; `message` carries the broker's error (its Kafka name,
    /// code and message) or what the client found wrong with the broker's answer. Never
    /// retried: the same credentials fail again.
    #[error("SASL authentication with broker {broker} failed: {message}")]
    Authentication { broker: String, message: String },
}

impl ClientError {
    /// Builds a [`ClientError::Kafka`] from a non-zero error code.
    pub fn kafka(code: i16, message: Option<String>, context: impl Into<String>) -> Self {
        ClientError::Kafka {
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()),
            context: context.into(),
        }
    }

    /// The Kafka error code, if this is a [`ClientError::Kafka`].
    pub fn code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether refreshing metadata and retrying may help: the leader moved, is being elected,
    /// the topic is not yet known everywhere, the controller moved, or no connection could be
    /// opened. Errors after a request was sent are not retried, so nothing is applied twice.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => matches!(
                *code,
                UNKNOWN_TOPIC_OR_PARTITION
                    | LEADER_NOT_AVAILABLE
                    | NOT_LEADER_OR_FOLLOWER
                    | NOT_CONTROLLER
            ),
            ClientError::Connect { .. } | ClientError::NoLeader { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn protocol(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        ClientError::Protocol {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

/// Returns `Ok(())` for error code 0 and a [`ClientError::Kafka`] otherwise.
pub(crate) fn check(
    code: i16,
    message: Option<&str>,
    context: impl FnOnce() -> String,
) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::kafka(
            code,
            message.map(str::to_owned),
            context(),
        ))
    }
}

pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(crate) const NOT_COORDINATOR: i16 = 16;
pub(crate) const ILLEGAL_GENERATION: i16 = 22;
pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
pub(crate) const NOT_CONTROLLER: i16 = 41;
pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;

/// The protocol name of a Kafka error code, as in the Kafka protocol guide
/// (`TOPIC_ALREADY_EXISTS` for 36). Unknown codes map to `"UNKNOWN"`.
pub fn error_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        -1 => "UNKNOWN_SERVER_ERROR",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        4 => "INVALID_FETCH_SIZE",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        9 => "REPLICA_NOT_AVAILABLE",
        10 => "MESSAGE_TOO_LARGE",
        11 => "STALE_CONTROLLER_EPOCH",
        12 => "OFFSET_METADATA_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        21 => "INVALID_REQUIRED_ACKS",
        22 => "ILLEGAL_GENERATION",
        23 => "INCONSISTENT_GROUP_PROTOCOL",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        26 => "INVALID_SESSION_TIMEOUT",
        27 => "REBALANCE_IN_PROGRESS",
        28 => "INVALID_COMMIT_OFFSET_SIZE",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        32 => "INVALID_TIMESTAMP",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        39 => "INVALID_REPLICA_ASSIGNMENT",
        40 => "INVALID_CONFIG",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        43 => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        44 => "POLICY_VIOLATION",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        48 => "INVALID_TXN_STATE",
        49 => "INVALID_PRODUCER_ID_MAPPING",
        50 => "INVALID_TRANSACTION_TIMEOUT",
        51 => "CONCURRENT_TRANSACTIONS",
        52 => "TRANSACTION_COORDINATOR_FENCED",
        53 => "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        54 => "SECURITY_DISABLED",
        55 => "OPERATION_NOT_ATTEMPTED",
        56 => "KAFKA_STORAGE_ERROR",
        57 => "LOG_DIR_NOT_FOUND",
        58 => "SASL_AUTHENTICATION_FAILED",
        59 => "UNKNOWN_PRODUCER_ID",
        60 => "REASSIGNMENT_IN_PROGRESS",
        61 => "DELEGATION_TOKEN_AUTH_DISABLED",
        62 => "DELEGATION_TOKEN_NOT_FOUND",
        63 => "DELEGATION_TOKEN_OWNER_MISMATCH",
        64 => "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        65 => "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        66 => "DELEGATION_TOKEN_EXPIRED",
        67 => "INVALID_PRINCIPAL_TYPE",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        70 => "FETCH_SESSION_ID_NOT_FOUND",
        71 => "INVALID_FETCH_SESSION_EPOCH",
        72 => "LISTENER_NOT_FOUND",
        73 => "TOPIC_DELETION_DISABLED",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        77 => "STALE_BROKER_EPOCH",
        78 => "OFFSET_NOT_AVAILABLE",
        79 => "MEMBER_ID_REQUIRED",
        80 => "PREFERRED_LEADER_NOT_AVAILABLE",
        81 => "GROUP_MAX_SIZE_REACHED",
        82 => "FENCED_INSTANCE_ID",
        83 => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        84 => "ELECTION_NOT_NEEDED",
        85 => "NO_REASSIGNMENT_IN_PROGRESS",
        86 => "GROUP_SUBSCRIBED_TO_TOPIC",
        87 => "INVALID_RECORD",
        88 => "UNSTABLE_OFFSET_COMMIT",
        89 => "THROTTLING_QUOTA_EXCEEDED",
        90 => "PRODUCER_FENCED",
        91 => "RESOURCE_NOT_FOUND",
        92 => "DUPLICATE_RESOURCE",
        93 => "UNACCEPTABLE_CREDENTIAL",
        94 => "INCONSISTENT_VOTER_SET",
        95 => "INVALID_UPDATE_VERSION",
        96 => "FEATURE_UPDATE_FAILED",
        97 => "PRINCIPAL_DESERIALIZATION_FAILURE",
        98 => "SNAPSHOT_NOT_FOUND",
        99 => "POSITION_OUT_OF_RANGE",
        100 => "UNKNOWN_TOPIC_ID",
        101 => "DUPLICATE_BROKER_REGISTRATION",
        102 => "BROKER_ID_NOT_REGISTERED",
        103 => "INCONSISTENT_TOPIC_ID",
        104 => "INCONSISTENT_CLUSTER_ID",
        105 => "TRANSACTIONAL_ID_NOT_FOUND",
        106 => "FETCH_SESSION_TOPIC_ID_ERROR",
        107 => "INELIGIBLE_REPLICA",
        108 => "NEW_LEADER_ELECTED",
        109 => "OFFSET_MOVED_TO_TIERED_STORAGE",
        110 => "FENCED_MEMBER_EPOCH",
        111 => "UNRELEASED_INSTANCE_ID",
        112 => "UNSUPPORTED_ASSIGNOR",
        113 => "STALE_MEMBER_EPOCH",
        114 => "MISMATCHED_ENDPOINT_TYPE",
        115 => "UNSUPPORTED_ENDPOINT_TYPE",
        116 => "UNKNOWN_CONTROLLER_ID",
        117 => "UNKNOWN_SUBSCRIPTION_ID",
        118 => "TELEMETRY_TOO_LARGE",
        119 => "INVALID_REGISTRATION",
        120 => "TRANSACTION_ABORTABLE",
        121 => "INVALID_RECORD_STATE",
        122 => "SHARE_SESSION_NOT_FOUND",
        123 => "INVALID_SHARE_SESSION_EPOCH",
        124 => "FENCED_STATE_EPOCH",
        125 => "INVALID_VOTER_KEY",
        126 => "DUPLICATE_VOTER",
        127 => "VOTER_NOT_FOUND",
        128 => "INVALID_REGULAR_EXPRESSION",
        129 => "REBOOTSTRAP_REQUIRED",
        130 => "STREAMS_INVALID_TOPOLOGY",
        131 => "STREAMS_INVALID_TOPOLOGY_EPOCH",
        132 => "STREAMS_TOPOLOGY_FENCED",
        133 => "SHARE_SESSION_LIMIT_REACHED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_common_codes() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(1), "OFFSET_OUT_OF_RANGE");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(35), "UNSUPPORTED_VERSION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(37), "INVALID_PARTITIONS");
        assert_eq!(error_name(38), "INVALID_REPLICATION_FACTOR");
        assert_eq!(error_name(40), "INVALID_CONFIG");
        assert_eq!(error_name(41), "NOT_CONTROLLER");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(76), "UNSUPPORTED_COMPRESSION_TYPE");
        assert_eq!(error_name(85), "NO_REASSIGNMENT_IN_PROGRESS");
        assert_eq!(error_name(100), "UNKNOWN_TOPIC_ID");
        assert_eq!(error_name(999), "UNKNOWN");
    }

    #[test]
    fn every_code_known_to_kafka_protocol_has_a_name() {
        for code in -1..=133i16 {
            if code != 0 {
                assert_ne!(error_name(code), "UNKNOWN", "code {code}");
            }
        }
    }

    #[test]
    fn kafka_error_message_names_code_and_context() {
        let err = ClientError::kafka(
            36,
            Some("Topic 'a' already exists.".into()),
            "create topic a",
        );
        assert_eq!(
            err.to_string(),
            "create topic a: TOPIC_ALREADY_EXISTS (error code 36): Topic 'a' already exists."
        );
        assert_eq!(err.code(), Some(36));
        assert!(!err.is_retriable());
        let empty = ClientError::kafka(6, Some(String::new()), "produce t-0");
        assert_eq!(
            empty.to_string(),
            "produce t-0: NOT_LEADER_OR_FOLLOWER (error code 6)"
        );
        assert!(empty.is_retriable());
    }
}
