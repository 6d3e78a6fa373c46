//! `Client`: bootstrap, cluster metadata cache, one connection per broker, request routing
//! and bounded retries.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::connection::Connection;
use crate::error::ClientError;
use crate::security::{Security, SecurityConfig};

/// How a [`Client`] connects and how patient it is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses tried in order until one answers.
    pub bootstrap_servers: Vec<String>,
    pub client_id: String,
    /// Upper bound for connecting and for every request (fetches add their `max_wait_ms`).
    pub request_timeout: Duration,
    /// How many times a request is retried after a retriable error (see
    /// [`ClientError::is_retriable`]), refreshing metadata in between.
    pub retries: u32,
    /// Backoff before the first retry; doubles on each further retry.
    pub retry_backoff: Duration,
    /// Responses larger than this are refused (the connection is closed) instead of read;
    /// see [`Connection::set_max_response_bytes`].
    pub max_response_bytes: usize,
    /// How every connection is secured (bootstrap and per broker alike); PLAINTEXT by
    /// default.
    pub security: SecurityConfig,
}

impl ClientConfig {
    /// Parses a comma-separated `host:port` list, e.g. `"b1:9092,b2:9092"`.
    ///
    /// # Errors
    /// [`ClientError::InvalidAddress`] for an entry without a numeric port, or an empty list.
    pub fn new(bootstrap_servers: &str) -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig {
            bootstrap_servers: parse_bootstrap(bootstrap_servers)?,
            client_id: "ironlog-client".to_owned(),
            request_timeout: Duration::from_secs(30),
            retries: 5,
            retry_backoff: Duration::from_millis(50),
            max_response_bytes: crate::connection::MAX_RESPONSE_BYTES,
            security: SecurityConfig::default(),
        })
    }
}

/// Splits and validates a bootstrap list.
pub fn parse_bootstrap(servers: &str) -> Result<Vec<String>, ClientError> {
    let list: Vec<String> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(ClientError::InvalidAddress {
            address: servers.to_owned(),
        });
    }
    for address in &list {
        let valid = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(ClientError::InvalidAddress {
                address: address.clone(),
            });
        }
    }
    Ok(list)
}

/// A broker as listed in cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition as listed in cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// `None` when the partition has no leader (`-1` on the wire).
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    /// A per-partition error such as LEADER_NOT_AVAILABLE.
    pub error: Option<(i16, &'static str)>,
}

/// One topic as listed in cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// Nil UUID when the broker predates topic ids.
    pub topic_id: uuid::Uuid,
    pub is_internal: bool,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMetadata>,
    /// A per-topic error such as UNKNOWN_TOPIC_OR_PARTITION; partitions are empty then.
    pub error: Option<(i16, &'static str)>,
}

/// The answer to a Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    /// Brokers sorted by id.
    pub brokers: Vec<BrokerInfo>,
    /// Topics in the order the broker returned them.
    pub topics: Vec<TopicMetadata>,
}

impl ClusterMetadata {
    /// The topic named `name`, if listed.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }
}

fn error_of(code: i16) -> Option<(i16, &'static str)> {
    (code != 0).then(|| (code, crate::error::error_name(code)))
}

fn optional_id(id: i32) -> Option<i32> {
    (id >= 0).then_some(id)
}

/// Converts a wire Metadata response into the public type.
pub(crate) fn convert_metadata(response: MetadataResponse) -> ClusterMetadata {
    let mut brokers: Vec<BrokerInfo> = response
        .brokers
        .into_iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.map(|r| r.to_string()),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let topics = response
        .topics
        .into_iter()
        .map(|t| {
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: optional_id(p.leader_id.0),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
                    error: error_of(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            TopicMetadata {
                name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
                error: error_of(t.error_code),
            }
        })
        .collect();
    ClusterMetadata {
        cluster_id: response.cluster_id.map(|c| c.to_string()),
        controller_id: optional_id(response.controller_id.0),
        brokers,
        topics,
    }
}

/// What the client remembers between requests.
#[derive(Debug, Default)]
struct Cache {
    brokers: BTreeMap<i32, BrokerInfo>,
    controller_id: Option<i32>,
    topics: HashMap<String, TopicMetadata>,
}

/// Where a request should go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// Any live broker: the controller when known (it is most up to date), else the first.
    Any,
    /// The controller, for admin writes. KRaft brokers forward to the active controller.
    Controller,
    /// A specific broker, e.g. a partition leader.
    Node(i32),
}

/// A Kafka client for admin and data requests against any Kafka-compatible cluster.
///
/// Methods take `&self` and may be called concurrently; requests to the same broker are
/// serialized on that broker's connection.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    /// `config.security` with its PEM files read: what every connection is opened with.
    security: Security,
    cache: Mutex<Cache>,
    /// Why a tokio mutex per connection: it is held across the await of a round trip.
    connections: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Connection>>>>,
}

impl Client {
    /// Connects to the first reachable bootstrap server and loads the broker list.
    ///
    /// # Errors
    /// [`ClientError::Security`] for unusable security settings;
    /// [`ClientError::Tls`] or [`ClientError::Authentication`] when a bootstrap server
    /// refuses the client's certificate or credentials (the same settings would fail on the
    /// others); [`ClientError::NoBrokerAvailable`] when no bootstrap server answers a
    /// Metadata request.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let security = config.security.prepare()?;
        let client = Client {
            config,
            security,
            cache: Mutex::new(Cache::default()),
            connections: Mutex::new(HashMap::new()),
        };
        client.refresh_metadata(Some(&[])).await?;
        Ok(client)
    }

    /// Shorthand for `Client::connect(ClientConfig::new(bootstrap_servers)?)`.
    pub async fn bootstrap(bootstrap_servers: &str) -> Result<Client, ClientError> {
        Client::connect(ClientConfig::new(bootstrap_servers)?).await
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Fetches metadata for `topics` (all topics when `None`) and updates the routing cache.
    pub(crate) async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<ClusterMetadata, ClientError> {
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }));
        let known: Vec<i32> = self.lock_cache().brokers.keys().copied().collect();
        let mut last_error = None;
        // Known brokers first, bootstrap servers as the fallback when all of them are gone.
        for node in known {
            match self.send_to_node(node, &request, None).await {
                Ok(response) => return Ok(self.store_metadata(response)),
                Err(e) => last_error = Some(e),
            }
        }
        for address in &self.config.bootstrap_servers {
            let attempt = async {
                let mut connection = self.open(address).await?;
                connection.send(&request).await
            };
            match attempt.await {
                Ok(response) => return Ok(self.store_metadata(response)),
                // Trust and credentials are the same for every broker: no point trying on.
                Err(e @ (ClientError::Tls { .. } | ClientError::Authentication { .. })) => {
                    return Err(e)
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(ClientError::NoBrokerAvailable {
            servers: self.config.bootstrap_servers.join(","),
            last: Box::new(
                last_error.unwrap_or(ClientError::InvalidArgument("empty bootstrap list".into())),
            ),
        })
    }

    fn store_metadata(&self, response: MetadataResponse) -> ClusterMetadata {
        let metadata = convert_metadata(response);
        let mut cache = self.lock_cache();
        if !metadata.brokers.is_empty() {
            cache.brokers = metadata.brokers.iter().map(|b| (b.id, b.clone())).collect();
        }
        cache.controller_id = metadata.controller_id;
        for topic in &metadata.topics {
            if topic.error.is_none() {
                cache.topics.insert(topic.name.clone(), topic.clone());
            } else {
                cache.topics.remove(&topic.name);
            }
        }
        metadata
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding this lock leaves only plain data behind; keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_connections(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i32, Arc<tokio::sync::Mutex<Connection>>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets cached topic metadata so the next lookup asks a broker.
    pub(crate) fn invalidate_topic(&self, topic: &str) {
        self.lock_cache().topics.remove(topic);
    }

    /// Cached metadata of `topic`, fetched when unknown.
    pub(crate) async fn topic_metadata(&self, topic: &str) -> Result<TopicMetadata, ClientError> {
        if let Some(t) = self.lock_cache().topics.get(topic) {
            return Ok(t.clone());
        }
        let metadata = self.refresh_metadata(Some(&[topic.to_owned()])).await?;
        match metadata.topic(topic) {
            Some(t) => match t.error {
                Some((code, _)) => Err(ClientError::kafka(
                    code,
                    None,
                    format!("metadata for topic {topic}"),
                )),
                None => Ok(t.clone()),
            },
            None => Err(ClientError::kafka(
                crate::error::UNKNOWN_TOPIC_OR_PARTITION,
                None,
                format!("metadata for topic {topic}"),
            )),
        }
    }

    /// The current leader of `topic`-`partition`.
    pub(crate) async fn leader_for(&self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        let metadata = self.topic_metadata(topic).await?;
        let Some(p) = metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)
        else {
            self.invalidate_topic(topic);
            return Err(ClientError::kafka(
                crate::error::UNKNOWN_TOPIC_OR_PARTITION,
                Some(format!(
                    "topic has {} partitions",
                    metadata.partitions.len()
                )),
                format!("partition {topic}-{partition}"),
            ));
        };
        p.leader.ok_or_else(|| {
            self.invalidate_topic(topic);
            ClientError::NoLeader {
                topic: topic.to_owned(),
                partition,
            }
        })
    }

    fn resolve(&self, target: Target) -> Result<i32, ClientError> {
        let cache = self.lock_cache();
        let first = cache.brokers.keys().next().copied();
        let controller = cache
            .controller_id
            .filter(|id| cache.brokers.contains_key(id));
        let node = match target {
            Target::Node(id) => Some(id),
            Target::Controller | Target::Any => controller.or(first),
        };
        node.ok_or_else(|| ClientError::InvalidArgument("cluster metadata lists no brokers".into()))
    }

    /// A new connection to `address`, secured and limited as configured.
    async fn open(&self, address: &str) -> Result<Connection, ClientError> {
        let mut connection = Connection::connect_with(
            address,
            &self.config.client_id,
            self.config.request_timeout,
            &self.security,
        )
        .await?;
        connection.set_max_response_bytes(self.config.max_response_bytes);
        Ok(connection)
    }

    /// The connection to broker `node`, opened on first use.
    async fn connection(
        &self,
        node: i32,
    ) -> Result<Arc<tokio::sync::Mutex<Connection>>, ClientError> {
        if let Some(c) = self.lock_connections().get(&node) {
            return Ok(c.clone());
        }
        let address = self
            .lock_cache()
            .brokers
            .get(&node)
            .map(BrokerInfo::address)
            .ok_or_else(|| ClientError::Connect {
                broker: format!("node {node}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "broker is not in the cluster metadata",
                ),
            })?;
        let connection = self.open(&address).await?;
        let connection = Arc::new(tokio::sync::Mutex::new(connection));
        // Another task may have connected meanwhile; keep the first one.
        Ok(self
            .lock_connections()
            .entry(node)
            .or_insert(connection)
            .clone())
    }

    /// Sends `request` to `target` with the negotiated version and `timeout` (the default
    /// request timeout when `None`). A connection that broke is closed and reopened on the
    /// next request.
    pub(crate) async fn send_with_timeout<R: Request>(
        &self,
        target: Target,
        request: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Response, ClientError> {
        let timeout = timeout.unwrap_or(self.config.request_timeout);
        let mut guard = self.lock_usable(self.resolve(target)?).await?;
        let result = match guard.version_for::<R>() {
            Ok(version) => guard.send_with(request, version, timeout).await,
            Err(e) => Err(e),
        };
        if guard.is_broken() {
            let connection = tokio::sync::OwnedMutexGuard::mutex(&guard).clone();
            drop(guard);
            self.forget_connection(&connection);
        }
        result
    }

    /// Sends `request` to `target` without reading a response (Produce with `acks=0`).
    pub(crate) async fn send_without_response<R: Request>(
        &self,
        target: Target,
        request: &R,
    ) -> Result<(), ClientError> {
        let mut guard = self.lock_usable(self.resolve(target)?).await?;
        let result = match guard.version_for::<R>() {
            Ok(version) => {
                guard
                    .send_without_response(request, version, self.config.request_timeout)
                    .await
            }
            Err(e) => Err(e),
        };
        if guard.is_broken() {
            let connection = tokio::sync::OwnedMutexGuard::mutex(&guard).clone();
            drop(guard);
            self.forget_connection(&connection);
        }
        result
    }

    /// The connection to `node`, locked for one request. A connection left broken (a
    /// request on it failed, timed out or was cancelled mid-way) is replaced by a new one.
    async fn lock_usable(
        &self,
        node: i32,
    ) -> Result<tokio::sync::OwnedMutexGuard<Connection>, ClientError> {
        let connection = self.connection(node).await?;
        let guard = connection.clone().lock_owned().await;
        if !guard.is_broken() {
            return Ok(guard);
        }
        drop(guard);
        self.forget_connection(&connection);
        Ok(self.connection(node).await?.lock_owned().await)
    }

    fn forget_connection(&self, connection: &Arc<tokio::sync::Mutex<Connection>>) {
        self.lock_connections()
            .retain(|_, c| !Arc::ptr_eq(c, connection));
    }

    /// Sends `request` to broker `node` with the negotiated version.
    async fn send_to_node<R: Request>(
        &self,
        node: i32,
        request: &R,
        timeout: Option<Duration>,
    ) -> Result<R::Response, ClientError> {
        self.send_with_timeout(Target::Node(node), request, timeout)
            .await
    }

    /// Sends `request` to `target` with the negotiated version and the default timeout.
    pub(crate) async fn send<R: Request>(
        &self,
        target: Target,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        self.send_with_timeout(target, request, None).await
    }

    /// The version the broker behind `target` will be sent for `R`.
    pub(crate) async fn version_for<R: Request>(&self, target: Target) -> Result<i16, ClientError> {
        let connection = self.connection(self.resolve(target)?).await?;
        let guard = connection.lock().await;
        guard.version_for::<R>()
    }

    /// Runs `attempt` until it succeeds, fails with a non-retriable error, or the retries are
    /// used up. Between attempts the metadata of `topic` (or the broker list) is refreshed.
    ///
    /// `attempt` is a plain closure returning a future (not an async closure) so that the
    /// resulting futures are `Send`, which kube-rs reconcilers require.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        topic: Option<&str>,
        mut attempt: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut backoff = self.config.retry_backoff;
        let mut retries_left = self.config.retries;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retriable() && retries_left > 0 => {
                    retries_left -= 1;
                    tracing::debug!(error = %e, retries_left, "retrying after metadata refresh");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    let refreshed = match topic {
                        Some(t) => {
                            self.invalidate_topic(t);
                            self.refresh_metadata(Some(&[t.to_owned()])).await
                        }
                        None => self.refresh_metadata(Some(&[])).await,
                    };
                    if let Err(refresh_error) = refreshed {
                        tracing::debug!(error = %refresh_error, "metadata refresh failed");
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    #[test]
    fn parses_bootstrap_lists() {
        assert_eq!(
            parse_bootstrap(" a:1, b.example:9092 ,").unwrap(),
            vec!["a:1".to_string(), "b.example:9092".to_string()]
        );
        assert_eq!(
            parse_bootstrap("[::1]:9092").unwrap(),
            vec!["[::1]:9092".to_string()]
        );
        for bad in ["", ",", "host", "host:", ":9092", "host:99999", "host:x"] {
            assert!(
                matches!(
                    parse_bootstrap(bad),
                    Err(ClientError::InvalidAddress { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn converts_metadata_response() {
        let response = MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_static_str("c1")))
            .with_controller_id(2.into())
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(2.into())
                    .with_host(StrBytes::from_static_str("b2"))
                    .with_port(9093),
                MetadataResponseBroker::default()
                    .with_node_id(1.into())
                    .with_host(StrBytes::from_static_str("b1"))
                    .with_port(9092)
                    .with_rack(Some(StrBytes::from_static_str("r1"))),
            ])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                    .with_partitions(vec![
                        MetadataResponsePartition::default()
                            .with_partition_index(1)
                            .with_leader_id((-1).into())
                            .with_error_code(5),
                        MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(1.into())
                            .with_replica_nodes(vec![1.into(), 2.into()])
                            .with_isr_nodes(vec![1.into()]),
                    ]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(3),
            ]);
        let m = convert_metadata(response);
        assert_eq!(m.cluster_id.as_deref(), Some("c1"));
        assert_eq!(m.controller_id, Some(2));
        assert_eq!(
            m.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(m.brokers[0].rack.as_deref(), Some("r1"));
        assert_eq!(m.brokers[1].address(), "b2:9093");
        let t = m.topic("t").unwrap();
        assert_eq!(t.partitions[0].partition, 0);
        assert_eq!(t.partitions[0].leader, Some(1));
        assert_eq!(t.partitions[0].replicas, vec![1, 2]);
        assert_eq!(t.partitions[0].isr, vec![1]);
        assert_eq!(t.partitions[1].leader, None);
        assert_eq!(t.partitions[1].error, Some((5, "LEADER_NOT_AVAILABLE")));
        assert_eq!(
            m.topic("gone").unwrap().error,
            Some((3, "UNKNOWN_TOPIC_OR_PARTITION"))
        );
    }
}
