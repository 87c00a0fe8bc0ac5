//! `alert::parse` on arbitrary bytes: it must never panic, and what it accepts must be usable:
//! a non-empty identity, and targets whose ids parse back to the same target.

#![no_main]

use apc_core::alert;
use apc_core::resource_id::{ResourceId, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = alert::parse(data) else {
        return;
    };
    assert!(!a.alert_id.trim().is_empty(), "accepted an empty alert id");
    assert!(!a.identity().is_empty());
    for t in &a.targets {
        let id = t.id_string();
        let parsed = ResourceId::parse(&id).unwrap_or_else(|e| panic!("target {id:?} does not re-parse: {e}"));
        assert_eq!(Target::from_id(&parsed).as_ref(), Some(t), "target {id:?} changed on re-parse");
    }
    for (shown, reason) in &a.rejected_targets {
        assert!(!reason.is_empty(), "rejected {shown:?} without a reason");
    }
});
