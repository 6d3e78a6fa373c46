//! The data API: produce, fetch and list offsets, each routed to the partition leader.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    produce_request::{PartitionProduceData, TopicProduceData},
    BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, Target};
use crate::error::{check, ClientError};
use crate::records::{decode_batches, encode_batch, Compression, ConsumedRecord, ProduceRecord};

/// How many replicas must have a produced batch before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Fire and forget: the broker sends no response and no offset is known.
    None,
    /// The leader has written the batch.
    Leader,
    /// All in-sync replicas have the batch.
    All,
}

impl Acks {
    fn to_wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses Kafka's `acks` values: `0`, `1`, `-1` or `all`.
    pub fn parse(s: &str) -> Result<Acks, ClientError> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "-1" | "all" => Ok(Acks::All),
            other => Err(ClientError::InvalidArgument(format!(
                "acks must be 0, 1, -1 or all, not {other:?}"
            ))),
        }
    }
}

/// Which offset `list_offsets` looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark): the offset the next record will get.
    Latest,
    /// The earliest offset whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The offset of the record with the highest timestamp (Kafka 3.0+).
    MaxTimestamp,
}

impl OffsetSpec {
    fn to_wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// One partition of a multi-partition fetch.
#[derive(Debug)]
pub struct FetchedPartition {
    pub partition: i32,
    /// The offset this partition was fetched from.
    pub fetch_offset: i64,
    /// Records at or above `fetch_offset`, or this partition's error.
    pub records: Result<Vec<ConsumedRecord>, ClientError>,
    /// Where to fetch next: after the last record or the last complete batch; equal to
    /// `fetch_offset` when nothing was returned.
    pub next_offset: i64,
    /// The partition's high watermark (`-1` when the partition failed).
    pub high_watermark: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

impl Client {
    /// Appends `records` as one batch to `topic`-`partition` and returns the offset of the
    /// first record (`-1` with [`Acks::None`], since the broker does not answer).
    ///
    /// Retries when the leader moved; an I/O error after sending is not retried, so a record
    /// is never written twice by this call (but may be written once without confirmation).
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: &[ProduceRecord],
        acks: Acks,
        compression: Compression,
    ) -> Result<i64, ClientError> {
        let batch = encode_batch(records, compression, now_ms())?;
        // The topic id is filled in too: Produce v13+ addresses topics by id only.
        let topic_id = self
            .topic_metadata(topic)
            .await
            .map(|t| t.topic_id)
            .unwrap_or_default();
        let request = ProduceRequest::default()
            .with_acks(acks.to_wire())
            .with_timeout_ms(
                i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX),
            )
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_topic_id(topic_id)
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let request = &request;
        self.with_retries(Some(topic), move || async move {
            let leader = self.leader_for(topic, partition).await?;
            if acks == Acks::None {
                self.send_without_response(Target::Node(leader), request)
                    .await?;
                return Ok(-1);
            }
            let response = self.send(Target::Node(leader), request).await?;
            let Some(p) = response
                .responses
                .into_iter()
                .flat_map(|t| t.partition_responses)
                .find(|p| p.index == partition)
            else {
                return Err(ClientError::protocol(
                    format!("Produce response for {topic}-{partition}"),
                    "partition missing from response",
                ));
            };
            let message = p.error_message.as_deref().map(str::to_owned).or_else(|| {
                p.record_errors
                    .first()
                    .and_then(|e| e.batch_index_error_message.as_deref().map(str::to_owned))
            });
            check(p.error_code, message.as_deref(), || {
                format!("produce to {topic}-{partition}")
            })?;
            Ok(p.base_offset)
        })
        .await
    }

    /// Reads records of `topic`-`partition` starting at `offset`, waiting up to
    /// `max_wait_ms` for data.
    ///
    /// # Errors
    /// `ClientError::Kafka { name: "OFFSET_OUT_OF_RANGE", .. }` when `offset` is outside the
    /// log; other per-partition errors likewise.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<ConsumedRecord>, ClientError> {
        let mut fetched = self
            .fetch_partitions(topic, &[(partition, offset)], max_wait_ms, max_bytes)
            .await?;
        match fetched.pop() {
            Some(p) => p.records,
            None => Err(ClientError::protocol(
                format!("Fetch for {topic}-{partition}"),
                "partition missing from response",
            )),
        }
    }

    /// Fetches several partitions of `topic` (`(partition, offset)` pairs), one request per
    /// leader. Per-partition errors are reported in the result, not as the outer error.
    pub async fn fetch_partitions(
        &self,
        topic: &str,
        partitions: &[(i32, i64)],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        let mut out = Vec::new();
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for &(partition, offset) in partitions {
            let leader = self
                .with_retries(Some(topic), || self.leader_for(topic, partition))
                .await;
            match leader {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, offset)),
                Err(e) => out.push(failed(partition, offset, e)),
            }
        }
        // The topic id is set as well: Fetch v13+ addresses topics by id only.
        let topic_id = self
            .topic_metadata(topic)
            .await
            .map(|t| t.topic_id)
            .unwrap_or_default();
        let timeout =
            self.config().request_timeout + Duration::from_millis(max_wait_ms.max(0) as u64);
        for (leader, wanted) in by_leader {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1) // full fetch, no incremental fetch session
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_topic_id(topic_id)
                    .with_partitions(
                        wanted
                            .iter()
                            .map(|&(p, o)| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(o)
                                    .with_last_fetched_epoch(-1)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(max_bytes)
                            })
                            .collect(),
                    )]);
            let response = self
                .send_with_timeout(Target::Node(leader), &request, Some(timeout))
                .await?;
            check(response.error_code, None, || format!("fetch from {topic}"))?;
            // Only one topic was asked for, so every partition in the answer is ours
            // (matching by name would not work for v13+, which answers with ids only).
            let answered: Vec<_> = response
                .responses
                .into_iter()
                .flat_map(|t| t.partitions)
                .collect();
            for &(p, o) in &wanted {
                let Some(data) = answered.iter().find(|d| d.partition_index == p) else {
                    out.push(failed(
                        p,
                        o,
                        ClientError::protocol(
                            format!("Fetch response for {topic}-{p}"),
                            "partition missing",
                        ),
                    ));
                    continue;
                };
                if data.error_code != 0 {
                    if data.error_code != crate::error::OFFSET_OUT_OF_RANGE {
                        self.invalidate_topic(topic);
                    }
                    let context = format!(
                        "fetch {topic}-{p} at offset {o} (log start {}, high watermark {})",
                        data.log_start_offset, data.high_watermark
                    );
                    out.push(failed(
                        p,
                        o,
                        ClientError::kafka(data.error_code, None, context),
                    ));
                    continue;
                }
                let decoded = decode_batches(data.records.clone().unwrap_or_default(), o);
                out.push(match decoded {
                    Ok(decoded) => {
                        let after_last = decoded.records.last().map(|r| r.offset + 1);
                        let next_offset = after_last
                            .into_iter()
                            .chain(decoded.next_offset)
                            .max()
                            .unwrap_or(o)
                            .max(o);
                        FetchedPartition {
                            partition: p,
                            fetch_offset: o,
                            records: Ok(decoded.records),
                            next_offset,
                            high_watermark: data.high_watermark,
                        }
                    }
                    Err(e) => failed(p, o, e),
                });
            }
        }
        out.sort_by_key(|p| p.partition);
        Ok(out)
    }

    /// Looks up an offset of `topic`-`partition`; returns `(offset, timestamp)`. The
    /// timestamp is `-1` unless looking up by time.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<(i64, i64), ClientError> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(0)
            .with_timeout_ms(
                i32::try_from(self.config().request_timeout.as_millis()).unwrap_or(i32::MAX),
            )
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(spec.to_wire())])]);
        let request = &request;
        self.with_retries(Some(topic), move || async move {
            let leader = self.leader_for(topic, partition).await?;
            if spec == OffsetSpec::MaxTimestamp
                && self
                    .version_for::<ListOffsetsRequest>(Target::Node(leader))
                    .await?
                    < 7
            {
                return Err(ClientError::UnsupportedApi {
                    api: "ListOffsets (max timestamp, v7+)",
                    broker: format!("node {leader}"),
                });
            }
            let response = self.send(Target::Node(leader), request).await?;
            let Some(p) = response
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == partition)
            else {
                return Err(ClientError::protocol(
                    format!("ListOffsets response for {topic}-{partition}"),
                    "partition missing from response",
                ));
            };
            check(p.error_code, None, || {
                format!("list offsets ({spec:?}) of {topic}-{partition}")
            })?;
            Ok((p.offset, p.timestamp))
        })
        .await
    }
}

fn failed(partition: i32, offset: i64, error: ClientError) -> FetchedPartition {
    FetchedPartition {
        partition,
        fetch_offset: offset,
        records: Err(error),
        next_offset: offset,
        high_watermark: -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse_like_kafka() {
        assert_eq!(Acks::parse("0").unwrap(), Acks::None);
        assert_eq!(Acks::parse("1").unwrap(), Acks::Leader);
        assert_eq!(Acks::parse("-1").unwrap(), Acks::All);
        assert_eq!(Acks::parse("all").unwrap(), Acks::All);
        assert!(Acks::parse("2").is_err());
        assert_eq!(Acks::All.to_wire(), -1);
    }

    #[test]
    fn offset_specs_map_to_kafka_sentinels() {
        assert_eq!(OffsetSpec::Earliest.to_wire(), -2);
        assert_eq!(OffsetSpec::Latest.to_wire(), -1);
        assert_eq!(OffsetSpec::MaxTimestamp.to_wire(), -3);
        assert_eq!(OffsetSpec::Timestamp(1234).to_wire(), 1234);
    }
}
