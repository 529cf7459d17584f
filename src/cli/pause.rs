//! `kiln pause` and `kiln unpause`: every process of a running container frozen (v1's
//! freezer, v2's `cgroup.freeze`) and thawed, as docker's are; `ps` says `(Paused)`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_runtime::containers::{Container, Status};

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(args: Args) -> anyhow::Result<ExitCode> {
    super::container::for_each(&args.containers, |_, c| {
        if c.state.status != Status::Running {
            bail!("container {} is not running", c.config.name);
        }
        if c.state.paused {
            bail!("container {} is already paused", c.config.name);
        }
        kiln_runtime::cgroups::freeze(Path::new(&c.cgroup_path()), true)
            .with_context(|| format!("pausing {}", c.config.name))?;
        c.state.paused = true;
        Ok(c.save_state()?)
    })
}

pub fn unpause(args: Args) -> anyhow::Result<ExitCode> {
    super::container::for_each(&args.containers, |_, c| {
        if !c.state.paused {
            bail!("container {} is not paused", c.config.name);
        }
        thaw(c)
    })
}

/// Thaws `c` if it is paused (before a signal, which a frozen process does not take).
pub(crate) fn thaw(c: &mut Container) -> anyhow::Result<()> {
    if !c.state.paused {
        return Ok(());
    }
    kiln_runtime::cgroups::freeze(Path::new(&c.cgroup_path()), false)
        .with_context(|| format!("unpausing {}", c.config.name))?;
    c.state.paused = false;
    Ok(c.save_state()?)
}
