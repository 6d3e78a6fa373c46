//! A scripted fake Kafka "broker" for tests of how Ironlog's Kafka clients survive a broken
//! or hostile peer: a TCP listener on `127.0.0.1:0` that reads request frames and answers
//! each with whatever a [`Script`] says — a well-formed response, a forged size prefix, a
//! truncated body, garbage, silence.
//!
//! [`Healthy`] answers the requests every client session starts with (ApiVersions,
//! Metadata naming this fake as broker 0 and controller, FindCoordinator pointing at it),
//! so a script can be hostile to exactly the request under test and well-behaved before it.
//!
//! Shared by two test crates: `client/tests/hostile_broker.rs` includes it as a module and
//! `operator/tests/hostile_broker.rs` includes the same file by path (a test crate can't
//! import another crate's test modules, and a fake broker has no place in a library).
//! Each uses part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FindCoordinatorResponse, MetadataResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Requests larger than this end the connection: the clients under test send small ones.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The parts of a request frame a script decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// How many requests of this API key the fake received before this one (all
    /// connections together), so a script can answer the first Metadata and not the second.
    pub nth: usize,
}

impl Request {
    pub fn is(&self, api: ApiKey) -> bool {
        self.api_key == api as i16
    }
}

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A response frame: the 4-byte size prefix is computed; `0` is the header and body.
    Frame(Vec<u8>),
    /// These bytes exactly, size prefix (forged or not) included; then the next request.
    Raw(Vec<u8>),
    /// These bytes exactly, then nothing more: the connection stays open and unanswered
    /// until the client gives up and closes it.
    RawThenHang(Vec<u8>),
    /// These bytes exactly, then close the connection (no bytes: close without answering).
    RawThenClose(Vec<u8>),
}

/// Decides the reply to each request.
pub type Script = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running fake broker; stops (listener and every connection) on drop.
pub struct FakeBroker {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Request>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

impl FakeBroker {
    /// Listens on `127.0.0.1:0` and answers every request with `script`.
    pub async fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeBroker {
        Self::start_with(move |_addr| script).await
    }

    /// Like [`FakeBroker::start`] for a script that needs the listening address (to name
    /// the fake itself in Metadata): `make_script` gets it before the first connection.
    pub async fn start_with<S>(make_script: impl FnOnce(SocketAddr) -> S) -> FakeBroker
    where
        S: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake broker");
        let addr = listener.local_addr().expect("fake broker address");
        let script: Arc<Script> = Arc::new(make_script(addr));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(serve(stream, script.clone(), log.clone()));
                // Reap finished connections so a long test does not accumulate them.
                while connections.try_join_next().is_some() {}
            }
        });
        FakeBroker {
            addr,
            received,
            task,
        }
    }

    /// `127.0.0.1:port`, for a bootstrap list.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests of `api` were received.
    pub fn count(&self, api: ApiKey) -> usize {
        self.received().iter().filter(|r| r.is(api)).count()
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, log: Arc<Mutex<Vec<Request>>>) {
    let _ = stream.set_nodelay(true);
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| (8..=MAX_REQUEST_BYTES).contains(s))
        else {
            return;
        };
        let mut frame = vec![0u8; size];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let request = {
            let mut log = log.lock().unwrap();
            let api_key = i16::from_be_bytes([frame[0], frame[1]]);
            let request = Request {
                api_key,
                api_version: i16::from_be_bytes([frame[2], frame[3]]),
                correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
                nth: log.iter().filter(|r| r.api_key == api_key).count(),
            };
            log.push(request);
            request
        };
        let written = match script(&request) {
            Reply::Frame(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 4);
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(&bytes);
                stream.write_all(&out).await
            }
            Reply::Raw(bytes) => stream.write_all(&bytes).await,
            Reply::RawThenHang(bytes) => {
                if stream.write_all(&bytes).await.is_ok() {
                    // Keep the socket open, reading and dropping whatever comes, until the
                    // client closes it.
                    let mut sink = [0u8; 4096];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                }
                return;
            }
            Reply::RawThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
        };
        if written.is_err() {
            return;
        }
    }
}

/// The response header for `request` (v0 for ApiVersions and non-flexible versions, v1
/// with its empty tagged-field section otherwise), with `correlation_id`.
pub fn header(request: &Request, correlation_id: i32) -> Vec<u8> {
    let version = match ApiKey::try_from(request.api_key) {
        Ok(ApiKey::ApiVersions) | Err(_) => 0,
        Ok(api) => api.response_header_version(request.api_version),
    };
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, version)
        .expect("encode a response header");
    buf.to_vec()
}

/// A response frame (without size prefix) for `request`: the right header, then `body`.
pub fn frame(request: &Request, body: &[u8]) -> Vec<u8> {
    let mut out = header(request, request.correlation_id);
    out.extend_from_slice(body);
    out
}

/// `message` encoded at the request's version.
pub fn encode<M: Encodable>(request: &Request, message: &M) -> Vec<u8> {
    let mut buf = BytesMut::new();
    message
        .encode(&mut buf, request.api_version)
        .unwrap_or_else(|e| panic!("encode a response to {request:?}: {e}"));
    buf.to_vec()
}

/// A `Reply::Raw` whose size prefix is `size` followed by `body` (a forged prefix when they
/// disagree).
pub fn raw_with_size(size: i32, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_i32(size);
    out.put_slice(body);
    out.to_vec()
}

/// Well-formed answers to the requests every client session starts with.
#[derive(Debug, Clone)]
pub struct Healthy {
    pub addr: SocketAddr,
    /// Topics listed in every Metadata response, each with one partition led by broker 0.
    pub topics: Vec<String>,
    /// The versions advertised in ApiVersions; default: everything `kafka_protocol` can
    /// encode, so a client picks its own highest version.
    pub versions: Vec<(ApiKey, i16, i16)>,
}

impl Healthy {
    pub fn new(addr: SocketAddr) -> Healthy {
        Healthy {
            addr,
            topics: vec!["t".to_owned()],
            versions: ApiKey::iter()
                .map(|k| {
                    let range = k.valid_versions();
                    (k, range.min, range.max)
                })
                .collect(),
        }
    }

    /// Advertises only `version` for `api` (e.g. to force a non-flexible encoding).
    pub fn with_version(mut self, api: ApiKey, version: i16) -> Healthy {
        for entry in &mut self.versions {
            if entry.0 == api {
                *entry = (api, version, version);
            }
        }
        self
    }

    /// The well-formed reply to `request`, for ApiVersions, Metadata and FindCoordinator.
    pub fn reply(&self, request: &Request) -> Option<Reply> {
        let body = match ApiKey::try_from(request.api_key).ok()? {
            ApiKey::ApiVersions => self.api_versions(request),
            ApiKey::Metadata => encode(request, &self.metadata()),
            ApiKey::FindCoordinator => self.find_coordinator(request),
            _ => return None,
        };
        Some(Reply::Frame(frame(request, &body)))
    }

    /// Like [`Healthy::reply`], closing the connection for any other API.
    pub fn reply_or_close(&self, request: &Request) -> Reply {
        self.reply(request)
            .unwrap_or(Reply::RawThenClose(Vec::new()))
    }

    fn api_versions(&self, request: &Request) -> Vec<u8> {
        let response = ApiVersionsResponse::default().with_api_keys(
            self.versions
                .iter()
                .map(|(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*key as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        );
        encode(request, &response)
    }

    /// This fake as broker 0 and controller, and every topic of `topics`.
    pub fn metadata(&self) -> MetadataResponse {
        MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_static_str("fake-cluster")))
            .with_controller_id(0.into())
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(0.into())
                .with_host(StrBytes::from_string(self.addr.ip().to_string()))
                .with_port(i32::from(self.addr.port()))])
            .with_topics(
                self.topics
                    .iter()
                    .map(|name| {
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                            .with_partitions(vec![MetadataResponsePartition::default()
                                .with_partition_index(0)
                                .with_leader_id(0.into())
                                .with_replica_nodes(vec![0.into()])
                                .with_isr_nodes(vec![0.into()])])
                    })
                    .collect(),
            )
    }

    fn find_coordinator(&self, request: &Request) -> Vec<u8> {
        let host = StrBytes::from_string(self.addr.ip().to_string());
        let port = i32::from(self.addr.port());
        // v4 moved the answer into a batch of coordinators.
        let response = if request.api_version >= 4 {
            FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_node_id(0.into())
                .with_host(host)
                .with_port(port)])
        } else {
            FindCoordinatorResponse::default()
                .with_node_id(0.into())
                .with_host(host)
                .with_port(port)
        };
        encode(request, &response)
    }
}
