//! `kiln build --provenance` (root): a SLSA provenance v1 statement attached to the image
//! as BuildKit attaches it (an attestation manifest in the image's index), naming the
//! build arguments, the Dockerfile's digest and text, the base image's digest and the
//! context's commit and remote (without credentials) — never a secret; pushed with the
//! image, its subject the image as pushed, and listed by kiln's registry through the
//! referrers API.

kiln_testkit::private_network!();

use kiln_testkit::Registry;
use kiln_testkit::{build_busybox, context, git, require_root, run_tool, Kiln};
use sha2::Digest as _;

#[test]
fn provenance_names_what_made_the_image_and_travels_with_it_as_a_referrer() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dockerfile = "FROM busybox:kiln\nARG GREETING\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo $GREETING > /g\n";
    let ctx = context(&k.dir.path().join("app"), &[("Dockerfile", dockerfile)]);
    git(&ctx, &["init", "-q"]);
    git(&ctx, &["add", "."]);
    git(&ctx, &["commit", "-qm", "app"]);
    git(
        &ctx,
        &[
            "remote",
            "add",
            "origin",
            "https://builder:s3cret-token@example.com/team/app.git",
        ],
    );
    let commit = git(&ctx, &["rev-parse", "HEAD"]);
    let secret = k.dir.path().join("tok");
    std::fs::write(&secret, "do-not-leak-this").unwrap();
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let name = format!("{}/team/prov:1", reg.addr);
    k.log(&[
        "build",
        "--provenance=mode=max",
        "--build-arg",
        "GREETING=hi",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        "--push",
        "-t",
        &name,
        ctx.to_str().unwrap(),
    ]);
    // The image still runs (its index holds the image and the attestation).
    assert_eq!(k.ok(&["run", "--rm", &name, "cat", "/g"]), "hi\n");
    let text = k.ok(&["image", "inspect", "--provenance", &name]);
    assert!(
        !text.contains("do-not-leak-this") && !text.contains("s3cret-token"),
        "{text}"
    );
    let by_platform: serde_json::Value = serde_json::from_str(&text).unwrap();
    let host = kiln_image::Platform::host().to_string();
    let statement = &by_platform[&host];
    assert_eq!(
        statement["predicateType"], "https://slsa.dev/provenance/v1",
        "{text}"
    );
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let image = store.resolve(&name).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        image.manifest_digest.digest()
    );
    let definition = &statement["predicate"]["buildDefinition"];
    let external = &definition["externalParameters"];
    assert_eq!(external["request"]["args"]["build-arg:GREETING"], "hi");
    assert_eq!(
        external["configSource"]["uri"],
        "https://example.com/team/app.git"
    );
    assert_eq!(external["configSource"]["digest"]["sha1"], commit.as_str());
    assert_eq!(external["configSource"]["path"], "Dockerfile");
    let dockerfile_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(dockerfile)));
    assert_eq!(
        definition["internalParameters"]["dockerfileDigest"],
        dockerfile_digest.as_str()
    );
    assert_eq!(definition["internalParameters"]["dockerfile"], dockerfile);
    let base = store.resolve("busybox:kiln").unwrap();
    let dependencies = definition["resolvedDependencies"].as_array().unwrap();
    assert!(
        dependencies.iter().any(|d| d["uri"]
            .as_str()
            .unwrap()
            .starts_with("pkg:docker/busybox:kiln")
            && d["digest"]["sha256"] == base.manifest_digest.digest()),
        "{dependencies:?}"
    );
    // In the registry: an index of the image and its attestation, as skopeo reads it.
    let raw = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{raw}");
    let pushed = entries
        .iter()
        .find(|e| e["platform"]["architecture"] != "unknown")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let attestation = entries
        .iter()
        .find(|e| e["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .unwrap();
    assert_eq!(
        attestation["annotations"]["vnd.docker.reference.digest"],
        pushed.as_str()
    );
    // The registry lists it as a referrer of the pushed image, and its statement is
    // about the image as pushed.
    let url = |path: &str| format!("http://{}/v2/team/prov/{path}", reg.addr);
    let referrers: serde_json::Value = reg
        .http
        .get(url(&format!("referrers/{pushed}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(listed[0]["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(listed[0]["digest"], attestation["digest"]);
    let manifest: serde_json::Value = reg
        .http
        .get(url(&format!(
            "manifests/{}",
            listed[0]["digest"].as_str().unwrap()
        )))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(manifest["subject"]["digest"], pushed.as_str());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let statement: serde_json::Value = reg
        .http
        .get(url(&format!("blobs/{layer}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        pushed
    );
    // An image built without it has none.
    let plain = context(
        &k.dir.path().join("plain"),
        &[("Dockerfile", "FROM busybox:kiln\n")],
    );
    k.ok(&["build", "-q", "-t", "plain:1", plain.to_str().unwrap()]);
    let out = k.run(&["image", "inspect", "--provenance", "plain:1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--provenance=mode=min"));
}
