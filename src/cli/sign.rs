//! `kiln sign --key KEY IMAGE`, `kiln verify --key PUB IMAGE`, `kiln key generate
//! [PREFIX]`: cosign's signatures and key files (see `kiln_image::signing`). A key
//! file's password comes from `COSIGN_PASSWORD`, as cosign takes it (empty when unset).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_image::client::Registry;
use kiln_image::signing::{self, keys};
use kiln_image::Reference;

#[derive(clap::Args)]
pub struct SignArgs {
    /// The private key: cosign's encrypted file (`kiln key generate`, `cosign
    /// generate-key-pair`) or an unencrypted PKCS#8/SEC1 PEM.
    #[arg(long)]
    key: PathBuf,
    /// The image in its registry: REGISTRY/REPOSITORY:TAG or @DIGEST.
    image: String,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The public key (a PEM), as cosign.pub.
    #[arg(long)]
    key: PathBuf,
    image: String,
}

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Make an ECDSA P-256 key pair as cosign does: PREFIX.key (encrypted with
    /// COSIGN_PASSWORD) and PREFIX.pub.
    Generate {
        #[arg(default_value = "cosign")]
        prefix: String,
    },
}

fn password() -> Vec<u8> {
    std::env::var_os("COSIGN_PASSWORD")
        .map(|p| p.into_encoded_bytes())
        .unwrap_or_default()
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = keys::read_private(
        &read(&args.key)?,
        &password(),
        &args.key.display().to_string(),
    )?;
    let reference = Reference::parse(&args.image)?;
    let registry = Registry::new(&reference.domain)?;
    let store = super::store()?;
    eprintln!("Pushing signature to: {}", reference.name());
    let digest = signing::sign(&registry, &store, &reference, &key, &|_: String| {})?;
    println!("{}@{digest}", reference.name());
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = keys::read_public(&read(&args.key)?, &args.key.display().to_string())?;
    let reference = Reference::parse(&args.image)?;
    let registry = Registry::new(&reference.domain)?;
    let store = super::store()?;
    let subject = signing::resolve(&registry, &reference)?;
    signing::verify(&registry, &store, &reference, subject.digest(), &key)?;
    eprintln!("Verification for {} --", args.image);
    eprintln!("The signature was verified against the specified public key");
    println!("{}@{}", reference.name(), subject.digest());
    Ok(ExitCode::SUCCESS)
}

pub fn key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    let KeyCommand::Generate { prefix } = command;
    let (private, public) = keys::generate(&password())?;
    let (key_path, pub_path) = (format!("{prefix}.key"), format!("{prefix}.pub"));
    for path in [&key_path, &pub_path] {
        if std::path::Path::new(path).exists() {
            anyhow::bail!("{path} exists: move it away or choose another prefix");
        }
    }
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("writing {key_path}"))?;
        f.write_all(private.as_bytes())?;
    }
    std::fs::write(&pub_path, public).with_context(|| format!("writing {pub_path}"))?;
    eprintln!("Private key written to {key_path}");
    eprintln!("Public key written to {pub_path}");
    Ok(ExitCode::SUCCESS)
}
