//! Fire times in every shape Azure is known to send (issue 8), in every field the parser reads
//! them from, on the real samples in `testdata/azure-samples/alerts/`. Where each shape was
//! seen is recorded in `timefmt`'s unit tests.

use apc_core::alert::{AlertError, parse};
use apc_core::timefmt::rfc3339;
use apc_testkit::alerts::{CLASSIC_SAMPLE, COMMON_SAMPLE, METRIC_SAMPLE};
use apc_testkit::http::sample_json;
use proptest::prelude::*;
use serde_json::{Value, json};

/// (sample, JSON pointer of the fire time) for each schema.
const FIELDS: [(&str, &str); 5] = [
    (COMMON_SAMPLE, "/data/essentials/firedDateTime"),
    (METRIC_SAMPLE, "/data/context/timestamp"),
    (CLASSIC_SAMPLE, "/context/timestamp"),
    ("alerts/noncommon.activitylog-admin.vm-restart.json", "/data/context/activityLog/eventTimestamp"),
    ("alerts/noncommon.activitylog.servicehealth.json", "/data/context/activityLog/eventTimestamp"),
];

/// (as sent, UTC it means).
const SHAPES: [(&str, &str); 12] = [
    ("2019-03-22T13:58:24.3713213Z", "2019-03-22T13:58:24Z"),
    ("2025-04-15T18:19:45.304Z", "2025-04-15T18:19:45Z"),
    ("2016-09-07T12:35:24Z", "2016-09-07T12:35:24Z"),
    ("2017-03-29T15:43:08.0019532+00:00", "2017-03-29T15:43:08Z"),
    ("2017-03-29T17:43:08.0019532+02:00", "2017-03-29T15:43:08Z"),
    ("2017-03-29T10:43:08-05:00", "2017-03-29T15:43:08Z"),
    ("2018-08-23T19:06:35.999", "2018-08-23T19:06:35Z"),
    ("2019-03-22t13:58:24.3713213z", "2019-03-22T13:58:24Z"),
    ("2023-06-07 08:06:56Z", "2023-06-07T08:06:56Z"),
    ("9/7/2016 12:35:24PM", "2016-09-07T12:35:24Z"),
    ("3/22/2019 1:36:33 PM", "2019-03-22T13:36:33Z"),
    ("06/25/2017 19:59:39", "2017-06-25T19:59:39Z"),
];

fn with_time(name: &str, pointer: &str, time: Value) -> Vec<u8> {
    let mut v = sample_json(name);
    *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{name} has no {pointer}")) = time;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn every_shape_is_read_in_every_field() {
    for (name, pointer) in FIELDS {
        for (text, utc) in SHAPES {
            let a = parse(&with_time(name, pointer, json!(text)))
                .unwrap_or_else(|e| panic!("{name} {pointer} = {text:?}: {e}"));
            assert_eq!(rfc3339(a.fired_at), utc, "{name} {pointer} = {text:?}");
            assert!(a.identity().ends_with(&format!("|{utc}")), "{}", a.identity());
        }
    }
}

#[test]
fn the_same_instant_in_two_shapes_is_the_same_alert() {
    // A relay that rewrites `+00:00` as `Z`, or drops the fraction, must not defeat de-duplication.
    let (name, pointer) = FIELDS[3];
    let a = parse(&with_time(name, pointer, json!("2017-03-29T15:43:08.0019532+00:00"))).unwrap();
    let b = parse(&with_time(name, pointer, json!("2017-03-29T15:43:08Z"))).unwrap();
    let c = parse(&with_time(name, pointer, json!("3/29/2017 3:43:08 PM"))).unwrap();
    assert_eq!(a.identity(), b.identity());
    assert_eq!(a.identity(), c.identity());
}

#[test]
fn unreadable_times_are_a_400_naming_the_field() {
    for (name, pointer) in FIELDS {
        for bad in [json!("yesterday"), json!("2019-02-30T13:58:24Z"), json!("9/7/2016 13:35:24PM"), json!("")] {
            let e = parse(&with_time(name, pointer, bad.clone())).unwrap_err();
            assert_eq!(e.status(), 400);
            let AlertError::Invalid(m) = &e else { panic!("{name}: {e:?}") };
            assert!(m.starts_with(&format!("{pointer} is ")), "{m}");
            assert!(m.contains("not a time we can read"), "{m}");
        }
        let not_text = parse(&with_time(name, pointer, json!(1_553_263_104)));
        if pointer.contains("activityLog") {
            // As before: a relay that broke eventTimestamp falls back to submissionTimestamp.
            assert!(not_text.is_ok(), "{name}");
        } else {
            assert_eq!(not_text.unwrap_err(), AlertError::Invalid(format!("{pointer} is a number, expected a string")));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_fire_time_text_never_panics(text in any::<String>(), which in 0usize..FIELDS.len()) {
        let (name, pointer) = FIELDS[which];
        match parse(&with_time(name, pointer, json!(text))) {
            Ok(a) => prop_assert!(!a.identity().is_empty()),
            Err(e) => prop_assert!(matches!(&e, AlertError::Invalid(m) if m.contains(pointer)), "{e}"),
        }
    }
}
