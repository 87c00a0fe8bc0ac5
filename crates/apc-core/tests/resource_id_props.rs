//! Properties of the strict ARM id parser, the target classifier and the URL builder (SPEC §10).

use apc_core::resource_id::{MAX_NAME_LEN, ResourceId, Target, arm_url};
use proptest::prelude::*;
use proptest::sample::select;

/// One id as generated: its text and what `to_string()` must give back.
#[derive(Debug, Clone)]
struct Generated {
    text: String,
    canonical: String,
}

/// `word` with each ASCII letter's case chosen by `mask`.
fn recase(word: &str, mask: u64) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| if (mask >> (i % 64)) & 1 == 1 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect()
}

fn guid() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
}

/// Resource group and resource names: the ASCII subset ARM ids may hold, no `..`, no dot at
/// either end.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_()-]([A-Za-z0-9_().-]{0,20}[A-Za-z0-9_()-])?".prop_filter("no '..'", |s| !s.contains(".."))
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|m| recase("Microsoft.Compute", m)),
        "[A-Za-z][A-Za-z0-9]{0,10}(\\.[A-Za-z][A-Za-z0-9]{0,10}){1,2}",
    ]
}

fn resource_type() -> impl Strategy<Value = String> {
    prop_oneof![
        (select(vec!["virtualMachines", "virtualMachineScaleSets", "extensions"]), any::<u64>())
            .prop_map(|(t, m)| recase(t, m)),
        "[A-Za-z][A-Za-z0-9]{0,15}",
    ]
}

/// Valid ids, with keywords and subscription in random case.
fn valid_id() -> impl Strategy<Value = Generated> {
    (guid(), name(), namespace(), prop::collection::vec((resource_type(), name()), 1..=3), any::<u64>()).prop_map(
        |(sub, rg, ns, pairs, mask)| {
            let mut text = format!(
                "/{}/{sub}/{}/{rg}/{}/{ns}",
                recase("subscriptions", mask),
                recase("resourceGroups", mask >> 13),
                recase("providers", mask >> 29),
            );
            let mut canonical =
                format!("/subscriptions/{}/resourceGroups/{rg}/providers/{ns}", sub.to_ascii_lowercase());
            for (t, n) in &pairs {
                text.push_str(&format!("/{t}/{n}"));
                canonical.push_str(&format!("/{t}/{n}"));
            }
            Generated { text, canonical }
        },
    )
}

fn segments(id: &str) -> Vec<String> {
    id.trim_start_matches('/').split('/').map(str::to_string).collect()
}

fn join(segs: &[String]) -> String {
    format!("/{}", segs.join("/"))
}

/// Things that must never appear in an accepted id.
fn forbidden() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["..", "?", "#", "%", "@", "//", "%2F", "\\", " "]).prop_map(str::to_string),
        (0u8..0x20).prop_map(|b| char::from(b).to_string()),
        Just("\u{7f}".to_string()),
        // Non-ASCII letters and digits are allowed in resource group names (issue 8); anything
        // non-ASCII that is not alphanumeric is refused everywhere.
        any::<char>()
            .prop_filter("non-ASCII, not alphanumeric", |c| !c.is_ascii() && !c.is_alphanumeric())
            .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = ResourceId::parse(&s);
    }

    #[test]
    fn never_panics_on_id_like_strings(s in "[/a-zA-Z0-9.%?#@ ()_-]{0,200}") {
        if let Ok(id) = ResourceId::parse(&s) {
            // Whatever is accepted is stable under printing and parsing again.
            prop_assert_eq!(ResourceId::parse(&id.to_string()), Ok(id));
        }
    }

    #[test]
    fn never_panics_on_almost_valid_ids(
        g in valid_id(),
        at in any::<prop::sample::Index>(),
        replacement in prop_oneof![any::<String>(), "[a-zA-Z0-9./]{0,8}", forbidden()],
        op in 0u8..3,
    ) {
        let mut segs = segments(&g.text);
        let i = at.index(segs.len());
        match op {
            0 => segs[i] = replacement,
            1 => { segs.remove(i); }
            _ => segs.insert(i, replacement),
        }
        if let Ok(id) = ResourceId::parse(&join(&segs)) {
            prop_assert_eq!(ResourceId::parse(&id.to_string()), Ok(id));
        }
    }

    #[test]
    fn valid_ids_round_trip(g in valid_id()) {
        let id = ResourceId::parse(&g.text).expect("generated ids are valid");
        prop_assert_eq!(id.to_string(), g.canonical.clone());
        prop_assert!(id.to_string().eq_ignore_ascii_case(&g.text));
        prop_assert_eq!(ResourceId::parse(&id.to_string()), Ok(id.clone()));
        prop_assert_eq!(id.normalized(), g.canonical.to_ascii_lowercase());
        // One trailing slash is tolerated and means the same id.
        prop_assert_eq!(ResourceId::parse(&format!("{}/", g.text)), Ok(id));
    }

    #[test]
    fn forbidden_text_anywhere_is_refused(
        g in valid_id(),
        at in any::<prop::sample::Index>(),
        bad in forbidden(),
    ) {
        // Insert on a char boundary (generated ids are ASCII, so any byte index is one).
        let pos = at.index(g.text.len() + 1);
        let mut s = g.text.clone();
        s.insert_str(pos, &bad);
        prop_assert!(ResourceId::parse(&s).is_err(), "accepted {:?}", s);
    }

    #[test]
    fn wrong_segment_counts_are_refused(g in valid_id(), extra in name(), cut in 0usize..7) {
        let segs = segments(&g.text);
        // A type without a name.
        let mut odd = segs.clone();
        odd.push(extra);
        prop_assert!(ResourceId::parse(&join(&odd)).is_err());
        prop_assert!(ResourceId::parse(&join(&segs[..segs.len() - 1])).is_err());
        // Too short to name a resource at all.
        prop_assert!(ResourceId::parse(&join(&segs[..cut.min(segs.len())])).is_err());
    }

    #[test]
    fn overlong_names_are_refused(g in valid_id(), len in (MAX_NAME_LEN + 1)..(MAX_NAME_LEN + 40)) {
        let mut segs = segments(&g.text);
        let last = segs.len() - 1;
        segs[last] = "a".repeat(len);
        prop_assert!(ResourceId::parse(&join(&segs)).is_err());
    }

    #[test]
    fn targets_are_only_compute_vms_and_scale_sets(g in valid_id()) {
        let id = ResourceId::parse(&g.text).expect("valid");
        let compute = id.namespace().eq_ignore_ascii_case("Microsoft.Compute");
        let types: Vec<String> = id.resources().iter().map(|(t, _)| t.to_ascii_lowercase()).collect();
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        let target = Target::from_id(&id);
        match (compute, types.as_slice()) {
            (true, ["virtualmachines"]) => prop_assert!(matches!(target, Some(Target::Vm(_)))),
            (true, ["virtualmachinescalesets"]) => prop_assert!(matches!(target, Some(Target::Vmss(_)))),
            (true, ["virtualmachinescalesets", "virtualmachines"]) => {
                prop_assert!(matches!(target, Some(Target::VmssInstance { .. })), "{:?}", id)
            }
            _ => prop_assert!(target.is_none(), "{:?} accepted", id),
        }
        if let Some(t) = Target::from_id(&id) {
            // The canonical id names the same resource and parses back to the same target.
            prop_assert!(t.id_string().eq_ignore_ascii_case(&g.canonical));
            prop_assert_eq!(t.key(), g.canonical.to_ascii_lowercase());
            let again = ResourceId::parse(&t.id_string()).expect("canonical id parses");
            prop_assert_eq!(Target::from_id(&again), Some(t.clone()));
            prop_assert!(t.capture_target().namespace() == "Microsoft.Compute");
        }
    }

    #[test]
    fn arm_url_paths_hold_one_slash_per_segment(g in valid_id()) {
        let id = ResourceId::parse(&g.text).expect("valid");
        let segs = id.path_segments();
        let url = arm_url("https://management.azure.com/", &segs, "2025-07-01");
        let path = check_url(&url, "https://management.azure.com", "2025-07-01");
        prop_assert_eq!(path.matches('/').count(), segs.len());
        let decoded: Vec<String> = path[1..].split('/').map(percent_decode).collect();
        prop_assert_eq!(decoded, segs);
    }

    #[test]
    fn arm_url_escapes_any_segment(
        segs in prop::collection::vec(
            any::<String>().prop_filter("dot and empty segments are ids' job", |s| {
                !s.is_empty() && s != "." && s != ".."
            }),
            1..6,
        ),
        version in any::<String>(),
    ) {
        let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let url = arm_url("http://127.0.0.1:8089", &refs, &version);
        let path = check_url(&url, "http://127.0.0.1:8089", &version);
        prop_assert_eq!(path.matches('/').count(), segs.len());
        let decoded: Vec<String> = path[1..].split('/').map(percent_decode).collect();
        prop_assert_eq!(decoded, segs);
    }
}

/// Check the URL's shape and return its path: the path holds no `?` or `#`, every `%` starts a
/// `%XX` escape, and the query is exactly the (escaped) api-version.
fn check_url<'a>(url: &'a str, endpoint: &str, version: &str) -> &'a str {
    let rest = url.strip_prefix(endpoint).expect("starts with the endpoint");
    let (path, query) = rest.split_once('?').expect("has a query");
    assert!(!path.contains('#') && !query.contains('#') && !query.contains('?'), "{url}");
    for part in [path, query] {
        assert!(part.is_ascii() && !part.bytes().any(|b| b.is_ascii_control() || b == b' '), "{url}");
        let b = part.as_bytes();
        for (i, _) in part.match_indices('%') {
            assert!(b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(), "bare % in {url}");
        }
    }
    let v = query.strip_prefix("api-version=").expect("api-version query");
    assert_eq!(percent_decode(v), version);
    path
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("escapes decode to UTF-8")
}

/// The three target shapes, built with random casing, and the expected variant (0 VM, 1 scale
/// set, 2 scale-set instance).
fn target_shape() -> impl Strategy<Value = (String, usize, String)> {
    (guid(), name(), name(), "[0-9]{1,4}", 0usize..3, any::<u64>()).prop_map(|(sub, rg, n, inst, shape, mask)| {
        let ns = recase("Microsoft.Compute", mask);
        let vm = recase("virtualMachines", mask >> 17);
        let ss = recase("virtualMachineScaleSets", mask >> 32);
        let tail = match shape {
            0 => format!("{vm}/{n}"),
            1 => format!("{ss}/{n}"),
            _ => format!("{ss}/{n}/{vm}/{inst}"),
        };
        let id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{tail}");
        let display = if shape == 2 { format!("{n}_{inst}") } else { n };
        (id, shape, display)
    })
}

proptest! {
    #[test]
    fn target_shapes_are_accepted_in_any_case((text, shape, display) in target_shape()) {
        let id = ResourceId::parse(&text).expect("valid");
        let t = Target::from_id(&id).expect("a target shape");
        let got = match &t {
            Target::Vm(_) => 0,
            Target::Vmss(_) => 1,
            Target::VmssInstance { .. } => 2,
        };
        prop_assert_eq!(got, shape);
        prop_assert_eq!(t.display_name(), display);
        prop_assert_eq!(t.key(), text.to_ascii_lowercase());
        let canonical = t.id_string();
        prop_assert!(canonical.contains("/providers/Microsoft.Compute/virtualMachine"), "{}", canonical);
    }
}

#[test]
fn near_miss_shapes_are_not_targets() {
    let base = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers";
    for tail in [
        "Microsoft.ClassicCompute/virtualMachines/vm",
        "Microsoft.Compute/virtualMachines/vm/extensions/ext",
        "Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/1/networkInterfaces/nic",
        "Microsoft.Compute/virtualMachineScaleSets/ss/extensions/e",
        "Microsoft.Compute/disks/d",
        "Microsoft.Compute/virtualMachine/vm",
        "Microsoft.Network/virtualMachines/vm",
    ] {
        let id = ResourceId::parse(&format!("{base}/{tail}")).expect("a valid id");
        assert_eq!(Target::from_id(&id), None, "{tail}");
    }
}
