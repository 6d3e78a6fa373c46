use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, RequestHeader, RequestKind,
    ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::gen::{generate, mutate, Options, Rng};
use super::tables::{self, APIS};
use super::*;

const SEEDS: u64 = 40;

/// Decodes `bytes` with the crate's decoder and checks it took every byte; re-encoding what
/// it decoded must give the same bytes when no tagged fields were written (kafka-protocol
/// leaves out tagged fields equal to their defaults, so with tags only the decoded values
/// are compared).
fn round_trip<T, D, E>(what: &str, bytes: &[u8], exact: bool, decode: D, encode: E)
where
    T: PartialEq + std::fmt::Debug,
    D: Fn(&mut Bytes) -> anyhow::Result<T>,
    E: Fn(&T, &mut BytesMut) -> anyhow::Result<()>,
{
    let mut buf = Bytes::copy_from_slice(bytes);
    let first = decode(&mut buf).unwrap_or_else(|e| panic!("{what}: decoder refused: {e:#}"));
    assert_eq!(buf.len(), 0, "{what}: decoder left {} bytes", buf.len());
    let mut again = BytesMut::new();
    encode(&first, &mut again).unwrap_or_else(|e| panic!("{what}: re-encode: {e:#}"));
    if exact {
        assert_eq!(&again[..], bytes, "{what}: re-encoding differs");
    }
    let second = decode(&mut again.freeze()).unwrap();
    assert_eq!(first, second, "{what}");
}

fn each_version(layout: &'static Struct, mut f: impl FnMut(i16)) {
    for v in layout.versions.0..=layout.versions.1 {
        f(v)
    }
}

#[test]
fn layouts_agree_with_the_decoder_for_every_request_and_response_version() {
    let mut cases = 0;
    for &(api, req, resp) in APIS {
        for (layout, is_request) in [(req, true), (resp, false)] {
            each_version(layout, |v| {
                for seed in 0..SEEDS {
                    let tagged = seed % 2 == 1;
                    let mut rng = Rng::new(seed);
                    let enc = generate(
                        layout,
                        v,
                        &mut rng,
                        Options {
                            tagged,
                            ..Options::default()
                        },
                    );
                    let what = format!("{} v{v} seed {seed}", layout.name);
                    assert_eq!(check(layout, v, &enc.bytes), Ok(enc.bytes.len()), "{what}");
                    if is_request {
                        round_trip(
                            &what,
                            &enc.bytes,
                            !tagged,
                            |b| RequestKind::decode(api, b, v),
                            |m, out| m.encode(out, v),
                        );
                    } else {
                        round_trip(
                            &what,
                            &enc.bytes,
                            !tagged,
                            |b| ResponseKind::decode(api, b, v),
                            |m, out| m.encode(out, v),
                        );
                    }
                    cases += 1;
                }
            });
        }
    }
    assert!(cases > 5000, "only {cases} cases");
}

fn typed_round_trip<T: Decodable + Encodable + PartialEq + std::fmt::Debug>(
    layout: &'static Struct,
) {
    each_version(layout, |v| {
        for seed in 0..SEEDS {
            let tagged = seed % 2 == 1;
            let enc = generate(
                layout,
                v,
                &mut Rng::new(seed),
                Options {
                    tagged,
                    ..Options::default()
                },
            );
            assert_eq!(check(layout, v, &enc.bytes), Ok(enc.bytes.len()));
            round_trip(
                &format!("{} v{v} seed {seed}", layout.name),
                &enc.bytes,
                !tagged,
                |b| T::decode(b, v),
                |m, out| m.encode(out, v),
            );
        }
    });
}

#[test]
fn layouts_agree_with_the_decoder_for_headers_and_consumer_protocol() {
    typed_round_trip::<RequestHeader>(&tables::request_header::REQUEST_HEADER);
    typed_round_trip::<ResponseHeader>(&tables::response_header::RESPONSE_HEADER);
    typed_round_trip::<ConsumerProtocolSubscription>(
        &tables::consumer_protocol_subscription::CONSUMER_PROTOCOL_SUBSCRIPTION,
    );
    typed_round_trip::<ConsumerProtocolAssignment>(
        &tables::consumer_protocol_assignment::CONSUMER_PROTOCOL_ASSIGNMENT,
    );
}

#[test]
fn the_metadata_request_that_crashed_the_broker_is_refused_before_allocating() {
    // Metadata v4: topics array claiming 0x7fffffff elements, then nothing.
    let body = [0x7f, 0xff, 0xff, 0xff, 0x01];
    let layout = request_layout(ApiKey::Metadata).unwrap();
    let err = check(layout, 4, &body).unwrap_err();
    assert_eq!(err.path, "topics");
    assert_eq!(err.offset, 0);
    assert_eq!(
        err.reason,
        Reason::CountTooLarge {
            count: 0x7fff_ffff,
            min_each: 2,
            remaining: 1
        }
    );
    // The same in the compact encoding (v9+): count 0xffffffff - 1.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x00];
    let err = check(layout, 12, &body).unwrap_err();
    assert!(
        matches!(
            err.reason,
            Reason::CountTooLarge {
                count: 0xffff_fffe,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn long_strings_bytes_and_tagged_fields_are_refused() {
    // DescribeGroups v5 (flexible): one group name, a compact string claiming 4 GiB.
    let layout = request_layout(ApiKey::DescribeGroups).unwrap();
    let body = [0x02, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let err = check(layout, 5, &body).unwrap_err();
    assert_eq!(err.path, "groups[0]");
    assert!(
        matches!(
            err.reason,
            Reason::Truncated {
                needed: 0xffff_fffe,
                ..
            }
        ),
        "{err}"
    );
    // Produce v3: records (bytes) claiming i32::MAX.
    let layout = request_layout(ApiKey::Produce).unwrap();
    let mut body = vec![
        0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    let err = check(layout, 3, &body).unwrap_err();
    assert_eq!(err.path, "topic_data[0].partition_data[0].records");
    // A negative length other than -1.
    body.truncate(body.len() - 4);
    body.extend_from_slice(&(-7i32).to_be_bytes());
    let err = check(layout, 3, &body).unwrap_err();
    assert_eq!(err.reason, Reason::NegativeLength { length: -7 });
    // Metadata v9: a tagged-field section claiming u32::MAX fields.
    let layout = request_layout(ApiKey::Metadata).unwrap();
    let body = [0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let err = check(layout, 9, &body).unwrap_err();
    assert!(
        matches!(err.reason, Reason::CountTooLarge { min_each: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_known_tagged_field_whose_size_lies_is_refused() {
    // Fetch v12 request, tag 0 (cluster_id, a compact string "ab") with size 9.
    let layout = request_layout(ApiKey::Fetch).unwrap();
    let mut enc = generate(layout, 12, &mut Rng::new(1), Options::default());
    // Replace the trailing empty tagged-field section with one holding the lying tag.
    assert_eq!(enc.bytes.pop(), Some(0));
    enc.bytes.extend_from_slice(&[1, 0, 9, 3, b'a', b'b']);
    let err = check(layout, 12, &enc.bytes).unwrap_err();
    assert!(
        matches!(
            err.reason,
            Reason::Truncated { .. } | Reason::TaggedSizeMismatch { .. }
        ),
        "{err}"
    );
    enc.bytes.truncate(enc.bytes.len() - 6);
    enc.bytes.extend_from_slice(&[1, 0, 2, 3, b'a', b'b']);
    let err = check(layout, 12, &enc.bytes).unwrap_err();
    assert_eq!(
        err.reason,
        Reason::TaggedSizeMismatch {
            tag: 0,
            size: 2,
            actual: 3
        }
    );
}

/// Structure-aware mutations of valid messages never get past the check into a decoder
/// allocation the frame can't pay for: whatever passes the check decodes (or fails) with
/// every allocation bounded. A regression here aborts the test process.
#[test]
fn mutated_messages_never_crash_the_decoders() {
    let mut refused = 0u64;
    let mut total = 0u64;
    for &(api, req, resp) in APIS {
        for (layout, is_request) in [(req, true), (resp, false)] {
            each_version(layout, |v| {
                for seed in 0..60 {
                    let mut rng = Rng::new(seed ^ ((api as u64) << 32) ^ ((v as u64) << 16));
                    let enc = generate(
                        layout,
                        v,
                        &mut rng,
                        Options {
                            tagged: seed % 2 == 0,
                            ..Options::default()
                        },
                    );
                    let bytes = mutate(&enc, &mut rng);
                    total += 1;
                    if check(layout, v, &bytes).is_err() {
                        refused += 1;
                        continue;
                    }
                    let mut b = Bytes::from(bytes);
                    let _ = if is_request {
                        RequestKind::decode(api, &mut b, v).map(drop)
                    } else {
                        ResponseKind::decode(api, &mut b, v).map(drop)
                    };
                }
            });
        }
    }
    assert!(
        total > 8000 && refused > total / 4,
        "{refused} of {total} refused"
    );
}

#[test]
fn decode_checks_first() {
    let layout = &tables::consumer_protocol_assignment::CONSUMER_PROTOCOL_ASSIGNMENT;
    let mut hostile = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    let err = decode::<ConsumerProtocolAssignment>(layout, &mut hostile, 0).unwrap_err();
    assert!(matches!(err, CheckedDecodeError::Wire(_)), "{err}");
    let mut ok = Bytes::from_static(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let a = decode::<ConsumerProtocolAssignment>(layout, &mut ok, 0).unwrap();
    assert!(a.assigned_partitions.is_empty() && a.user_data.is_none());
}
