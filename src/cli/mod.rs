//! One module per subcommand.

mod attach;
mod build;
mod builder;
mod commit;
mod compose;
mod container;
mod cp;
mod etc;
mod exec;
mod exports;
mod generate;
mod health;
mod history;
mod image;
mod images;
mod import;
mod lint;
mod load;
mod login;
mod mounts;
mod network;
mod output;
mod parse;
mod pause;
mod progress;
mod ps;
mod pull;
mod push;
mod registry;
mod rmi;
mod run;
mod runtime;
mod save;
mod sign;
mod ssh;
mod streams;
mod supervisor;
mod tag;
mod transfer;
mod tty;
mod volume;

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use kiln_image::store::Store;

/// `SOURCE_DATE_EPOCH`, read here alone and handed to what makes images (build, commit,
/// import, exports): seconds since the epoch every time in the image is clamped to.
pub(crate) fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => s.trim().parse().map(Some).with_context(|| {
            format!("SOURCE_DATE_EPOCH={s}: write a number of seconds since 1970")
        }),
        Err(_) => Ok(None),
    }
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    Parse(parse::Args),
    /// Build an image from a Dockerfile.
    Build(Box<build::Args>),
    /// Check Dockerfiles: BuildKit's checks, hadolint's rules and kiln's.
    Lint(lint::Args),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(builder::Command),
    /// List images.
    Images(images::Args),
    /// Manage images (inspect, prune, ls).
    #[command(subcommand)]
    Image(image::Command),
    /// Give an image another name.
    Tag(tag::Args),
    /// Remove images.
    Rmi(rmi::Args),
    /// Show how an image was made.
    History(history::Args),
    /// Write images to a tar (an OCI layout and a docker-archive at once).
    Save(save::Args),
    /// Read images from a tar written by kiln, docker, podman or skopeo.
    Load(load::Args),
    /// Make a one-layer image from a root filesystem tarball.
    Import(import::Args),
    /// Download an image from a registry.
    Pull(pull::Args),
    /// Upload an image to a registry.
    Push(push::Args),
    /// Sign an image in its registry (cosign's signatures).
    Sign(sign::SignArgs),
    /// Check an image's signature by a public key.
    Verify(sign::VerifyArgs),
    /// Make signing keys (cosign's key files).
    #[command(subcommand)]
    Key(sign::KeyCommand),
    /// Log in to a registry (credentials kept where docker keeps them).
    Login(login::Args),
    /// Forget a registry's credentials.
    Logout(login::LogoutArgs),
    /// Run the bundled OCI registry.
    #[command(subcommand)]
    Registry(registry::Command),
    /// Run a command in a new container.
    #[command(disable_help_flag = true)]
    Run(Box<run::Args>),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Attach to a running container's streams (Ctrl-P Ctrl-Q detaches).
    Attach(attach::AttachArgs),
    /// Make a container without starting it.
    #[command(disable_help_flag = true)]
    Create(Box<run::Args>),
    /// Start created or stopped containers.
    Start(supervisor::StartArgs),
    /// Stop, then start containers.
    Restart(container::RestartArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Show a container's output.
    Logs(container::LogsArgs),
    /// Stop containers: SIGTERM, then SIGKILL after the grace time.
    Stop(container::StopArgs),
    /// Send a signal to containers.
    Kill(container::KillArgs),
    /// Freeze every process of containers.
    Pause(pause::Args),
    /// Thaw paused containers.
    Unpause(pause::Args),
    /// Remove containers.
    Rm(container::RmArgs),
    /// Wait for containers to stop and print their exit codes.
    Wait(container::WaitArgs),
    /// Copy files between a container and the host.
    Cp(cp::Args),
    /// Make an image of a container's changes.
    Commit(commit::CommitArgs),
    /// Write a container's whole tree as a tar.
    Export(commit::ExportArgs),
    /// List what a container changed in its image's tree (A, C, D).
    Diff(commit::DiffArgs),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// Show containers' CPU, memory and processes.
    Stats(container::StatsArgs),
    /// Show a container's processes.
    Top(container::TopArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::Command),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::Command),
    /// Multi-container applications from a Compose file.
    Compose(compose::Args),
    /// List a container's published ports, or the host address of one.
    Port(network::PortArgs),
    /// What concerns the whole of kiln.
    #[command(subcommand)]
    System(SystemCommand),
    /// Make files that run kiln's containers elsewhere (systemd units).
    #[command(subcommand)]
    Generate(generate::Command),
    /// kiln's OCI runtime on runc's command line (for podman --runtime, containerd).
    Runtime(runtime::Args),
    #[command(hide = true, name = "container-supervise")]
    ContainerSupervise(supervisor::SuperviseArgs),
}

#[derive(clap::Subcommand)]
pub enum SystemCommand {
    /// Start again the containers whose restart policy says so (after a reboot): `always`
    /// ones, and `unless-stopped` ones nobody stopped. Safe to run more than once.
    Restore,
}

#[derive(clap::Subcommand)]
pub enum ContainerCommand {
    /// Make a container without starting it.
    #[command(disable_help_flag = true)]
    Create(Box<run::Args>),
    /// Start created or stopped containers.
    Start(supervisor::StartArgs),
    /// Stop, then start containers.
    Restart(container::RestartArgs),
    /// Run a command in a new container.
    #[command(disable_help_flag = true)]
    Run(Box<run::Args>),
    /// List containers.
    #[command(alias = "ps", alias = "list")]
    Ls(ps::PsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Attach to a running container's streams (Ctrl-P Ctrl-Q detaches).
    Attach(attach::AttachArgs),
    /// Show what kiln knows of containers, as docker's JSON.
    Inspect(container::InspectArgs),
    /// Show a container's output.
    Logs(container::LogsArgs),
    /// Stop containers.
    Stop(container::StopArgs),
    /// Send a signal to containers.
    Kill(container::KillArgs),
    /// Freeze every process of containers.
    Pause(pause::Args),
    /// Thaw paused containers.
    Unpause(pause::Args),
    /// Remove containers.
    Rm(container::RmArgs),
    /// Wait for containers to stop.
    Wait(container::WaitArgs),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// Show containers' CPU, memory and processes.
    Stats(container::StatsArgs),
    /// Show a container's processes.
    Top(container::TopArgs),
    /// Remove every stopped container.
    Prune(container::PruneArgs),
    /// List a container's published ports.
    Port(network::PortArgs),
    /// Copy files between a container and the host.
    Cp(cp::Args),
    /// Make an image of a container's changes.
    Commit(commit::CommitArgs),
    /// Write a container's whole tree as a tar.
    Export(commit::ExportArgs),
    /// List what a container changed in its image's tree (A, C, D).
    Diff(commit::DiffArgs),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Parse(args) => parse::run(args),
        Command::Runtime(args) => runtime::run(args),
        Command::Attach(args) | Command::Container(ContainerCommand::Attach(args)) => {
            attach::attach_command(args)
        }
        Command::Build(args) => build::run(*args),
        Command::Lint(args) => lint::run(args),
        Command::Builder(command) => builder::run(command),
        Command::Images(args) => images::run(args),
        Command::Image(command) => image::run(command),
        Command::Tag(args) => tag::run(args),
        Command::Rmi(args) => rmi::run(args),
        Command::History(args) => history::run(args),
        Command::Save(args) => save::run(args),
        Command::Load(args) => load::run(args),
        Command::Import(args) => import::run(args),
        Command::Registry(command) => registry::run(command),
        Command::Pull(args) => pull::run(args),
        Command::Push(args) => push::run(args),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => sign::verify(args),
        Command::Key(command) => sign::key(command),
        Command::Login(args) => login::run(args),
        Command::Logout(args) => login::logout(args),
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => run::run(*args),
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => ps::ps(args),
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            container::logs(args)
        }
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            container::stop(args)
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            container::kill(args)
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => container::rm(args),
        Command::Wait(args) | Command::Container(ContainerCommand::Wait(args)) => {
            container::wait(args)
        }
        Command::Container(ContainerCommand::Inspect(args)) => container::inspect(args),
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => exec::exec(args),
        Command::ContainerSupervise(args) => supervisor::supervise_command(args),
        Command::Volume(command) => volume::run(command),
        Command::Network(command) => network::run(command),
        Command::Compose(args) => compose::run(args),
        Command::Port(args) | Command::Container(ContainerCommand::Port(args)) => {
            network::port(args)
        }
        Command::Create(args) | Command::Container(ContainerCommand::Create(args)) => {
            run::create(*args)
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            supervisor::start(args)
        }
        Command::Restart(args) | Command::Container(ContainerCommand::Restart(args)) => {
            container::restart(args)
        }
        Command::System(SystemCommand::Restore) => supervisor::restore(),
        Command::Generate(command) => generate::run(command),
        Command::Rename(args) | Command::Container(ContainerCommand::Rename(args)) => {
            container::rename(args)
        }
        Command::Stats(args) | Command::Container(ContainerCommand::Stats(args)) => {
            container::stats(args)
        }
        Command::Top(args) | Command::Container(ContainerCommand::Top(args)) => {
            container::top(args)
        }
        Command::Container(ContainerCommand::Prune(args)) => container::prune(args),
        Command::Cp(args) | Command::Container(ContainerCommand::Cp(args)) => cp::run(args),
        Command::Commit(args) | Command::Container(ContainerCommand::Commit(args)) => {
            commit::commit(args)
        }
        Command::Pause(args) | Command::Container(ContainerCommand::Pause(args)) => {
            pause::pause(args)
        }
        Command::Unpause(args) | Command::Container(ContainerCommand::Unpause(args)) => {
            pause::unpause(args)
        }
        Command::Diff(args) | Command::Container(ContainerCommand::Diff(args)) => {
            commit::diff(args)
        }
        Command::Export(args) | Command::Container(ContainerCommand::Export(args)) => {
            commit::export(args)
        }
    }
}

/// Prints what an `inspect` found as docker does (a JSON array); exit 1 when some name
/// was not found (said already).
fn print_inspected(found: &[serde_json::Value], failed: bool) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(found)?);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The store at `KILN_ROOT` (or the default root).
fn store() -> anyhow::Result<Store> {
    let root = Store::default_root();
    Store::open(&root).with_context(|| {
        format!(
            "opening the image store at {} (set KILN_ROOT to use another)",
            root.display()
        )
    })
}

/// Drops least recently used build cache entries until it holds at most `keep` bytes
/// (adding what went to `freed`); returns the layers it still names, for the store's
/// garbage collection to keep. Run it in [`Store::gc_after`]: removing an image must not
/// empty the build cache.
fn trim_cache(
    store: &Store,
    root: &Path,
    keep: u64,
    freed: &mut u64,
) -> kiln_image::Result<HashSet<String>> {
    let trimmed =
        kiln_builder::build::trim(store, root, keep).map_err(|e| kiln_image::Error::Io {
            op: "trim the build cache in",
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    *freed += trimmed.freed;
    Ok(trimmed.blobs)
}
