//! Properties over random input, on stable Rust with proptest: the layer applier keeps
//! every write inside its target whatever the tar holds (names, links, whiteouts,
//! devices), and the reference parser never panics and reads back what it prints.

use std::path::Path;

use kiln_image::layer::apply;
use kiln_image::Reference;
use proptest::prelude::*;

mod support;

/// Path components that steer the applier into its corners.
const PARTS: &[&str] = &[
    "a",
    "b",
    "etc",
    "..",
    ".",
    ".wh.a",
    ".wh..wh..opq",
    ".wh...",
    ".wh..",
    ".wh.",
    "dev",
];
/// Link targets: inside, up, absolute, chains.
const TARGETS: &[&str] = &[
    "a",
    "../..",
    "..",
    "/",
    "/etc",
    "../outside",
    "a/b",
    "/..",
    ".",
];

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(&'static str),
    Hardlink(String),
    Char,
    Fifo,
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PARTS), 1..4).prop_map(|p| p.join("/"))
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::File),
        2 => Just(Kind::Dir),
        2 => prop::sample::select(TARGETS).prop_map(Kind::Symlink),
        1 => path().prop_map(Kind::Hardlink),
        1 => Just(Kind::Char),
        1 => Just(Kind::Fifo),
    ]
}

/// The entries as a tar, whatever they hold.
fn tar_of(entries: &[(String, Kind)]) -> Vec<u8> {
    let raw: Vec<(String, tar::EntryType, String)> = entries
        .iter()
        .map(|(path, kind)| {
            let (entry_type, link) = match kind {
                Kind::File => (tar::EntryType::Regular, String::new()),
                Kind::Dir => (tar::EntryType::Directory, String::new()),
                Kind::Symlink(t) => (tar::EntryType::Symlink, t.to_string()),
                Kind::Hardlink(t) => (tar::EntryType::Link, t.clone()),
                Kind::Char => (tar::EntryType::Char, String::new()),
                Kind::Fifo => (tar::EntryType::Fifo, String::new()),
            };
            (path.clone(), entry_type, link)
        })
        .collect();
    support::crafted(&raw)
}

/// Every path under `dir`, with its kind and content, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .map(|e| {
            let content = std::fs::read(e.path()).unwrap_or_default();
            format!(
                "{} {:?} {:?}",
                e.path().display(),
                e.file_type(),
                String::from_utf8_lossy(&content)
            )
        })
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nothing_a_layer_holds_reaches_outside_its_target(
        entries in prop::collection::vec((path(), kind()), 1..12)
    ) {
        let base = tempfile::tempdir().unwrap();
        // The target's neighbours: what `..` and `/` would reach first.
        let outside = base.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        std::fs::write(base.path().join("canary"), "alive").unwrap();
        let target = base.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let before = listing(&outside);
        // Refused or applied: either way, nothing outside changes.
        let _ = apply(tar_of(&entries).as_slice(), &target);
        prop_assert_eq!(listing(&outside), before);
        prop_assert_eq!(std::fs::read_to_string(base.path().join("canary")).unwrap(), "alive");
        prop_assert!(target.is_dir(), "the target itself was removed");
        let names: Vec<String> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        prop_assert_eq!(names.len(), 3, "something was made beside the target: {:?}", names);
    }

    #[test]
    fn references_parse_without_panicking_and_read_back_as_printed(
        text in "[a-zA-Z0-9._:/@-]{0,40}"
    ) {
        if let Ok(r) = Reference::parse(&text) {
            let printed = r.to_string();
            let again = Reference::parse(&printed);
            prop_assert!(again.is_ok(), "{} printed as {}, which does not parse", text, printed);
            prop_assert_eq!(again.unwrap(), r);
        }
    }

    #[test]
    fn references_with_digests_read_back(
        name in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}",
        tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
        hex in "[0-9a-f]{64}",
        with_digest in any::<bool>(),
    ) {
        let mut text = name;
        if let Some(t) = &tag {
            text.push(':');
            text.push_str(t);
        }
        if with_digest {
            text.push_str("@sha256:");
            text.push_str(&hex);
        }
        let r = Reference::parse(&text).unwrap();
        prop_assert_eq!(r.tag.as_deref(), tag.as_deref().or((!with_digest).then_some("latest")));
        prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }
}
