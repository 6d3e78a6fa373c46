//! Record batches a hostile producer could send, against the record decoder: counts and
//! lengths that lie, broken varints, zip bombs. Each case is built by hand with a correct
//! CRC, so only the field under test is wrong, and each asserts the exact error.

use ironlog_storage::batch::testing::{
    assemble_batch, build_records_batch, compress, compressed_zeros, put_varint, set_records_count,
    HeaderFields, RecordSpec, CODECS,
};
use ironlog_storage::batch::{BatchError, Compression};
use ironlog_storage::records::{
    Field, RecordDecoder, RecordError, RecordRule, DEFAULT_MAX_UNCOMPRESSED_BYTES, MIN_RECORD_SIZE,
};
use proptest::prelude::*;

fn spec(key: &str, value: &str, offset_delta: i32) -> RecordSpec {
    RecordSpec {
        timestamp_delta: i64::from(offset_delta),
        offset_delta,
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: vec![(b"h".to_vec(), Some(b"hv".to_vec()))],
    }
}

fn three_records() -> Vec<RecordSpec> {
    vec![spec("a", "1", 0), spec("b", "2", 1), spec("c", "3", 2)]
}

/// Header fields claiming `records_count` records (lastOffsetDelta 0) in `codec`.
fn header_fields(codec: Compression, records_count: i32) -> HeaderFields {
    HeaderFields {
        base_offset: 0,
        base_timestamp: 1_000,
        max_timestamp: 1_000,
        last_offset_delta: 0,
        records_count,
        compression: codec,
    }
}

/// A batch whose (uncompressed) records section is `raw`, compressed with `codec`, with a
/// correct CRC and the given recordsCount.
fn batch_of_raw(codec: Compression, records_count: i32, raw: &[u8]) -> Vec<u8> {
    assemble_batch(&header_fields(codec, records_count), &compress(codec, raw))
}

/// One encoded record whose body is `body` (length prefix prepended).
fn raw_record(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

/// A record body: attributes 0, deltas 0, then `rest` (key, value, headers).
fn body(rest: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8, 0, 0];
    b.extend_from_slice(rest);
    b
}

fn varints(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        put_varint(&mut out, v);
    }
    out
}

/// Decodes every record of the one batch in `batch`, as the produce path does.
fn check(batch: &[u8]) -> Result<u64, RecordError> {
    RecordDecoder::new(DEFAULT_MAX_UNCOMPRESSED_BYTES).check_batches(batch)
}

fn rule(err: RecordError) -> (i32, RecordRule) {
    match err {
        RecordError::InvalidRecord { index, rule, .. } => (index, rule),
        other => panic!("expected an invalid record, got {other:?}"),
    }
}

#[test]
fn valid_batches_of_every_codec_pass() {
    for codec in CODECS {
        let b = build_records_batch(0, 1_000, codec, &three_records());
        assert_eq!(check(&b), Ok(3), "{codec}");
    }
}

#[test]
fn a_records_count_of_2_pow_31_is_refused_before_any_record_is_read() {
    for codec in CODECS {
        let mut b = build_records_batch(0, 1_000, codec, &three_records());
        set_records_count(&mut b, i32::MAX);
        let err = check(&b).unwrap_err();
        match err {
            RecordError::TooManyRecords {
                position: 0,
                count: i32::MAX,
                available,
                max,
            } => {
                assert_eq!(max, available / MIN_RECORD_SIZE, "{codec}");
                assert!(
                    available < 100,
                    "{codec}: the real records section: {available}"
                );
            }
            other => panic!("{codec}: {other:?}"),
        }
        assert!(
            err.to_string().contains("claims 2147483647 records"),
            "{err}"
        );
    }
}

#[test]
fn a_header_count_of_2_pow_31_is_refused() {
    for codec in CODECS {
        // key "k", value "v", headerCount i32::MAX, then one real header.
        let mut rest = varints(&[1]);
        rest.push(b'k');
        rest.extend(varints(&[1]));
        rest.push(b'v');
        rest.extend(varints(&[i64::from(i32::MAX), 1]));
        rest.push(b'h');
        rest.extend(varints(&[-1]));
        let b = batch_of_raw(codec, 1, &raw_record(&body(&rest)));
        let (index, r) = rule(check(&b).unwrap_err());
        assert_eq!(index, 0);
        assert_eq!(
            r,
            RecordRule::TooManyHeaders {
                count: i32::MAX,
                available: 3
            },
            "{codec}"
        );
    }
}

#[test]
fn a_negative_header_count_is_refused() {
    let b = batch_of_raw(
        Compression::None,
        1,
        &raw_record(&body(&varints(&[-1, -1, -1]))),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::Negative {
            field: Field::HeaderCount,
            value: -1
        }
    );
}

#[test]
fn a_key_length_of_2_pow_31_minus_1_is_refused() {
    for codec in CODECS {
        let mut rest = varints(&[i64::from(i32::MAX)]);
        rest.extend_from_slice(b"short key");
        let b = batch_of_raw(codec, 1, &raw_record(&body(&rest)));
        assert_eq!(
            rule(check(&b).unwrap_err()),
            (
                0,
                RecordRule::PastEnd {
                    field: Field::KeyLength,
                    length: i32::MAX as usize,
                    available: 9
                }
            ),
            "{codec}"
        );
    }
}

#[test]
fn value_and_header_lengths_past_the_record_are_refused() {
    // value length 100 with 2 bytes left
    let b = batch_of_raw(
        Compression::None,
        1,
        &raw_record(&body(&[varints(&[-1, 100]), b"xy".to_vec()].concat())),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::PastEnd {
            field: Field::ValueLength,
            length: 100,
            available: 2
        }
    );
    // one header whose value claims 50 bytes
    let b = batch_of_raw(
        Compression::None,
        1,
        &raw_record(&body(&varints(&[-1, -1, 1, 0, 50]))),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::PastEnd {
            field: Field::HeaderValueLength,
            length: 50,
            available: 0
        }
    );
}

#[test]
fn negative_lengths_are_refused() {
    // (record bytes, expected rule)
    let cases: Vec<(Vec<u8>, RecordRule)> = vec![
        (
            // record length -1
            varints(&[-1, 0, 0, 0, -1, -1, 0]),
            RecordRule::Negative {
                field: Field::Length,
                value: -1,
            },
        ),
        (
            raw_record(&body(&varints(&[-2, -1, 0]))),
            RecordRule::Negative {
                field: Field::KeyLength,
                value: -2,
            },
        ),
        (
            raw_record(&body(&varints(&[-1, i64::from(i32::MIN), 0]))),
            RecordRule::Negative {
                field: Field::ValueLength,
                value: i32::MIN,
            },
        ),
        (
            raw_record(&body(&varints(&[-1, -1, 1, -1, -1]))),
            RecordRule::Negative {
                field: Field::HeaderKeyLength,
                value: -1,
            },
        ),
        (
            raw_record(&body(&varints(&[-1, -1, 1, 0, -7]))),
            RecordRule::Negative {
                field: Field::HeaderValueLength,
                value: -7,
            },
        ),
    ];
    for (raw, want) in cases {
        for codec in CODECS {
            let b = batch_of_raw(codec, 1, &raw);
            assert_eq!(rule(check(&b).unwrap_err()), (0, want), "{codec}");
        }
    }
}

#[test]
fn truncated_and_overlong_varints_are_refused() {
    // A record length varint cut off by the end of the records section (after a valid
    // record, so recordsCount still fits the bytes).
    let mut raw = raw_record(&body(
        &[varints(&[-1, 8]), b"12345678".to_vec(), varints(&[0])].concat(),
    ));
    raw.extend_from_slice(&[0x80, 0x80, 0x80, 0x80]);
    let b = batch_of_raw(Compression::None, 2, &raw);
    assert_eq!(
        rule(check(&b).unwrap_err()),
        (
            1,
            RecordRule::Truncated {
                field: Field::Length
            }
        )
    );
    // A key length varint cut off by the end of its record.
    let b = batch_of_raw(
        Compression::Zstd,
        1,
        &raw_record(&body(&[0x80, 0x80, 0x80, 0x80])),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::Truncated {
            field: Field::KeyLength
        }
    );
    // An offset delta varint of 6 bytes; Kafka's limit is 5.
    let b = batch_of_raw(
        Compression::None,
        1,
        &raw_record(&[0, 0, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01, 1, 1, 0]),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::VarintTooLong {
            field: Field::OffsetDelta,
            max: 5
        }
    );
    // A timestamp delta varlong of 11 bytes.
    let mut rec = vec![0u8];
    rec.extend([0xff; 10]);
    rec.extend([0x01, 0, 1, 1, 0]);
    let b = batch_of_raw(Compression::Gzip, 1, &raw_record(&rec));
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::VarintTooLong {
            field: Field::TimestampDelta,
            max: 10
        }
    );
}

#[test]
fn record_length_must_match_its_fields() {
    // Fields use 6 bytes; the length says 8.
    let mut rec = body(&varints(&[-1, -1, 0]));
    rec.extend([0, 0]);
    let b = batch_of_raw(Compression::Lz4, 1, &raw_record(&rec));
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::LengthMismatch { length: 8, used: 6 }
    );
    // A record length past the records section.
    let b = batch_of_raw(
        Compression::None,
        1,
        &[varints(&[50]), body(&varints(&[-1, -1, 0]))].concat(),
    );
    assert_eq!(
        rule(check(&b).unwrap_err()).1,
        RecordRule::PastEnd {
            field: Field::Length,
            length: 50,
            available: 6
        }
    );
}

#[test]
fn records_count_must_match_the_records_present() {
    for codec in CODECS {
        let mut b = build_records_batch(0, 1_000, codec, &three_records());
        set_records_count(&mut b, 2);
        match check(&b).unwrap_err() {
            RecordError::TrailingBytes {
                position: 0,
                count: 2,
                extra,
            } => assert!(extra > 0),
            other => panic!("{codec}: {other:?}"),
        }
        set_records_count(&mut b, 4);
        assert_eq!(
            check(&b).unwrap_err(),
            RecordError::MissingRecords {
                position: 0,
                count: 4,
                found: 3
            },
            "{codec}"
        );
    }
}

#[test]
fn zip_bombs_stop_at_the_limit() {
    const LIMIT: usize = 1 << 20;
    for codec in CODECS.into_iter().skip(1) {
        // 16 MiB of zeros: a few KiB compressed; must be refused after ~1 MiB of output.
        let bomb = compressed_zeros(codec, 16 << 20);
        assert!(bomb.len() < 1 << 20, "{codec}: {} bytes", bomb.len());
        let fields = header_fields(codec, 1);
        let b = assemble_batch(&fields, &bomb);
        let mut decoder = RecordDecoder::new(LIMIT);
        assert_eq!(
            decoder.check_batches(&b).unwrap_err(),
            RecordError::DecompressionLimit {
                position: 0,
                codec,
                limit: LIMIT
            },
            "{codec}"
        );
    }
}

#[test]
fn the_limit_is_exact() {
    // A records section of exactly `n` bytes passes a limit of n and fails n - 1.
    for codec in CODECS.into_iter().skip(1) {
        let b = build_records_batch(0, 0, codec, &three_records());
        let n = RecordDecoder::new(1 << 20)
            .records(&b, 0)
            .unwrap()
            .section_len();
        assert_eq!(RecordDecoder::new(n).check_batches(&b), Ok(3), "{codec}");
        assert!(
            matches!(
                RecordDecoder::new(n - 1).check_batches(&b),
                Err(RecordError::DecompressionLimit { .. })
            ),
            "{codec}"
        );
    }
}

#[test]
fn a_snappy_block_claiming_a_huge_length_is_refused_before_allocating() {
    // Raw snappy: a varint uncompressed length (here 2^32 - 1) then literals.
    let mut block = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    block.extend([0x00, b'x']);
    let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    xerial.extend((block.len() as u32).to_be_bytes());
    xerial.extend(&block);
    for section in [block, xerial] {
        let fields = header_fields(Compression::Snappy, 1);
        let b = assemble_batch(&fields, &section);
        assert!(matches!(
            check(&b),
            Err(RecordError::DecompressionLimit {
                codec: Compression::Snappy,
                ..
            })
        ));
    }
}

#[test]
fn garbage_in_a_compressed_batch_is_a_decompression_error() {
    for codec in CODECS.into_iter().skip(1) {
        let fields = header_fields(codec, 1);
        let b = assemble_batch(&fields, b"this is not compressed at all");
        match check(&b) {
            Err(RecordError::Decompression {
                position: 0,
                codec: c,
                ..
            }) => assert_eq!(c, codec),
            other => panic!("{codec}: {other:?}"),
        }
    }
}

#[test]
fn a_damaged_batch_is_reported_as_a_crc_mismatch_not_as_malformed() {
    for codec in CODECS {
        let mut b = build_records_batch(0, 1_000, codec, &three_records());
        let last = b.len() - 3;
        b[last] ^= 0x55;
        assert!(
            matches!(
                check(&b),
                Err(RecordError::Batch(BatchError::CrcMismatch {
                    position: 0,
                    ..
                }))
            ),
            "{codec}: {:?}",
            check(&b)
        );
    }
}

#[test]
fn errors_name_the_batch_that_is_wrong() {
    let good = build_records_batch(0, 1_000, Compression::None, &three_records());
    let mut bad = build_records_batch(3, 1_000, Compression::Gzip, &three_records());
    set_records_count(&mut bad, i32::MAX);
    let buf = [good.clone(), bad].concat();
    let err = check(&buf).unwrap_err();
    assert!(
        matches!(err, RecordError::TooManyRecords { position, .. } if position == good.len()),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("batch at byte {}", good.len())),
        "{err}"
    );
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(CODECS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever bytes of a valid batch are changed (CRC recomputed, so the decoder really
    /// reads them), decoding ends with records or an error: no panic, no runaway allocation.
    #[test]
    fn mutated_batches_never_panic(
        codec in codec(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = build_records_batch(0, 1_000, codec, &three_records());
        for (at, byte) in edits {
            // Keep the header's length and magic intact: header damage is batch.rs's domain.
            let i = 21 + at.index(b.len() - 21);
            b[i] = byte;
        }
        ironlog_storage::batch::update_crc(&mut b);
        let mut decoder = RecordDecoder::new(1 << 20);
        if let Ok(records) = decoder.records(&b, 0) {
            for r in records.take(1_000) {
                if r.is_err() {
                    break;
                }
            }
        }
    }
}
