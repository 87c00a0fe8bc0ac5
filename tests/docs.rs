//! Every section reference in the sources (`SPEC §7`, `§5.3`) must name a heading of
//! `docs/SPEC.md`, so that the specification and the code that cites it cannot drift apart.
//!
//! Std only. The walk covers the sources people read next to the code: `*.rs`, `*.sh`, `*.md`
//! and `*.toml` under `crates/`, `src/`, `scripts/`, `deploy/`, `tests/` and `docs/`, plus the
//! top-level `README.md` and `spin.toml`; build output (`target/`) and copied third-party
//! payloads (`testdata/`) are skipped.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The section sign, written as an escape so this file holds no reference of its own.
const SECTION: char = '\u{a7}';

const ROOTS: &[&str] = &["crates", "src", "scripts", "deploy", "tests", "docs"];
const TOP_FILES: &[&str] = &["README.md", "spin.toml"];
const EXTENSIONS: &[&str] = &["rs", "sh", "md", "toml"];
const SKIP_DIRS: &[&str] = &["target", "testdata", ".git"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Section numbers referenced in `text`: the digits and dots after each section sign, without
/// a trailing dot (`see §7.` cites 7). A sign not followed by a digit is not a reference.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(SECTION) {
        rest = &rest[at + SECTION.len_utf8()..];
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = rest[..end].trim_end_matches('.');
        if number.starts_with(|c: char| c.is_ascii_digit()) {
            out.push(number.to_string());
        }
    }
    out
}

/// Section numbers defined by `spec`: every Markdown heading whose text starts with a section
/// sign and a number (`## §4 Azure calls`, `### §4.1 Token`).
fn anchors(spec: &str) -> BTreeSet<String> {
    spec.lines()
        .filter_map(|line| {
            let heading = line.trim_start_matches('#');
            if heading.len() == line.len() || !heading.starts_with(' ') {
                return None;
            }
            let heading = heading.trim_start();
            let number = heading.strip_prefix(SECTION)?;
            let end = number.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(number.len());
            let number = number[..end].trim_end_matches('.');
            (!number.is_empty()).then(|| number.to_string())
        })
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(&path, files);
            }
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
            files.push(path);
        }
    }
}

fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ROOTS {
        walk(&root.join(dir), &mut files);
    }
    files.extend(TOP_FILES.iter().map(|f| root.join(f)).filter(|p| p.is_file()));
    files
}

/// `file:line: §N` for every reference in `files` that `defined` lacks.
fn dangling(root: &Path, files: &[PathBuf], defined: &BTreeSet<String>) -> (usize, Vec<String>) {
    let mut seen = 0;
    let mut bad = Vec::new();
    for file in files {
        // Non-UTF-8 files hold no references we could read; skip them.
        let Ok(text) = fs::read_to_string(file) else { continue };
        for (n, line) in text.lines().enumerate() {
            for r in references(line) {
                seen += 1;
                if !defined.contains(&r) {
                    let shown = file.strip_prefix(root).unwrap_or(file).display();
                    bad.push(format!("{shown}:{}: {SECTION}{r}", n + 1));
                }
            }
        }
    }
    (seen, bad)
}

#[test]
fn every_section_reference_resolves_to_docs_spec() {
    let root = repo();
    let spec = fs::read_to_string(root.join("docs/SPEC.md")).expect("docs/SPEC.md exists");
    let defined = anchors(&spec);
    for n in 1..=12 {
        assert!(defined.contains(&n.to_string()), "docs/SPEC.md lacks the heading for section {n}");
    }
    let files = source_files(&root);
    assert!(files.iter().any(|f| f.ends_with("crates/apc-core/src/lib.rs")), "the walk found the core's sources");
    let (seen, bad) = dangling(&root, &files, &defined);
    // The code cites the specification dozens of times; finding none means the walk is broken.
    assert!(seen >= 30, "only {seen} section references found");
    assert!(bad.is_empty(), "{} section reference(s) with no heading in docs/SPEC.md:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn references_and_anchors_are_read_as_written() {
    let s = |t: &str| t.replace('$', &SECTION.to_string());
    assert_eq!(references(&s("SPEC $7, $5.3 and $2.")), ["7", "5.3", "2"]);
    assert_eq!(references(&s("a lone $ and $x are not references")), Vec::<String>::new());
    let spec = s("# Title\n## $1 What\n### $4.1 Token\n#### $12.3.4 Deep\nnot a heading $9\n##$3 no space\n");
    let defined: Vec<String> = anchors(&spec).into_iter().collect();
    assert_eq!(defined, ["1", "12.3.4", "4.1"]);
}

/// The check can fail: a reference to a section the specification lacks is reported with its
/// file and line.
#[test]
fn a_dangling_reference_is_reported_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("apc-docs-test-{}", std::process::id()));
    fs::create_dir_all(dir.join("src")).unwrap();
    let file = dir.join("src/lib.rs");
    fs::write(&file, format!("//! fine {SECTION}4.1\n\n//! bad {SECTION}13 and {SECTION}4.9\n")).unwrap();
    let defined = anchors(&format!("## {SECTION}4 Azure\n### {SECTION}4.1 Token\n"));
    let (seen, bad) = dangling(&dir, std::slice::from_ref(&file), &defined);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(seen, 3);
    assert_eq!(bad, [format!("src/lib.rs:3: {SECTION}13"), format!("src/lib.rs:3: {SECTION}4.9")]);
}
