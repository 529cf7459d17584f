//! `kiln generate systemd [--restart-policy POLICY] [-t SECONDS] CONTAINER`: a systemd unit
//! that runs a container under systemd as podman's generated units do — `kiln start -a`
//! in the foreground (systemd supervises it), `kiln stop` to stop it.

use std::process::ExitCode;

use kiln_image::store::Store;
use kiln_runtime::containers::Containers;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a systemd unit for a container.
    Systemd(SystemdArgs),
}

#[derive(clap::Args)]
pub struct SystemdArgs {
    /// systemd's Restart= (no, on-success, on-failure, always, …).
    #[arg(long, default_value = "on-failure")]
    restart_policy: String,
    /// Seconds `kiln stop` waits before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    container: String,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Systemd(args) = command;
    let root = Store::default_root();
    let c = Containers::open(&root)?.find(&args.container)?;
    let kiln = std::env::current_exe()?;
    let (name, kiln, root) = (&c.config.name, kiln.display(), root.display());
    print!(
        "# container-{name}.service\n\
         # made by kiln generate systemd\n\
         [Unit]\n\
         Description=kiln container {name}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Environment=KILN_ROOT={root}\n\
         Restart={restart}\n\
         TimeoutStopSec={timeout}\n\
         ExecStart={kiln} start -a {name}\n\
         ExecStop={kiln} stop -t {time} {name}\n\
         Type=simple\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        restart = args.restart_policy,
        timeout = args.time + 60,
        time = args.time,
    );
    Ok(ExitCode::SUCCESS)
}
