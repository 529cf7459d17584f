//! `kiln volume create [NAME] [--label K=V]...`, `ls [-q]`, `inspect NAME...`,
//! `rm [-f] NAME...`, `prune [-a] [-f]`: docker's volume commands.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use kiln_image::store::Store;
use kiln_runtime::containers::{Containers, MountType};
use kiln_runtime::volumes::{Volume, Volumes};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a volume (a generated name when none is given).
    Create {
        name: Option<String>,
        #[arg(short, long = "label", value_name = "K=V")]
        labels: Vec<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as docker's JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm {
        /// Accepted as docker accepts it; a volume in use is still refused.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (`-a`: named ones too).
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

/// The container that uses volume `name`, if any (whatever its state: docker keeps a
/// stopped container's volumes too).
pub(crate) fn user_of(containers: &Containers, name: &str) -> anyhow::Result<Option<String>> {
    Ok(containers
        .list()?
        .into_iter()
        .find(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.kind == MountType::Volume && m.source == name)
        })
        .map(|c| c.config.name))
}

fn inspect_json(v: &Volume) -> serde_json::Value {
    json!({
        "CreatedAt": v.created,
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let root = Store::default_root();
    let volumes = Volumes::open(&root)?;
    let containers = Containers::open(&root)?;
    match command {
        Command::Create { name, labels } => {
            let name = match name {
                Some(n) => n,
                None => super::run::random_id()?,
            };
            let labels: BTreeMap<String, String> = labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let anonymous = super::mounts::is_anonymous(&name);
            volumes.create(&name, labels, anonymous)?;
            println!("{name}");
        }
        Command::Ls { quiet } => {
            let list = volumes.list()?;
            if !quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for v in list {
                if quiet {
                    println!("{}", v.name);
                } else {
                    println!("{:<10}{}", "local", v.name);
                }
            }
        }
        Command::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match volumes.get(n) {
                    Ok(v) => out.push(inspect_json(&v)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            return super::print_inspected(&out, failed);
        }
        Command::Rm { names, .. } => {
            let mut failed = false;
            for n in &names {
                let result = match user_of(&containers, n)? {
                    Some(c) => Err(kiln_runtime::Error::VolumeInUse {
                        name: n.clone(),
                        container: c,
                    }),
                    None => volumes.remove(n),
                };
                match result {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Prune { all, force } => {
            if !force {
                bail!("kiln volume prune removes volumes without asking: pass -f");
            }
            println!("Deleted Volumes:");
            for v in volumes.list()? {
                if (all || v.anonymous) && user_of(&containers, &v.name)?.is_none() {
                    volumes.remove(&v.name)?;
                    println!("{}", v.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
