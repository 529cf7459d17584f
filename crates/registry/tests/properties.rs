//! Properties over random input, on stable Rust with proptest: the route parser and the
//! repository-name grammar never panic and agree with each other, and manifest
//! validation never panics and stores only what it validated, under its own digest.

use bytes::Bytes;
use kiln_registry::names::{valid_name, Reference};
use kiln_registry::routes::{parse, Route};
use kiln_registry::{Limits, Registry};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::Digest as _;

const SEGMENTS: &[&str] = &[
    "",
    "a",
    "b0",
    "A",
    "a.b",
    "a__b",
    "a-",
    "_catalog",
    "tags",
    "list",
    "manifests",
    "blobs",
    "uploads",
    "referrers",
    "latest",
    "..",
    ".",
    "%2F",
    "x:y",
    "sha256:",
    "v1.0",
    "0123456789abcdef0123456789abcdef",
];

fn digest_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-zA-Z:+=.]{0,70}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(SEGMENTS).prop_map(str::to_string), 1 => digest_text()],
        0..7,
    )
    .prop_map(|p| p.join("/"))
}

/// The path of `route`, as a client writes it.
fn path_of(route: &Route) -> String {
    match route {
        Route::Base => String::new(),
        Route::Catalog => "_catalog".into(),
        Route::Tags { name } => format!("{name}/tags/list"),
        Route::Manifest { name, reference } => match reference {
            Reference::Tag(t) => format!("{name}/manifests/{t}"),
            Reference::Digest(d) => format!("{name}/manifests/{d}"),
        },
        Route::Blob { name, digest } => format!("{name}/blobs/{digest}"),
        Route::Uploads { name } => format!("{name}/blobs/uploads/"),
        Route::Upload { name, session } => format!("{name}/blobs/uploads/{session}"),
        Route::Referrers { name, digest } => format!("{name}/referrers/{digest}"),
    }
}

fn name_of(route: &Route) -> Option<&str> {
    match route {
        Route::Base | Route::Catalog => None,
        Route::Tags { name }
        | Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Uploads { name }
        | Route::Upload { name, .. }
        | Route::Referrers { name, .. } => Some(name),
    }
}

/// A manifest-like document: each field valid, wrong or missing.
fn descriptor() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!("application/vnd.oci.image.config.v1+json")),
            Just(json!("application/vnd.oci.image.layer.v1.tar")),
            Just(json!(7)),
        ],
        digest_text(),
        prop_oneof![Just(json!(3)), Just(json!(-1)), Just(json!("3"))],
        any::<bool>(),
    )
        .prop_map(|(mt, d, size, urls)| {
            let mut v = json!({"mediaType": mt, "digest": d, "size": size});
            if urls {
                v["urls"] = json!(["https://example.com/x"]);
            }
            v
        })
}

fn manifest() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!(2)),
            Just(json!(1)),
            Just(json!("2")),
            Just(Value::Null)
        ],
        prop_oneof![
            Just(json!("application/vnd.oci.image.manifest.v1+json")),
            Just(json!("application/vnd.oci.image.index.v1+json")),
            Just(json!("text/plain")),
            Just(Value::Null),
        ],
        proptest::option::of(descriptor()),
        prop::collection::vec(descriptor(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(version, mt, config, layers, as_index)| {
            let mut m = json!({"schemaVersion": version});
            if !mt.is_null() {
                m["mediaType"] = mt;
            }
            if let Some(c) = config {
                m["config"] = c;
            }
            m[if as_index { "manifests" } else { "layers" }] = json!(layers);
            m
        })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn routes_parse_without_panicking_and_name_only_valid_repositories(path in path()) {
        if let Ok(Some(route)) = parse(&path) {
            if let Some(name) = name_of(&route) {
                prop_assert!(valid_name(name), "{} gave the name {}", path, name);
            }
            prop_assert_eq!(parse(&path_of(&route)).unwrap(), Some(route));
        }
    }

    #[test]
    fn valid_names_follow_the_spec_grammar(name in "[a-z0-9._/-]{0,30}") {
        let grammar = regex::Regex::new(
            r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$",
        )
        .unwrap();
        prop_assert_eq!(valid_name(&name), grammar.is_match(&name), "{}", name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn manifests_are_validated_without_panicking_and_stored_under_their_digest(
        m in manifest(),
        content_type in proptest::option::of(prop::sample::select(&[
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/json",
        ][..])),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let storage = kiln_registry::storage::open(&kiln_registry::config::StorageConfig {
            root: Some(dir.path().to_path_buf()),
            s3: None,
        })
        .unwrap();
        let reg = Registry::new(storage, Limits::default());
        let body = Bytes::from(m.to_string());
        let tag = Reference::Tag("t".into());
        let rt = runtime();
        let pushed = rt.block_on(reg.put_manifest("p/q", &tag, content_type, body.clone()));
        if let Ok(pushed) = pushed {
            let expected = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
            prop_assert_eq!(pushed.digest.to_string(), expected);
            let got = rt.block_on(reg.manifest("p/q", &tag, &[])).map_err(|e| e.to_string());
            prop_assert!(got.is_ok(), "{:?}", got.err());
            prop_assert_eq!(got.unwrap().body, body);
            // A manifest is taken only when all it names is here, and nothing is: `urls`
            // excuse only non-distributable layers, which none of these is.
            let media_type = content_type.or(m["mediaType"].as_str()).unwrap_or_default();
            let refs = if media_type.contains("index") {
                m["manifests"].as_array().map_or(0, Vec::len)
            } else {
                m["layers"].as_array().map_or(0, Vec::len) + usize::from(m.get("config").is_some())
            };
            prop_assert_eq!(refs, 0, "a manifest naming missing blobs was stored: {}", m);
        }
    }
}
