//! Unit tests of the record decoder: decoding, headers, codecs (including a real
//! client library's encodings) and a round-trip property. Hostile inputs are in
//! `tests/hostile_batches.rs`.

use super::*;
use crate::batch::testing::{build_records_batch, RecordSpec, CODECS};
use proptest::prelude::*;

type Headers = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// (offset, timestamp, key, value, headers) of every record of `batch`.
#[allow(clippy::type_complexity)]
fn decode(batch: &[u8]) -> Vec<(i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, Headers)> {
    let mut decoder = RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES);
    decoder
        .records(batch, 0)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let headers = r
                .headers()
                .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                .collect();
            (
                r.offset,
                r.timestamp,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                headers,
            )
        })
        .collect()
}

fn sample() -> Vec<RecordSpec> {
    vec![
        RecordSpec {
            timestamp_delta: 5,
            offset_delta: 0,
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![
                (b"trace".to_vec(), Some(b"abc".to_vec())),
                (Vec::new(), None),
            ],
        },
        RecordSpec {
            timestamp_delta: -3,
            offset_delta: 2,
            key: None,
            value: Some(Vec::new()),
            headers: Vec::new(),
        },
    ]
}

#[test]
fn fields_headers_and_encoded_bytes_are_decoded() {
    let b = build_records_batch(100, 1_000, Compression::None, &sample());
    assert_eq!(
        decode(&b),
        vec![
            (
                100,
                1_005,
                Some(b"k".to_vec()),
                None,
                vec![(b"trace".to_vec(), Some(b"abc".to_vec())), (vec![], None)]
            ),
            (102, 997, None, Some(vec![]), vec![]),
        ]
    );
    let records = Records::uncompressed(&b, 0).unwrap();
    assert_eq!(records.header().base_offset(), 100);
    let encoded: Vec<u8> = records.flat_map(|r| r.unwrap().encoded.to_vec()).collect();
    assert_eq!(
        encoded,
        &b[HEADER_SIZE..],
        "records are contiguous, prefix included"
    );
    let first = Records::uncompressed(&b, 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!((first.header_count(), first.timestamp_delta), (2, 5));
}

#[test]
fn log_append_time_batches_give_every_record_the_max_timestamp() {
    for codec in CODECS {
        let mut b = build_records_batch(0, 1_000, codec, &sample());
        batch::set_log_append_time(&mut b, 77_777);
        let timestamps: Vec<i64> = decode(&b).into_iter().map(|r| r.1).collect();
        assert_eq!(timestamps, vec![77_777, 77_777], "{codec}");
    }
}

#[test]
fn records_uncompressed_refuses_a_compressed_batch() {
    let b = build_records_batch(0, 1_000, Compression::Zstd, &sample());
    assert_eq!(
        Records::uncompressed(&b, 7).unwrap_err(),
        RecordError::Compressed {
            position: 7,
            codec: Compression::Zstd
        }
    );
}

#[test]
fn raw_snappy_without_the_stream_header_is_read_too() {
    let xerial = build_records_batch(0, 1_000, Compression::Snappy, &sample());
    let raw_records = {
        let plain = build_records_batch(0, 1_000, Compression::None, &sample());
        snap::raw::Encoder::new()
            .compress_vec(&plain[HEADER_SIZE..])
            .unwrap()
    };
    let mut raw = xerial[..HEADER_SIZE].to_vec();
    raw.extend_from_slice(&raw_records);
    let length = (raw.len() - batch::LOG_OVERHEAD) as i32;
    raw[8..12].copy_from_slice(&length.to_be_bytes());
    batch::update_crc(&mut raw);
    assert_eq!(decode(&raw), decode(&xerial));
    assert_eq!(decode(&raw).len(), 2);
}

#[test]
fn varints_read_as_kafka_reads_them() {
    let read = |bytes: &[u8]| Cursor::new(bytes).varint(Field::KeyLength);
    assert_eq!(read(&[0x00]), Ok(0));
    assert_eq!(read(&[0x01]), Ok(-1));
    assert_eq!(read(&[0x02]), Ok(1));
    assert_eq!(read(&[0xfe, 0xff, 0xff, 0xff, 0x0f]), Ok(i32::MAX));
    assert_eq!(read(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(i32::MIN));
    assert_eq!(
        read(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        Err(RecordRule::VarintTooLong {
            field: Field::KeyLength,
            max: 5
        })
    );
    assert_eq!(
        read(&[0x80]),
        Err(RecordRule::Truncated {
            field: Field::KeyLength
        })
    );
    let long = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(
        Cursor::new(&long).varlong(Field::TimestampDelta),
        Ok(i64::MAX)
    );
}

#[test]
fn the_broker_limit_is_max_message_bytes_with_a_64_mib_floor() {
    assert_eq!(max_uncompressed_bytes(1_048_588), 64 << 20);
    assert_eq!(max_uncompressed_bytes(100 << 20), 100 << 20);
    assert_eq!(max_uncompressed_bytes(u64::MAX), i32::MAX as usize);
}

/// Batches encoded by a Kafka client library (kafka-protocol, which writes the
/// formats Kafka's Java client does) decode to the same records.
#[test]
fn batches_encoded_by_kafka_protocol_decode_with_every_codec() {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as C, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..50)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            // kafka-protocol starts a new batch where offset - sequence changes.
            sequence: i as i32,
            timestamp_type: TimestampType::Creation,
            offset: 10 + i,
            timestamp: 5_000 + i * 3,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}-").repeat(i as usize % 7))),
            headers: IndexMap::from_iter([(
                StrBytes::from_static_str("h"),
                (i % 2 == 0).then(|| Bytes::from_static(b"hv")),
            )]),
        })
        .collect();
    for (codec, theirs) in [
        (Compression::None, C::None),
        (Compression::Gzip, C::Gzip),
        (Compression::Snappy, C::Snappy),
        (Compression::Lz4, C::Lz4),
        (Compression::Zstd, C::Zstd),
    ] {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: theirs,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        assert_eq!(
            batch::validate_batch(&buf, 0).unwrap().size,
            buf.len(),
            "one batch"
        );
        assert_eq!(BatchHeader::new(&buf).unwrap().compression(), Some(codec));
        let want: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.key.as_ref().map(|k| k.to_vec()),
                    r.value.as_ref().map(|v| v.to_vec()),
                    r.headers
                        .iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.to_vec())))
                        .collect::<Headers>(),
                )
            })
            .collect();
        assert_eq!(decode(&buf), want, "{codec}");
    }
}

fn record_spec(offset_delta: i32) -> impl Strategy<Value = RecordSpec> {
    let bytes = |max| prop::collection::vec(any::<u8>(), 0..max);
    (
        -1_000_000_000_000i64..1_000_000_000_000,
        prop::option::of(bytes(32)),
        prop::option::of(bytes(200)),
        prop::collection::vec((bytes(16), prop::option::of(bytes(16))), 0..4),
    )
        .prop_map(move |(timestamp_delta, key, value, headers)| RecordSpec {
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
}

fn records_spec() -> impl Strategy<Value = Vec<RecordSpec>> {
    prop::collection::vec(any::<u8>(), 0..20).prop_flat_map(|gaps| {
        // Increasing offset deltas with random gaps (compacted batches have gaps).
        let mut delta = 0i32;
        let specs: Vec<_> = gaps
            .iter()
            .map(|gap| {
                delta += i32::from(*gap % 4);
                let s = record_spec(delta);
                delta += 1;
                s
            })
            .collect();
        specs
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random valid batches, every codec: the decoder returns exactly what was encoded.
    #[test]
    fn valid_batches_round_trip(
        codec in prop::sample::select(CODECS.to_vec()),
        base_offset in 0i64..1 << 50,
        base_timestamp in 0i64..1 << 45,
        specs in records_spec(),
    ) {
        let b = build_records_batch(base_offset, base_timestamp, codec, &specs);
        let want: Vec<_> = specs
            .iter()
            .map(|s| {
                (
                    base_offset + i64::from(s.offset_delta),
                    base_timestamp + s.timestamp_delta,
                    s.key.clone(),
                    s.value.clone(),
                    s.headers.clone(),
                )
            })
            .collect();
        prop_assert_eq!(decode(&b), want);
        prop_assert_eq!(
            RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES).check_batches(&b),
            Ok(specs.len() as u64)
        );
    }
}
