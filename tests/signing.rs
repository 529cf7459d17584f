//! `kiln key generate`, `kiln sign`, `kiln verify` and the signature policy (root, in the
//! test's network namespace, against `kiln registry serve` on 127.0.0.1). Peers check
//! what kiln writes: the key file is opened by an independent reading of cosign's
//! format (Python's scrypt and PyNaCl's secretbox, which `scripts/setup` installs), and
//! the signature stored under cosign's `sha256-<hex>.sig` tag is verified by `openssl`.
//! (Debian's skopeo and podman are built with sigstore disabled, so they cannot be
//! the oracle.)

kiln_testkit::private_network!();

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use kiln_testkit::Registry;
use kiln_testkit::{context, require_root, run_tool, Kiln};

const NACL_PYTHON: &str = "/opt/kiln-nacl/bin/python";

/// Opens cosign's encrypted key file as cosign does, independently of kiln: the PKCS#8
/// DER of the private key.
const OPEN_COSIGN_KEY: &str = r#"
import base64, hashlib, json, sys, nacl.secret
text = open(sys.argv[1]).read()
body = "".join(l for l in text.splitlines() if not l.startswith("-----"))
sealed = json.loads(base64.b64decode(body))
p = sealed["kdf"]["params"]
key = hashlib.scrypt(sys.argv[2].encode(), salt=base64.b64decode(sealed["kdf"]["salt"]),
                     n=p["N"], r=p["r"], p=p["p"], maxmem=2**30, dklen=32)
der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(sealed["ciphertext"]),
                                         base64.b64decode(sealed["cipher"]["nonce"]))
open(sys.argv[3], "wb").write(der)
"#;

/// `kiln key generate` in `dir` with the password `pw`.
fn keys(k: &Kiln, dir: &Path, pw: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let out = k
        .cmd(&["key", "generate"])
        .current_dir(dir)
        .env("COSIGN_PASSWORD", pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_json(reg: &Registry, path: &str) -> serde_json::Value {
    reg.http
        .get(format!("http://{}/v2/{path}", reg.addr))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn signatures_are_cosigns_verified_and_enforced_by_the_policy() {
    require_root!();
    let k = Kiln::new();
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let ctx = context(
        &k.dir.path().join("ctx"),
        &[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n")],
    );
    std::fs::copy(kiln_testkit::busybox(), ctx.join("busybox")).unwrap();
    let app = format!("{}/team/app:1", reg.addr);
    let other = format!("{}/team/other:1", reg.addr);
    k.ok(&[
        "build",
        "-q",
        "-t",
        &app,
        "-t",
        &other,
        ctx.to_str().unwrap(),
    ]);
    k.ok(&["push", &app]);
    k.ok(&["push", &other]);

    // A key pair as cosign writes it: the private key opens with its password in an
    // independent reading of the format, and its public half is cosign.pub.
    let keydir = k.dir.path().join("keys");
    keys(&k, &keydir, "pw");
    let script = k.dir.path().join("open.py");
    std::fs::write(&script, OPEN_COSIGN_KEY).unwrap();
    let der = k.dir.path().join("key.der");
    let opened = Command::new(NACL_PYTHON)
        .arg(&script)
        .arg(keydir.join("cosign.key"))
        .arg("pw")
        .arg(&der)
        .output()
        .expect("scripts/setup makes /opt/kiln-nacl with PyNaCl");
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let public = run_tool(
        "openssl",
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-pubout",
        ],
    );
    assert_eq!(
        public,
        std::fs::read_to_string(keydir.join("cosign.pub")).unwrap()
    );

    // Signed: the payload under cosign's tag names the repository and the digest, and
    // openssl verifies the signature with the public key.
    let signed = k
        .cmd(&["sign", "--key", "cosign.key", &app])
        .current_dir(&keydir)
        .env("COSIGN_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let digest = String::from_utf8_lossy(&signed.stdout)
        .trim()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    let tag = digest.replace(':', "-") + ".sig";
    let manifest = get_json(&reg, &format!("team/app/manifests/{tag}"));
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert_eq!(manifest["subject"]["digest"], digest.as_str());
    let payload = reg
        .http
        .get(format!(
            "http://{}/v2/team/app/blobs/{}",
            reg.addr,
            layer["digest"].as_str().unwrap()
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        format!("{}/team/app", reg.addr)
    );
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let files = k.dir.path();
    std::fs::write(files.join("payload"), &payload).unwrap();
    std::fs::write(files.join("sig.der"), &signature).unwrap();
    run_tool(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            keydir.join("cosign.pub").to_str().unwrap(),
            "-signature",
            files.join("sig.der").to_str().unwrap(),
            files.join("payload").to_str().unwrap(),
        ],
    );
    // The registry lists it as a referrer of the image.
    let referrers = get_json(&reg, &format!("team/app/referrers/{digest}"));
    assert_eq!(
        referrers["manifests"].as_array().unwrap().len(),
        1,
        "{referrers}"
    );

    // kiln verify: this key yes; another key, or the unsigned repository, no.
    let pubkey = keydir.join("cosign.pub");
    k.ok(&["verify", "--key", pubkey.to_str().unwrap(), &app]);
    let second = k.dir.path().join("second");
    keys(&k, &second, "");
    let second_pub = second.join("cosign.pub");
    let out = k.run(&["verify", "--key", second_pub.to_str().unwrap(), &app]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signature by this key"));
    let out = k.run(&["verify", "--key", pubkey.to_str().unwrap(), &other]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no signatures")
    );
    // A second signature is added beside the first: both keys verify.
    let again = k
        .cmd(&["sign", "--key", "cosign.key", &app])
        .current_dir(&second)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        get_json(&reg, &format!("team/app/manifests/{tag}"))["layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    k.ok(&["verify", "--key", pubkey.to_str().unwrap(), &app]);
    k.ok(&["verify", "--key", second_pub.to_str().unwrap(), &app]);

    // The policy: both repositories need a signature by the first key. Pull, run and
    // FROM take the signed one and refuse the other before any of it is stored.
    let policy = k.dir.path().join("policy.json");
    let requirement = serde_json::json!([{"type": "sigstoreSigned", "keyPath": pubkey, "signedIdentity": {"type": "matchRepoDigestOrExact"}}]);
    std::fs::write(
        &policy,
        serde_json::json!({
            "default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker": {
                format!("{}/team/app", reg.addr): requirement,
                format!("{}/team", reg.addr): requirement,
            }},
        })
        .to_string(),
    )
    .unwrap();
    let fresh = Kiln::new();
    let with_policy = |args: &[&str]| {
        fresh
            .cmd(args)
            .env("KILN_SIGNATURE_POLICY", &policy)
            .output()
            .unwrap()
    };
    let out = with_policy(&["pull", &app]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for args in [
        vec!["pull", other.as_str()],
        vec!["run", "--rm", other.as_str(), "true"],
    ] {
        let out = with_policy(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was let through");
        assert!(
            err.contains("refused by the signature policy") && err.contains("policy.json"),
            "{err}"
        );
    }
    let from = context(
        &fresh.dir.path().join("from"),
        &[("Dockerfile", &format!("FROM {other}\n"))],
    );
    let out = with_policy(&["build", from.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused by the signature policy"));
    assert!(!fresh.ok(&["images"]).contains("other"));
}
