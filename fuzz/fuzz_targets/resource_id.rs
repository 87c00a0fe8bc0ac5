//! `ResourceId::parse` and `Scope::parse` on arbitrary strings: never panic; what they accept
//! prints back to an equal value, and the URL built from it has one query and no fragment.

#![no_main]

use apc_core::resource_id::{ResourceId, Scope, Target, arm_url};
use libfuzzer_sys::fuzz_target;

/// The path of a URL built by `arm_url` holds no raw `?`, `#`, traversal or empty segment.
fn check_url(url: &str, segments: usize) {
    let (path, version) = url.split_once("?api-version=").expect("api-version query");
    assert_eq!(version, "2025-07-01", "{url}");
    let path = path.strip_prefix("https://management.azure.com/").expect("the endpoint");
    assert!(!path.contains(['?', '#', '\\', ' ']), "raw delimiter in {url}");
    let parts: Vec<&str> = path.split('/').collect();
    assert_eq!(parts.len(), segments, "segment count changed in {url}");
    assert!(parts.iter().all(|p| !p.is_empty() && *p != "." && *p != ".."), "{url}");
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(id) = ResourceId::parse(&s) {
        let printed = id.to_string();
        let again = ResourceId::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not re-parse: {e}"));
        assert_eq!(again, id, "{printed:?}");
        let segments = id.path_segments();
        check_url(&arm_url("https://management.azure.com", &segments, "2025-07-01"), segments.len());
        if let Some(t) = Target::from_id(&id) {
            let reparsed = ResourceId::parse(&t.id_string()).expect("a target id re-parses");
            assert_eq!(Target::from_id(&reparsed), Some(t));
        }
    }
    if let Ok(scope) = Scope::parse(&s) {
        let printed = scope.to_string();
        let again = Scope::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not re-parse: {e}"));
        assert_eq!(again, scope, "{printed:?}");
        let segments = scope.path_segments();
        check_url(&arm_url("https://management.azure.com", &segments, "2025-07-01"), segments.len());
    }
});
