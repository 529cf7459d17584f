//! The workspace's dependency direction, from `cargo metadata`: kiln → builder, registry,
//! runtime → image; image depends on no workspace crate, the registry never on the builder
//! or the runtime, the builder never on the runtime (except as a dev-dependency); the test
//! kit is a dev-dependency only.

use std::process::Command;

#[test]
fn workspace_dependencies_point_one_way() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deps = |name: &str| -> Vec<(String, bool)> {
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name}"));
        pkg["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["name"].as_str().is_some_and(|n| n.starts_with("kiln")))
            .map(|d| (d["name"].as_str().unwrap().to_string(), d["kind"] == "dev"))
            .collect()
    };
    let forbidden = [
        (
            "kiln-image",
            vec!["kiln", "kiln-builder", "kiln-registry", "kiln-runtime"],
        ),
        (
            "kiln-registry",
            vec!["kiln", "kiln-builder", "kiln-runtime"],
        ),
        (
            "kiln-runtime",
            vec!["kiln", "kiln-builder", "kiln-registry"],
        ),
        (
            "kiln-builder",
            vec!["kiln", "kiln-registry", "kiln-runtime"],
        ),
    ];
    for (crate_name, never) in forbidden {
        for (dep, dev) in deps(crate_name) {
            let allowed_dev = crate_name == "kiln-builder" && dep == "kiln-runtime" && dev;
            assert!(
                !never.contains(&dep.as_str()) || allowed_dev,
                "{crate_name} must not depend on {dep}"
            );
        }
    }
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        for (dep, dev) in deps(name) {
            assert!(
                dep != "kiln-testkit" || dev,
                "{name} may use kiln-testkit in its tests only"
            );
        }
    }
    assert_eq!(
        deps("kiln-testkit"),
        [("kiln-image".to_string(), false)],
        "the test kit depends on the image crate alone"
    );
}

/// The registry links the image crate's names alone: not its `full` feature (the store,
/// the compressors, the registry client), as `cargo tree` resolves it for the registry.
#[test]
fn the_registry_links_no_compressor_and_no_client() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "kiln-registry",
            "-e",
            "normal",
            "-f",
            "{p} {f}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let image = tree
        .lines()
        .find(|l| l.contains("kiln-image"))
        .expect("the registry depends on kiln-image");
    assert!(!image.contains("full"), "{image}");
    for compressor in [
        "libdeflater",
        "zstd",
        "bzip2",
        "liblzma",
        "flate2",
        "scrypt",
    ] {
        assert!(
            !tree
                .lines()
                .any(|l| l.contains(&format!(" {compressor} v"))),
            "the registry links {compressor}:\n{tree}"
        );
    }
}
