//! Record types of the data API and their (pure) conversion to and from v2 record batches.

use bytes::{Buf, Bytes, BytesMut};
use ironlog_wire::batch;
use ironlog_wire::records::RecordDecoder;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use crate::error::ClientError;

/// One record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Header keys are unique; a later duplicate replaces an earlier one.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; `None` means "now".
    pub timestamp: Option<i64>,
}

impl ProduceRecord {
    /// A record with only a value.
    pub fn value(value: impl Into<Bytes>) -> Self {
        ProduceRecord {
            value: Some(value.into()),
            ..ProduceRecord::default()
        }
    }
}

/// One record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    /// Milliseconds since the epoch (create time or log append time, per topic config).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// All codecs, for tests and help texts.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn to_protocol(self) -> kafka_protocol::records::Compression {
        use kafka_protocol::records::Compression as C;
        match self {
            Compression::None => C::None,
            Compression::Gzip => C::Gzip,
            Compression::Snappy => C::Snappy,
            Compression::Lz4 => C::Lz4,
            Compression::Zstd => C::Zstd,
        }
    }
}

/// Encodes `records` as one v2 record batch with relative offsets 0..n, ready for a
/// Produce request. `now_ms` fills in missing timestamps.
///
/// # Errors
/// [`ClientError::InvalidArgument`] for an empty record list, [`ClientError::Protocol`] if
/// the encoder fails (e.g. a codec error).
pub fn encode_batch(
    records: &[ProduceRecord],
    compression: Compression,
    now_ms: i64,
) -> Result<Bytes, ClientError> {
    if records.is_empty() {
        return Err(ClientError::InvalidArgument(
            "a record batch needs at least one record".into(),
        ));
    }
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let offset = i as i64;
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset,
                // The encoder keeps records in one batch only while `offset - sequence` is
                // constant, and derives the batch's base sequence from the first record.
                // `offset - 1` yields one batch with base sequence -1 (NO_SEQUENCE), which is
                // what a non-idempotent producer sends.
                sequence: (offset as i32) - 1,
                timestamp: r.timestamp.unwrap_or(now_ms),
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: compression.to_protocol(),
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| ClientError::protocol(format!("encoding {compression:?} record batch"), e))?;
    Ok(buf.freeze())
}

/// The records of a fetch response, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedRecords {
    /// Data records at or above the requested offset, in offset order.
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last complete batch, if any batch was complete. Lets a consumer
    /// move past batches that hold no visible records (control batches, compacted gaps).
    pub next_offset: Option<i64>,
}

/// The most bytes one fetched batch may decompress to (Kafka's largest default
/// `max.message.bytes` is far below; a bigger batch is refused, not inflated).
pub const MAX_UNCOMPRESSED_BYTES: usize = ironlog_wire::records::DEFAULT_MAX_UNCOMPRESSED_BYTES;

const LOG_OVERHEAD: usize = 12; // base offset (8) + batch length (4)
const MAGIC_OFFSET: usize = 16;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;

/// Decodes the record batches of one partition of a fetch response.
///
/// Brokers return whole batches, so records below `fetch_offset` are dropped; a trailing
/// partial batch (cut off by `max_bytes`) is ignored; control batches (transaction markers)
/// are skipped.
///
/// # Errors
/// [`ClientError::Protocol`] for corrupt batches (bad CRC, truncated record) and for the
/// legacy v0/v1 message formats, which this client does not read.
///
/// Every count and length inside a batch is checked against the bytes present, and a
/// compressed batch is decompressed under [`MAX_UNCOMPRESSED_BYTES`]: a hostile broker can't
/// make the client allocate more than that.
pub fn decode_batches(mut data: Bytes, fetch_offset: i64) -> Result<DecodedRecords, ClientError> {
    let mut out = DecodedRecords::default();
    let mut decoder = RecordDecoder::new(MAX_UNCOMPRESSED_BYTES);
    while data.len() >= LOG_OVERHEAD {
        let batch_length = (&data[8..12]).get_i32();
        let Ok(batch_length) = usize::try_from(batch_length) else {
            return Err(ClientError::protocol(
                "fetched records",
                format!("negative batch length {batch_length}"),
            ));
        };
        let total = LOG_OVERHEAD + batch_length;
        if data.len() < total {
            break; // partial trailing batch
        }
        let batch = data.split_to(total);
        let base_offset = (&batch[..8]).get_i64();
        let magic = batch.get(MAGIC_OFFSET).copied().unwrap_or(0) as i8;
        if magic != 2 {
            return Err(ClientError::protocol(
                format!("fetched batch at offset {base_offset}"),
                format!("message format v{magic} is not supported (only v2 record batches)"),
            ));
        }
        if batch.len() >= LAST_OFFSET_DELTA_OFFSET + 4 {
            let last_delta = (&batch[LAST_OFFSET_DELTA_OFFSET..]).get_i32();
            out.next_offset = Some(base_offset + i64::from(last_delta) + 1);
        }
        let context = || format!("fetched batch at offset {base_offset}");
        batch::validate_batch(&batch, 0).map_err(|e| ClientError::protocol(context(), e))?;
        let records = decoder
            .records(&batch, 0)
            .map_err(|e| ClientError::protocol(context(), e))?;
        let control = records.header().is_control();
        for record in records {
            let record = record.map_err(|e| ClientError::protocol(context(), e))?;
            if control || record.offset < fetch_offset {
                continue;
            }
            out.records.push(ConsumedRecord {
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key.map(Bytes::copy_from_slice),
                value: record.value.map(Bytes::copy_from_slice),
                headers: record
                    .headers()
                    .map(|h| {
                        (
                            String::from_utf8_lossy(h.key).into_owned(),
                            h.value.map(Bytes::copy_from_slice),
                        )
                    })
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// Rewrites the base offset of every complete batch in `data`, as a broker does on append.
#[cfg(test)]
pub(crate) fn set_base_offset(data: &mut BytesMut, base_offset: i64) {
    data[..8].copy_from_slice(&base_offset.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ProduceRecord> {
        vec![
            ProduceRecord {
                key: Some(Bytes::from_static(b"k1")),
                value: Some(Bytes::from_static(b"hello")),
                headers: vec![("trace".into(), Some(Bytes::from_static(b"abc")))],
                timestamp: Some(1_000),
            },
            ProduceRecord {
                key: None,
                value: Some(Bytes::from_static(b"world")),
                headers: vec![("empty".into(), None)],
                timestamp: None,
            },
            ProduceRecord {
                key: Some(Bytes::from_static(b"k3")),
                value: None,
                headers: vec![],
                timestamp: Some(3_000),
            },
        ]
    }

    #[test]
    fn round_trip_through_every_codec() {
        for compression in Compression::ALL {
            let encoded = encode_batch(&sample(), compression, 2_000).unwrap();
            let decoded = decode_batches(encoded, 0).unwrap();
            let got: Vec<_> = decoded
                .records
                .iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        0,
                        1_000,
                        Some(Bytes::from_static(b"k1")),
                        Some(Bytes::from_static(b"hello"))
                    ),
                    (1, 2_000, None, Some(Bytes::from_static(b"world"))),
                    (2, 3_000, Some(Bytes::from_static(b"k3")), None),
                ],
                "{compression:?}"
            );
            assert_eq!(
                decoded.records[0].headers,
                vec![("trace".to_string(), Some(Bytes::from_static(b"abc")))]
            );
            assert_eq!(
                decoded.records[1].headers,
                vec![("empty".to_string(), None)]
            );
            assert_eq!(decoded.next_offset, Some(3));
        }
    }

    #[test]
    fn encodes_one_batch_with_no_producer_and_no_sequence() {
        let encoded = encode_batch(&sample(), Compression::None, 0).unwrap();
        let info =
            kafka_protocol::records::RecordBatchDecoder::decode_batch_info(&mut encoded.clone())
                .unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].record_count, 3);
        assert_eq!(info[0].producer_id, -1);
        assert_eq!(info[0].base_sequence, -1);
        assert_eq!(info[0].min_offset, 0);
    }

    #[test]
    fn skips_records_below_fetch_offset_and_keeps_absolute_offsets() {
        let mut first = BytesMut::from(&encode_batch(&sample(), Compression::Lz4, 0).unwrap()[..]);
        set_base_offset(&mut first, 100);
        let mut second = BytesMut::from(
            &encode_batch(&[ProduceRecord::value("x")], Compression::None, 0).unwrap()[..],
        );
        set_base_offset(&mut second, 103);
        first.extend_from_slice(&second);
        let decoded = decode_batches(first.freeze(), 101).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![101, 102, 103]);
        assert_eq!(decoded.records[2].value, Some(Bytes::from_static(b"x")));
        assert_eq!(decoded.next_offset, Some(104));
    }

    #[test]
    fn ignores_partial_trailing_batch() {
        let one = encode_batch(&[ProduceRecord::value("a")], Compression::None, 0).unwrap();
        let mut second = BytesMut::from(&one[..]);
        set_base_offset(&mut second, 1);
        let mut data = BytesMut::from(&one[..]);
        data.extend_from_slice(&second[..second.len() - 5]);
        let decoded = decode_batches(data.freeze(), 0).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.records[0].value, Some(Bytes::from_static(b"a")));
        assert_eq!(decoded.next_offset, Some(1));
    }

    #[test]
    fn corrupt_batch_is_an_error() {
        let mut data = BytesMut::from(&encode_batch(&sample(), Compression::None, 0).unwrap()[..]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let err = decode_batches(data.freeze(), 0).unwrap_err();
        assert!(err.to_string().contains("CRC"), "{err}");
    }

    #[test]
    fn legacy_message_format_is_refused() {
        let mut data = BytesMut::from(&encode_batch(&sample(), Compression::None, 0).unwrap()[..]);
        data[MAGIC_OFFSET] = 1;
        let err = decode_batches(data.freeze(), 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("message format v1 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn empty_batch_is_refused() {
        assert!(matches!(
            encode_batch(&[], Compression::None, 0),
            Err(ClientError::InvalidArgument(_))
        ));
    }
}
