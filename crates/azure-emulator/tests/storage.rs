//! Blob storage for captures, over real HTTP: the Storage audience, user delegation keys, a SAS
//! made by hand here (this file's own string-to-sign), ranges, the role switch, and the traffic
//! scenarios of the capture files.

mod common;

use std::time::Duration;

use azure_emulator::Emulator;
use azure_emulator::pcap::{Scenario, capture_file};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NET_API: &str = "2025-07-01";
const VERSION: &str = "2025-01-05";

fn storage_token(emu: &Emulator) -> String {
    let c = emu.config();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
        ("scope", "https://storage.azure.com/.default"),
    ]);
    let a = send(
        emu,
        "POST",
        &format!("/{}/oauth2/v2.0/token", c.tenant_id),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .unwrap();
    assert_eq!(a.status, 200);
    a.json()["access_token"].as_str().unwrap().to_string()
}

/// Start capture `name` (time limit 100 s) on vm1 and answer its blob path (after the base)
/// and the start time of its traffic.
fn start_capture(emu: &Emulator, name: &str) -> (String, i64) {
    let tok = token(emu);
    let created = emu.now().unix_timestamp();
    let put = arm(emu, &tok, "PUT", &capture_path(name), NET_API, Some(&capture_body(&vm_id("vm1"), 100))).unwrap();
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let path = put.json()["properties"]["storageLocation"]["storagePath"].as_str().unwrap().to_string();
    let prefix = format!("{}/pcstore/network-watcher-logs/", emu.base_url());
    assert!(path.starts_with(&prefix), "{path}");
    let start = created + i64::try_from(emu.config().capture_start_delay_secs).unwrap();
    (path[emu.base_url().len()..].to_string(), start)
}

fn finish(emu: &Emulator) {
    emu.advance_clock(Duration::from_secs(200));
}

fn bearer_get(emu: &Emulator, tok: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let auth = format!("Bearer {tok}");
    let mut headers = vec![("Authorization", auth.as_str()), ("x-ms-version", VERSION)];
    headers.extend_from_slice(extra);
    send(emu, "GET", path, &headers, b"").unwrap()
}

fn error_code(a: &Answer) -> String {
    a.header("x-ms-error-code").unwrap_or("").to_string()
}

fn xml_field(body: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = body.find(&open).unwrap() + open.len();
    let end = body[start..].find('<').unwrap() + start;
    body[start..end].to_string()
}

struct Key {
    oid: String,
    tid: String,
    start: String,
    expiry: String,
    version: String,
    value: Vec<u8>,
}

fn delegation_key(emu: &Emulator, tok: &str, hours: i64) -> Key {
    let now = emu.now();
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
        fmt(now - time::Duration::minutes(5)),
        fmt(now + time::Duration::hours(hours))
    );
    let auth = format!("Bearer {tok}");
    let a = send(
        emu,
        "POST",
        "/pcstore/?restype=service&comp=userdelegationkey",
        &[("Authorization", &auth), ("x-ms-version", VERSION)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let xml = String::from_utf8(a.body).unwrap();
    assert_eq!(xml_field(&xml, "SignedService"), "b");
    assert_eq!(xml_field(&xml, "SignedTid"), emu.config().tenant_id);
    Key {
        oid: xml_field(&xml, "SignedOid"),
        tid: xml_field(&xml, "SignedTid"),
        start: xml_field(&xml, "SignedStart"),
        expiry: xml_field(&xml, "SignedExpiry"),
        version: xml_field(&xml, "SignedVersion"),
        value: B64.decode(xml_field(&xml, "Value")).unwrap(),
    }
}

/// A read SAS for `path` (`/{account}/{container}/{blob}`), signed here as the 2025-01-05 user
/// delegation SAS: sp, st, se, resource, skoid, sktid, skt, ske, sks, skv, saoid, suoid, scid,
/// sip, spr, sv, sr, snapshot, ses, rscc, rscd, rsce, rscl, rsct.
fn sas(key: &Key, path: &str, se: &str, spr: &str) -> String {
    let resource = format!("/blob{path}");
    let lines = [
        "r",
        "",
        se,
        &resource,
        &key.oid,
        &key.tid,
        &key.start,
        &key.expiry,
        "b",
        &key.version,
        "",
        "",
        "",
        "",
        spr,
        VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ];
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.value).unwrap();
    mac.update(lines.join("\n").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    let q = form(&[
        ("sp", "r"),
        ("se", se),
        ("skoid", &key.oid),
        ("sktid", &key.tid),
        ("skt", &key.start),
        ("ske", &key.expiry),
        ("sks", "b"),
        ("skv", &key.version),
        ("spr", spr),
        ("sv", VERSION),
        ("sr", "b"),
        ("sig", &sig),
    ]);
    format!("{path}?{}", String::from_utf8(q).unwrap())
}

fn in_hours(emu: &Emulator, h: i64) -> String {
    (emu.now() + time::Duration::hours(h)).format(&Rfc3339).unwrap()
}

fn ready() -> (Emulator, String, i64) {
    let emu = seeded();
    emu.set_emulator_storage_paths(true);
    let (path, start) = start_capture(&emu, "pc1");
    finish(&emu);
    (emu, path, start)
}

#[test]
fn a_finished_capture_has_its_file_and_an_unfinished_one_does_not() {
    let emu = seeded();
    emu.set_emulator_storage_paths(true);
    let (path, start) = start_capture(&emu, "pc1");
    let tok = storage_token(&emu);
    let early = bearer_get(&emu, &tok, &path, &[]);
    assert_eq!(early.status, 404);
    assert_eq!(error_code(&early), "BlobNotFound");
    finish(&emu);
    let a = bearer_get(&emu, &tok, &path, &[]);
    assert_eq!(a.status, 200);
    assert!(a.body == capture_file(Scenario::HeavyTalker, start), "the heavy-talker file");
    assert_eq!(a.header("x-ms-blob-type"), Some("BlockBlob"));
    // Another blob of the account is not there.
    let other = bearer_get(&emu, &tok, "/pcstore/network-watcher-logs/nope.cap", &[]);
    assert_eq!(other.status, 404);
}

/// Deleting the capture resource leaves its file in storage, as in Azure (the component deletes
/// finished captures and links to their files); a capture deleted before it stopped left none.
#[test]
fn a_deleted_capture_keeps_its_file_and_scenario() {
    let (emu, path, start) = ready();
    emu.set_scenario("pc1", Scenario::PortScan);
    let (early_path, _) = start_capture(&emu, "pc2");
    let arm_tok = token(&emu);
    for name in ["pc1", "pc2"] {
        let del = arm(&emu, &arm_tok, "DELETE", &capture_path(name), NET_API, None).unwrap();
        assert!(matches!(del.status, 200 | 202 | 204), "{}", del.status);
    }
    let tok = storage_token(&emu);
    let a = bearer_get(&emu, &tok, &path, &[]);
    assert_eq!(a.status, 200);
    assert!(a.body == capture_file(Scenario::PortScan, start), "the port-scan file");
    finish(&emu);
    assert_eq!(bearer_get(&emu, &tok, &early_path, &[]).status, 404);
}

#[test]
fn storage_paths_stay_azure_style_by_default_and_the_file_is_still_served() {
    let emu = seeded();
    let tok = token(&emu);
    let put = arm(&emu, &tok, "PUT", &capture_path("pc1"), NET_API, Some(&capture_body(&vm_id("vm1"), 100))).unwrap();
    let url = put.json()["properties"]["storageLocation"]["storagePath"].as_str().unwrap().to_string();
    let rest = url.strip_prefix("https://pcstore.blob.core.windows.net").expect(&url);
    finish(&emu);
    let a = bearer_get(&emu, &storage_token(&emu), &format!("/pcstore{rest}"), &[]);
    assert_eq!(a.status, 200);
}

#[test]
fn only_a_storage_token_with_a_version_reads() {
    let (emu, path, _) = ready();
    let arm_token = token(&emu);
    let a = bearer_get(&emu, &arm_token, &path, &[]);
    assert_eq!(a.status, 401);
    assert_eq!(error_code(&a), "InvalidAuthenticationInfo");
    let none = send(&emu, "GET", &path, &[("x-ms-version", VERSION)], b"").unwrap();
    assert_eq!(none.status, 401);
    let tok = storage_token(&emu);
    let auth = format!("Bearer {tok}");
    let no_version = send(&emu, "GET", &path, &[("Authorization", &auth)], b"").unwrap();
    assert_eq!(no_version.status, 400);
    // And a Storage token is no good for ARM.
    let arm_with_storage = arm(&emu, &tok, "GET", &capture_path("pc1"), NET_API, None).unwrap();
    assert_eq!(arm_with_storage.status, 401);
    // Revoked tokens expire for Storage too.
    emu.revoke_tokens();
    assert_eq!(bearer_get(&emu, &tok, &path, &[]).status, 401);
}

#[test]
fn ranges_are_answered_like_storage() {
    let (emu, path, start) = ready();
    let file = capture_file(Scenario::HeavyTalker, start);
    let total = file.len();
    let tok = storage_token(&emu);

    let a = bearer_get(&emu, &tok, &path, &[("Range", "bytes=0-99")]);
    assert_eq!(a.status, 206);
    assert_eq!(a.header("Content-Range"), Some(format!("bytes 0-99/{total}").as_str()));
    assert!(a.body == file[..100]);

    let a = bearer_get(&emu, &tok, &path, &[("x-ms-range", "bytes=100-")]);
    assert_eq!(a.status, 206);
    assert_eq!(a.header("Content-Range"), Some(format!("bytes 100-{}/{total}", total - 1).as_str()));
    assert!(a.body == file[100..]);

    // Past the end is cut to the end.
    let a = bearer_get(&emu, &tok, &path, &[("Range", &format!("bytes=0-{}", total * 2))]);
    assert_eq!(a.status, 206);
    assert!(a.body == file);

    let a = bearer_get(&emu, &tok, &path, &[("Range", &format!("bytes={total}-"))]);
    assert_eq!(a.status, 416);
    assert_eq!(error_code(&a), "InvalidRange");
    assert_eq!(a.header("Content-Range"), Some(format!("bytes */{total}").as_str()));
}

#[test]
fn a_sas_made_by_hand_downloads_the_file() {
    let (emu, path, start) = ready();
    let key = delegation_key(&emu, &storage_token(&emu), 48);
    assert_eq!(key.version, VERSION);
    assert_eq!(key.value.len(), 32);
    let link = sas(&key, &path, &in_hours(&emu, 24), "https,http");
    let a = send(&emu, "GET", &link, &[], b"").unwrap();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.body == capture_file(Scenario::HeavyTalker, start), "the heavy-talker file");
    let ranged = send(&emu, "GET", &link, &[("Range", "bytes=0-23")], b"").unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body[..4], 0xa1b2_c3d4u32.to_le_bytes());
}

#[test]
fn an_altered_or_expired_sas_is_refused() {
    let (emu, path, _) = ready();
    let key = delegation_key(&emu, &storage_token(&emu), 48);
    let se = in_hours(&emu, 24);
    let good = sas(&key, &path, &se, "https,http");
    assert_eq!(send(&emu, "GET", &good, &[], b"").unwrap().status, 200);

    let later = in_hours(&emu, 30);
    let altered = [
        good.replace(&form_value(&se), &form_value(&later)),
        good.replace("sp=r", "sp=rw"),
        good.replace("sig=", "sig=A"),
        good.replace("skoid=", "skoid=0"),
        // The same query on another blob.
        good.replace(".cap?", ".cap2?"),
    ];
    for link in altered {
        assert_ne!(link, good);
        let a = send(&emu, "GET", &link, &[], b"").unwrap();
        assert!(a.status == 403 || a.status == 404, "{link}: {}", a.status);
        if a.status == 403 {
            assert_eq!(error_code(&a), "AuthenticationFailed", "{link}");
        }
    }
    // Signed for the right blob but with a key the emulator never issued.
    let forged = Key { value: vec![7; 32], ..key_clone(&key) };
    assert_eq!(send(&emu, "GET", &sas(&forged, &path, &se, "https,http"), &[], b"").unwrap().status, 403);
    // https-only is refused over the emulator's plain http.
    assert_eq!(send(&emu, "GET", &sas(&key, &path, &se, "https"), &[], b"").unwrap().status, 403);

    emu.advance_clock(Duration::from_secs(25 * 3600));
    let expired = send(&emu, "GET", &good, &[], b"").unwrap();
    assert_eq!(expired.status, 403);
    assert!(String::from_utf8_lossy(&expired.body).contains("expiry"));
}

fn form_value(v: &str) -> String {
    let pair = String::from_utf8(form(&[("x", v)])).unwrap();
    pair[2..].to_string()
}

fn key_clone(k: &Key) -> Key {
    Key {
        oid: k.oid.clone(),
        tid: k.tid.clone(),
        start: k.start.clone(),
        expiry: k.expiry.clone(),
        version: k.version.clone(),
        value: k.value.clone(),
    }
}

#[test]
fn key_requests_need_a_storage_token_and_at_most_seven_days() {
    let emu = seeded();
    let arm_token = token(&emu);
    let auth = format!("Bearer {arm_token}");
    let body = "<KeyInfo><Start>2020-01-01T00:00:00Z</Start><Expiry>2020-01-02T00:00:00Z</Expiry></KeyInfo>";
    let path = "/pcstore/?restype=service&comp=userdelegationkey";
    let a = send(&emu, "POST", path, &[("Authorization", &auth), ("x-ms-version", VERSION)], body.as_bytes()).unwrap();
    assert_eq!(a.status, 401);
    let tok = storage_token(&emu);
    let auth = format!("Bearer {tok}");
    let now = emu.now();
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let too_long = format!(
        "<KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
        fmt(now),
        fmt(now + time::Duration::days(8))
    );
    let a =
        send(&emu, "POST", path, &[("Authorization", &auth), ("x-ms-version", VERSION)], too_long.as_bytes()).unwrap();
    assert_eq!(a.status, 400);
    let garbage = send(&emu, "POST", path, &[("Authorization", &auth), ("x-ms-version", VERSION)], b"<nope").unwrap();
    assert_eq!(garbage.status, 400);
}

#[test]
fn the_role_switch_answers_403_everywhere_until_turned_off() {
    let (emu, path, _) = ready();
    let tok = storage_token(&emu);
    let key = delegation_key(&emu, &tok, 48);
    let link = sas(&key, &path, &in_hours(&emu, 24), "https,http");

    // Over the control API, as the binary's users would.
    let on =
        send(&emu, "POST", "/_emulator/modes", &[], json!({"storage_denied": true}).to_string().as_bytes()).unwrap();
    assert_eq!(on.status, 200);
    let a = bearer_get(&emu, &tok, &path, &[]);
    assert_eq!(a.status, 403);
    assert_eq!(error_code(&a), "AuthorizationPermissionMismatch");
    assert_eq!(error_code(&send(&emu, "GET", &link, &[], b"").unwrap()), "AuthorizationPermissionMismatch");
    let auth = format!("Bearer {tok}");
    let now = emu.now();
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let body = format!(
        "<KeyInfo><Start>{}</Start><Expiry>{}</Expiry></KeyInfo>",
        fmt(now),
        fmt(now + time::Duration::hours(1))
    );
    let k = send(
        &emu,
        "POST",
        "/pcstore/?restype=service&comp=userdelegationkey",
        &[("Authorization", &auth), ("x-ms-version", VERSION)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(k.status, 403);

    emu.set_storage_denied(false);
    assert_eq!(bearer_get(&emu, &tok, &path, &[]).status, 200);
    assert_eq!(send(&emu, "GET", &link, &[], b"").unwrap().status, 200);
}

#[test]
fn the_scenario_is_chosen_per_capture_through_the_control_api() {
    let emu = seeded();
    emu.set_emulator_storage_paths(true);
    let (p1, s1) = start_capture(&emu, "pc1");
    // Blob names carry the creation time: a second later, another name.
    emu.advance_clock(Duration::from_secs(1));
    let (p2, s2) = start_capture(&emu, "pc2");
    assert_ne!(p1, p2);
    let body = json!({"capture": "PC2", "scenario": "syn_flood"}).to_string();
    assert_eq!(send(&emu, "POST", "/_emulator/storage/scenario", &[], body.as_bytes()).unwrap().status, 200);
    let bad = json!({"capture": "pc2", "scenario": "nope"}).to_string();
    assert_eq!(send(&emu, "POST", "/_emulator/storage/scenario", &[], bad.as_bytes()).unwrap().status, 400);
    finish(&emu);
    let tok = storage_token(&emu);
    assert!(bearer_get(&emu, &tok, &p1, &[]).body == capture_file(Scenario::HeavyTalker, s1));
    assert!(bearer_get(&emu, &tok, &p2, &[]).body == capture_file(Scenario::SynFlood, s2));
}

// ---------------------------------------------------------------- the files themselves

/// One packet: (ethertype, src ip bytes, dst port, tcp flags or None, frame length).
type Packet = (u16, Vec<u8>, u16, Option<u8>, usize);

fn packets(file: &[u8]) -> Vec<Packet> {
    assert_eq!(file[..4], 0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 1, "Ethernet");
    let mut out = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let f = &file[at + 16..at + 16 + incl];
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        let (src, proto, l4) = match ethertype {
            0x0800 => (f[26..30].to_vec(), f[23], &f[34..]),
            0x86dd => (f[22..38].to_vec(), f[20], &f[54..]),
            other => panic!("ethertype {other:#x}"),
        };
        let dport = u16::from_be_bytes([l4[2], l4[3]]);
        let flags = (proto == 6).then(|| l4[13]);
        out.push((ethertype, src, dport, flags, incl));
        at += 16 + incl;
    }
    assert_eq!(at, file.len(), "no trailing bytes");
    out
}

#[test]
fn scenario_files_hold_what_they_document() {
    let t = 1_780_000_000;
    for s in Scenario::ALL {
        assert!(capture_file(s, t) == capture_file(s, t), "{s:?} is deterministic");
        assert!(capture_file(s, t) != capture_file(s, t + 1), "{s:?} follows the start time");
    }

    let syn = packets(&capture_file(Scenario::SynFlood, t));
    let syns: Vec<_> = syn.iter().filter(|p| p.3 == Some(0x02)).collect();
    assert_eq!(syns.len(), 300);
    assert!(syns.iter().all(|p| p.2 == 22));
    let sources: std::collections::HashSet<_> = syns.iter().map(|p| p.1.clone()).collect();
    assert_eq!(sources.len(), 300);
    assert_eq!(syn.iter().filter(|p| p.3 == Some(0x12)).count(), 10);

    let scan = packets(&capture_file(Scenario::PortScan, t));
    let probes: std::collections::HashSet<u16> = scan.iter().filter(|p| p.3 == Some(0x02)).map(|p| p.2).collect();
    assert_eq!(probes, (1..=100).collect());
    assert_eq!(scan.iter().filter(|p| p.3 == Some(0x14)).count(), 97, "RST-ACK from closed ports");
    assert_eq!(scan.iter().filter(|p| p.3 == Some(0x12)).count(), 3);

    let heavy = packets(&capture_file(Scenario::HeavyTalker, t));
    let from_peer: usize = heavy.iter().filter(|p| p.1 == [203, 0, 113, 9]).map(|p| p.4).sum();
    let all: usize = heavy.iter().map(|p| p.4).sum();
    assert!(from_peer * 100 / all >= 90, "{from_peer} of {all}");
    assert_eq!(heavy.iter().filter(|p| p.3.is_none() && p.2 == 53).count(), 10, "DNS queries");

    let v6 = packets(&capture_file(Scenario::Ipv6, t));
    assert!(v6.iter().all(|p| p.0 == 0x86dd));
    assert_eq!(v6.len(), 3 + 40 + 5);

    let re = packets(&capture_file(Scenario::Retransmissions, t));
    assert_eq!(re.iter().filter(|p| p.4 > 1000 && p.2 == 443).count(), 60, "50 segments, 10 sent twice");
}

#[test]
fn ipv4_and_transport_checksums_verify() {
    fn sum(parts: &[&[u8]]) -> u32 {
        let bytes: Vec<u8> = parts.concat();
        let mut s: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    }
    for s in Scenario::ALL {
        let file = capture_file(s, 1_780_000_000);
        let mut at = 24;
        while at < file.len() {
            let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
            let f = &file[at + 16..at + 16 + incl];
            if f[12..14] == [0x08, 0x00] {
                assert_eq!(sum(&[&f[14..34]]), 0xffff, "{s:?} IPv4 header");
                let seg = &f[34..];
                let len = (seg.len() as u16).to_be_bytes();
                let pseudo = [&f[26..34], &[0, f[23]], &len[..]].concat();
                assert_eq!(sum(&[&pseudo, seg]), 0xffff, "{s:?} L4");
            } else {
                let seg = &f[54..];
                let len = (seg.len() as u32).to_be_bytes();
                let pseudo = [&f[22..54], &len[..], &[0, 0, 0, f[20]]].concat();
                assert_eq!(sum(&[&pseudo, seg]), 0xffff, "{s:?} L4 v6");
            }
            at += 16 + incl;
        }
    }
}

#[test]
fn this_files_signer_agrees_with_microsofts_sdk() {
    // The vector of scripts/sas-vector.py (azure-storage-blob 12.24.1, sv 2025-01-05).
    let key = Key {
        oid: "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50".into(),
        tid: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        start: "2026-05-28T20:26:40Z".into(),
        expiry: "2026-05-29T20:31:40Z".into(),
        version: "2025-01-05".into(),
        value: (0u8..32).collect(),
    };
    let link = sas(&key, "/pcstore/network-watcher-logs/vm1/2026/05/28/capture.cap", "2026-05-29T20:26:40Z", "https");
    let sig = form_urlencoded::parse(link.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned());
    assert_eq!(sig.as_deref(), Some("Ks7TWXK8m32pHrN7R2/WOM+LKghzfSg9QL4RRyGR4Aw="));
}
