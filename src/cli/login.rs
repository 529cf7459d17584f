//! `kiln login [-u USER] [-p PASS | --password-stdin] REGISTRY` and `kiln logout REGISTRY`:
//! credentials in Docker's config.json (or its credential helper), shared with docker.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_image::client::{credentials, Config, Credentials, Registry};

#[derive(clap::Args)]
pub struct Args {
    /// The registry host: `registry.example.com`, `127.0.0.1:5000` (default: docker.io).
    registry: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// The password (visible to other users in the process list: prefer
    /// --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    registry: Option<String>,
}

fn host(registry: Option<String>) -> String {
    registry
        .map(|r| {
            r.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        })
        .unwrap_or_else(|| kiln_image::reference::DEFAULT_DOMAIN.to_string())
}

fn prompt(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("{what} needed: give it with the option, or run on a terminal");
    }
    eprint!("{what}: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let host = host(args.registry);
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin: give one"),
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => prompt("Password")?,
    };
    let credentials = Credentials { username, password };
    let insecure = Config::load()?.insecure(&host);
    Registry::with_credentials(&host, Some(credentials.clone()), insecure)?.login()?;
    credentials::store(&host, &credentials)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let host = host(args.registry);
    if credentials::erase(&host)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(ExitCode::SUCCESS)
}
