//! The record format of `__consumer_offsets` (pure codec).
//!
//! Records use Apache Kafka's own key/value schemas (big-endian, Kafka "classic"
//! non-flexible encoding), so the topic can be read with Kafka's
//! `kafka-console-consumer --formatter OffsetsMessageFormatter` and vice versa:
//!
//! ```text
//! OffsetCommitKey   (key version 1)  i16 version=1, string group, string topic, i32 partition
//! OffsetCommitValue (value v3)       i16 version=3, i64 offset, i32 leader_epoch,
//!                                    string metadata, i64 commit_timestamp
//! GroupMetadataKey  (key version 2)  i16 version=2, string group
//! GroupMetadataValue (value v3)      i16 version=3, string protocol_type, i32 generation,
//!                                    nullable string protocol, nullable string leader,
//!                                    i64 current_state_timestamp,
//!                                    array of members: string member_id,
//!                                      nullable string group_instance_id, string client_id,
//!                                      string client_host, i32 rebalance_timeout,
//!                                      i32 session_timeout, bytes subscription, bytes assignment
//! ```
//!
//! A null value is a tombstone (offset deleted / group deleted); compaction keeps only
//! the latest record per key. `string` is i16 length + UTF-8, nullable strings use length
//! -1, `bytes` is i32 length + bytes, arrays are an i32 count. Reading also accepts offset
//! values v0/v1 (with an expire timestamp) and v3, and group values v0–v3.
//!
//! Group `G` lives in partition `abs(javaHashCode(G)) % partitions`, as in Kafka.

use bytes::{BufMut, Bytes, BytesMut};
use ironlog_protocol::reader::{ReadError, Reader};

use super::metadata::{CommittedOffset, GroupSnapshot, StoredMember};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq)]
pub enum OffsetsRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        /// `None`: tombstone.
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        /// `None`: tombstone.
        value: Option<GroupSnapshot>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("undecodable __consumer_offsets record: {0}")]
pub struct DecodeError(String);

/// Java's `String.hashCode` (UTF-16 code units).
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that stores `group`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    (java_hash(group) & 0x7fff_ffff) % partitions.max(1)
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => b.put_i16(-1),
        Some(s) => put_str(b, s),
    }
}

fn put_bytes(b: &mut BytesMut, s: &[u8]) {
    b.put_i32(s.len() as i32);
    b.put_slice(s);
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

pub fn offset_value(o: &CommittedOffset) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(o.offset);
    b.put_i32(o.leader_epoch);
    put_str(&mut b, &o.metadata);
    b.put_i64(o.commit_timestamp_ms);
    b.freeze()
}

pub fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(2);
    put_str(&mut b, group);
    b.freeze()
}

pub fn group_value(g: &GroupSnapshot) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation_id);
    put_nullable_str(&mut b, g.protocol_name.as_deref());
    put_nullable_str(&mut b, g.leader.as_deref());
    b.put_i64(g.current_state_timestamp_ms);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> Self {
        DecodeError(e.to_string())
    }
}

/// A `STRING` field (null read as empty, as Kafka's readers tolerate).
fn string(r: &mut Reader<'_>) -> Result<String, ReadError> {
    Ok(r.nullable_str()?.unwrap_or_default().to_string())
}

fn nullable_string(r: &mut Reader<'_>) -> Result<Option<String>, ReadError> {
    Ok(r.nullable_str()?.map(str::to_string))
}

/// A `BYTES` field (null read as empty).
fn bytes(r: &mut Reader<'_>) -> Result<Bytes, ReadError> {
    Ok(Bytes::copy_from_slice(
        r.nullable_bytes()?.unwrap_or_default(),
    ))
}

/// Decodes one record of `__consumer_offsets`.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, DecodeError> {
    let mut k = Reader::new(key);
    match k.i16()? {
        0 | 1 => {
            let group = string(&mut k)?;
            let topic = string(&mut k)?;
            let partition = k.i32()?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value,
            })
        }
        2 => {
            let group = string(&mut k)?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(OffsetsRecord::Group { group, value })
        }
        v => Err(DecodeError(format!("unknown key version {v}"))),
    }
}

fn decode_offset_value(value: &[u8]) -> Result<CommittedOffset, DecodeError> {
    let mut r = Reader::new(value);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = string(&mut r)?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        let _expire = r.i64()?;
    }
    if version > 4 {
        return Err(DecodeError(format!(
            "unknown offset value version {version}"
        )));
    }
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group_value(value: &[u8]) -> Result<GroupSnapshot, DecodeError> {
    let mut r = Reader::new(value);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(DecodeError(format!(
            "unknown group value version {version}"
        )));
    }
    let protocol_type = string(&mut r)?;
    let generation_id = r.i32()?;
    let protocol_name = nullable_string(&mut r)?;
    let leader = nullable_string(&mut r)?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    // A member takes at least three empty strings, a session timeout and two empty byte
    // arrays.
    let count = r.count(3 * 2 + 4 + 2 * 4)?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = string(&mut r)?;
        let group_instance_id = if version >= 3 {
            nullable_string(&mut r)?
        } else {
            None
        };
        let client_id = string(&mut r)?;
        let client_host = string(&mut r)?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { 0 };
        let session_timeout_ms = r.i32()?;
        let rebalance_timeout_ms = if version >= 1 {
            rebalance_timeout_ms
        } else {
            session_timeout_ms
        };
        let subscription = bytes(&mut r)?;
        let assignment = bytes(&mut r)?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupSnapshot {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // "hello".hashCode() == 99162322; "".hashCode() == 0; "polygenelubricants" is
        // Integer.MIN_VALUE in Java.
        assert_eq!(java_hash("hello"), 99162322);
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert!((0..50).contains(&partition_for("my-group", 50)));
    }

    #[test]
    fn offset_records_round_trip_with_metadata() {
        let o = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "checkpoint é".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let key = offset_key("g", "orders", 5);
        let value = offset_value(&o);
        assert_eq!(
            decode(&key, Some(&value)).unwrap(),
            OffsetsRecord::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 5,
                value: Some(o)
            }
        );
        assert_eq!(
            decode(&key, None).unwrap(),
            OffsetsRecord::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 5,
                value: None
            }
        );
        // Kafka's exact key bytes: version 1, "g", "orders", 5.
        assert_eq!(
            &key[..],
            &[0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 5]
        );
    }

    #[test]
    fn group_records_round_trip() {
        let g = GroupSnapshot {
            protocol_type: "consumer".into(),
            generation_id: 7,
            protocol_name: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 123,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let decoded = decode(&group_key("g"), Some(&group_value(&g))).unwrap();
        assert_eq!(
            decoded,
            OffsetsRecord::Group {
                group: "g".into(),
                value: Some(g)
            }
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0, 1, 0, 9], Some(&[])).is_err());
        assert!(decode(&[0, 7], None).is_err());
        assert!(decode(&offset_key("g", "t", 0), Some(&[0, 3, 0])).is_err());
    }
}
