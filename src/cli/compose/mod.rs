//! `kiln compose [-f FILE]... [-p NAME] [--profile P]... [--env-file F]...
//! [--project-directory DIR] COMMAND`: Docker Compose's command line over a project
//! read by `kiln-compose`: `config` (the normalised project, as `docker compose config`
//! prints it), `up`, `down`, `ps`, `logs`, `stop`, `start`, `restart`, `kill`, `rm`,
//! `exec`, `port`, `run`, `create`, `build`, `pull`, `push`, `images`, `top`.

mod service;
mod service_commands;
mod up;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// A Compose file (repeatable; later ones merge over earlier ones). Default:
    /// compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml) and its
    /// override file, from this directory up.
    #[arg(short, long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The project's name (default: COMPOSE_PROJECT_NAME, the file's `name`, or the
    /// directory's name).
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Turn a profile's services on (repeatable; also COMPOSE_PROFILES).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Variables to interpolate the files with (default: the project directory's .env).
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// The directory relative paths start from (default: the first file's).
    #[arg(long)]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the project as kiln reads it: merged, interpolated, every field in its long
    /// form.
    Config {
        /// Only check it: print nothing.
        #[arg(short, long)]
        quiet: bool,
        /// Print the services' names, one a line.
        #[arg(long)]
        services: bool,
        /// Print the volumes' names, one a line.
        #[arg(long)]
        volumes: bool,
        /// Print the active profiles' names.
        #[arg(long)]
        profiles: bool,
    },
    /// `--to kubernetes`: the project as Kubernetes objects (Deployments, Services,
    /// PersistentVolumeClaims, Secrets, ConfigMaps), images pinned by digest where the
    /// store knows them; else as `config`.
    Convert {
        #[arg(long, value_name = "kubernetes")]
        to: Option<String>,
        /// Write one file per object into this directory (default: standard output).
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Build, make and start the project's services, then show their output until they
    /// stop (Ctrl-C stops them); `-d`: leave them running in the background.
    Up {
        #[arg(short, long)]
        detach: bool,
        /// Build images before starting, even those the store has.
        #[arg(long)]
        build: bool,
        /// SERVICE=N: run N containers of a service.
        #[arg(long, value_name = "SERVICE=N")]
        scale: Vec<String>,
        /// Wait until the services run (and are healthy, with a healthcheck).
        #[arg(long)]
        wait: bool,
        /// Remove containers of services no longer in the file.
        #[arg(long)]
        remove_orphans: bool,
        /// Start the named services only, not what they depend on.
        #[arg(long)]
        no_deps: bool,
        /// In the foreground: stop every service when one container stops.
        #[arg(long)]
        abort_on_container_exit: bool,
        /// In the foreground: as --abort-on-container-exit, with this service's exit code
        /// as ours.
        #[arg(long, value_name = "SERVICE")]
        exit_code_from: Option<String>,
        services: Vec<String>,
    },
    /// Stop and remove the project's containers and networks (`-v`: its volumes too).
    Down {
        #[arg(short, long)]
        volumes: bool,
        /// Remove images too: `local` (those without a name of their own, built here as
        /// PROJECT-SERVICE) or `all`.
        #[arg(long, value_name = "local|all")]
        rmi: Option<String>,
        #[arg(long)]
        remove_orphans: bool,
    },
    /// Show the services' output, each line after its container's name.
    Logs {
        /// Follow new output until the containers stop.
        #[arg(short, long)]
        follow: bool,
        /// Only each container's last N lines.
        #[arg(short = 'n', long)]
        tail: Option<usize>,
        #[arg(short, long)]
        timestamps: bool,
        #[arg(long)]
        no_color: bool,
        services: Vec<String>,
    },
    /// Stop services' containers (dependants first).
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Start services' stopped containers (dependencies first).
    Start { services: Vec<String> },
    /// Stop, then start services' containers.
    Restart {
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Send a signal to services' containers.
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Remove services' stopped containers (`-s`: stop them first).
    Rm {
        /// Accepted as docker compose accepts it: kiln asks nothing.
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        stop: bool,
        /// Their anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
        services: Vec<String>,
    },
    /// Run a command in a service's running container.
    Exec {
        #[arg(short, long)]
        detach: bool,
        /// No terminal (one is given when standard input is one).
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        #[arg(short, long = "env", value_name = "K=V")]
        env: Vec<String>,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        workdir: Option<String>,
        /// Which replica (from 1).
        #[arg(long, default_value_t = 1)]
        index: u32,
        service: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the host address a service's port is published on.
    Port {
        #[arg(long, default_value_t = 1)]
        index: u32,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        service: String,
        private_port: u16,
    },
    /// Run a one-off command in a new container of a service (its dependencies
    /// started first).
    Run {
        /// Remove the container when it exits.
        #[arg(long)]
        rm: bool,
        #[arg(short, long)]
        detach: bool,
        /// Start no dependency.
        #[arg(long)]
        no_deps: bool,
        /// No terminal (one is given when standard input is one).
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Publish the service's ports (a one-off container gets none otherwise).
        #[arg(long)]
        service_ports: bool,
        #[arg(short, long = "env", value_name = "K=V")]
        env: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Make the services' containers (and networks, volumes), start none.
    Create {
        #[arg(long)]
        build: bool,
        #[arg(long, value_name = "SERVICE=N")]
        scale: Vec<String>,
        services: Vec<String>,
    },
    /// Build the services' images.
    Build { services: Vec<String> },
    /// Pull the services' images (those not built here).
    Pull { services: Vec<String> },
    /// Push the services' images that are built here.
    Push { services: Vec<String> },
    /// List the images the project's containers run.
    Images { services: Vec<String> },
    /// Show each container's processes.
    Top { services: Vec<String> },
    /// List the project's containers.
    Ps {
        /// Stopped ones too.
        #[arg(short, long)]
        all: bool,
        /// Only their IDs.
        #[arg(short, long)]
        quiet: bool,
        /// `json`: one object a line.
        #[arg(long)]
        format: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = kiln_compose::Options {
        files: args.files,
        project_name: args.project_name,
        project_dir: args.project_directory,
        profiles: args.profiles,
        env_files: args.env_files,
        working_dir: std::env::current_dir().context("the working directory")?,
        environment: std::env::vars().collect(),
    };
    let project = kiln_compose::load(&options)?;
    match args.command {
        Command::Config {
            quiet,
            services,
            volumes,
            profiles,
        } => {
            let file = project.active();
            if quiet {
            } else if services {
                for name in file.services.keys() {
                    println!("{name}");
                }
            } else if volumes {
                for name in file.volumes.keys() {
                    println!("{name}");
                }
            } else if profiles {
                let all: std::collections::BTreeSet<&String> = project
                    .file
                    .services
                    .values()
                    .flat_map(|s| &s.profiles)
                    .collect();
                for p in all {
                    println!("{p}");
                }
            } else {
                print!("{}", kiln_compose::config(&project));
            }
        }
        Command::Convert { to, output } => match to.as_deref() {
            None | Some("compose") => print!("{}", kiln_compose::config(&project)),
            Some("kubernetes" | "k8s") => kubernetes(&project, output.as_deref())?,
            Some(other) => bail!("--to {other}: kiln converts to kubernetes"),
        },
        Command::Up {
            detach,
            build,
            scale,
            wait,
            remove_orphans,
            no_deps,
            abort_on_container_exit,
            exit_code_from,
            services,
        } => {
            if (abort_on_container_exit || exit_code_from.is_some()) && detach {
                bail!("--abort-on-container-exit and --exit-code-from work in the foreground: leave out -d");
            }
            let scale = scales(&scale)?;
            let chosen: Vec<String> = up::selected(&project, &services, no_deps)?
                .into_iter()
                .collect();
            up::up(
                &project,
                &up::UpOptions {
                    start: true,
                    build,
                    scale,
                    wait,
                    remove_orphans,
                    no_deps,
                    services,
                },
            )?;
            if !detach {
                let abort = match exit_code_from {
                    Some(service) => Some(Some(service)),
                    None => abort_on_container_exit.then_some(None),
                };
                return attached(&project, &chosen, abort);
            }
        }
        Command::Down {
            volumes,
            rmi,
            remove_orphans,
        } => {
            up::down(
                &project,
                &up::DownOptions {
                    volumes,
                    remove_orphans,
                },
            )?;
            if let Some(which) = rmi {
                service_commands::remove_images(&project, &which)?;
            }
        }
        Command::Ps { all, quiet, format } => ps(&project, all, quiet, format.as_deref())?,
        Command::Run {
            rm,
            detach,
            no_deps,
            no_tty,
            service_ports,
            env,
            name,
            service,
            command,
        } => {
            let one_off = service::OneOff {
                name: name.unwrap_or_else(|| {
                    let id = super::run::random_id().unwrap_or_default();
                    format!("{}-{service}-run-{}", project.name, &id[..12.min(id.len())])
                }),
                command,
                env,
                service_ports,
                remove: rm,
                interactive: !detach,
                tty: !detach && !no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin()),
            };
            return service_commands::run(&project, &service, no_deps, detach, &one_off);
        }
        Command::Create {
            build,
            scale,
            services,
        } => up::up(
            &project,
            &up::UpOptions {
                start: false,
                build,
                scale: scales(&scale)?,
                wait: false,
                remove_orphans: false,
                no_deps: false,
                services,
            },
        )?,
        Command::Build { services } => {
            let chosen = up::selected(&project, &services, true)?;
            up::build_images(&project, &chosen, true)?;
        }
        Command::Pull { services } => service_commands::pull_or_push(&project, &services, false)?,
        Command::Push { services } => service_commands::pull_or_push(&project, &services, true)?,
        Command::Images { services } => service_commands::images(&project, &services)?,
        Command::Top { services } => service_commands::top(&project, &services)?,
        Command::Logs {
            follow,
            tail,
            timestamps,
            no_color,
            services,
        } => service_commands::logs(
            &project,
            &services,
            follow.then_some(service_commands::Follow::UntilAllExit),
            tail,
            timestamps,
            no_color,
            None,
        )?,
        Command::Stop { timeout, services } => {
            service_commands::stop(&project, &services, timeout)?
        }
        Command::Start { services } => service_commands::start(&project, &services)?,
        Command::Restart { timeout, services } => {
            let services = service_commands::with_restarting_dependants(&project, &services);
            service_commands::stop(&project, &services, timeout)?;
            service_commands::start(&project, &services)?;
        }
        Command::Kill { signal, services } => service_commands::kill(&project, &services, &signal)?,
        Command::Rm {
            stop,
            volumes,
            services,
            ..
        } => service_commands::rm(&project, &services, stop, volumes)?,
        Command::Exec {
            detach,
            no_tty,
            env,
            user,
            workdir,
            index,
            service,
            command,
        } => {
            return service_commands::exec(
                &project,
                &service,
                index,
                detach,
                no_tty,
                &env,
                user.as_deref(),
                workdir.as_deref(),
                &command,
            )
        }
        Command::Port {
            index,
            protocol,
            service,
            private_port,
        } => service_commands::port(&project, &service, index, private_port, &protocol)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `convert --to kubernetes`: the objects, as one YAML stream or a file each in `dir`;
/// what has no Kubernetes counterpart said on standard error.
fn kubernetes(
    project: &kiln_compose::Project,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let store = super::store()?;
    let pinned = |image: &str| {
        let resolved = store.resolve(image).ok()?;
        let name = image.split('@').next().unwrap_or(image);
        Some(format!("{name}@{}", resolved.manifest_digest))
    };
    let objects =
        kiln_compose::kubernetes::convert(project, &pinned, &mut |w| eprintln!("WARN {w}"))?;
    match dir {
        None => {
            for o in &objects {
                print!("---\n{}", o.to_yaml());
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for o in &objects {
                let path = dir.join(o.file_name());
                std::fs::write(&path, o.to_yaml())
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

/// `--scale SERVICE=N` flags.
fn scales(flags: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    flags
        .iter()
        .map(|s| {
            let (name, n) = s
                .split_once('=')
                .with_context(|| format!("--scale {s}: write SERVICE=N"))?;
            let n: u32 = n
                .parse()
                .with_context(|| format!("--scale {s}: N is a count"))?;
            Ok((name.to_string(), n))
        })
        .collect()
}

/// `up` in the foreground: the services' output until they all stop; Ctrl-C (or
/// SIGTERM) stops them — gracefully, or at once on a second one — as Docker Compose
/// does, with its exit code (130). `abort`: stop them all when one container stops
/// (`--abort-on-container-exit`), with a service's exit code as ours
/// (`--exit-code-from`: `Some(Some(service))`).
fn attached(
    project: &kiln_compose::Project,
    services: &[String],
    abort: Option<Option<String>>,
) -> anyhow::Result<ExitCode> {
    use nix::sys::signal::{SigSet, Signal};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("blocking SIGINT and SIGTERM")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while set.wait().is_ok() {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        }
    });
    let follow = if abort.is_some() {
        service_commands::Follow::UntilOneExits
    } else {
        service_commands::Follow::UntilAllExit
    };
    service_commands::logs(
        project,
        services,
        Some(follow),
        None,
        false,
        false,
        Some(&stop),
    )?;
    if stop.load(Ordering::SeqCst) {
        service_commands::stop(project, services, None)?;
        return Ok(ExitCode::from(130));
    }
    let Some(from) = abort else {
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!("Aborting on container exit...");
    service_commands::stop(project, services, None)?;
    let code = match from {
        Some(service) => service_commands::exit_code(project, &service)?,
        None => 0,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `compose ps`: docker compose's columns (NAME IMAGE COMMAND SERVICE CREATED STATUS
/// PORTS), or a JSON object a line.
fn ps(
    project: &kiln_compose::Project,
    all: bool,
    quiet: bool,
    format: Option<&str>,
) -> anyhow::Result<()> {
    let containers =
        kiln_runtime::containers::Containers::open(&kiln_image::store::Store::default_root())?;
    let mut rows = Vec::new();
    for mut c in up::project_containers(&containers, &project.name)? {
        c.settle();
        let running = c.state.status == kiln_runtime::containers::Status::Running;
        if !all && !running {
            continue;
        }
        if quiet {
            println!("{}", c.config.id);
            continue;
        }
        let fields = super::ps::ps_fields(&c, false);
        let field = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let service = c
            .config
            .labels
            .get(service::SERVICE)
            .cloned()
            .unwrap_or_default();
        match format {
            Some("json") => {
                let mut object = fields.clone();
                object.insert("Name".into(), c.config.name.clone().into());
                object.insert("Service".into(), service.into());
                object.insert("Project".into(), project.name.clone().into());
                println!("{}", serde_json::Value::Object(object));
            }
            Some(other) => bail!("--format {other}: kiln compose ps takes json"),
            None => rows.push(vec![
                c.config.name.clone(),
                field("Image"),
                field("Command"),
                service,
                field("RunningFor"),
                field("Status"),
                field("Ports"),
            ]),
        }
    }
    if !quiet && format.is_none() {
        print!(
            "{}",
            super::output::table(
                &["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"],
                &rows
            )
        );
    }
    Ok(())
}

/// A kiln subcommand's arguments read from `args`, as if typed after `kiln NAME`: a
/// service's container is made and used by the same code, and checked the same way, as
/// one typed by hand.
pub(crate) fn parse_args<T: clap::Args>(name: &'static str, args: &[String]) -> anyhow::Result<T> {
    let command = T::augment_args(
        clap::Command::new(name)
            .no_binary_name(true)
            .disable_help_flag(true),
    );
    let matches = command
        .try_get_matches_from(args)
        .with_context(|| format!("kiln {name} {}", args.join(" ")))?;
    Ok(<T as clap::FromArgMatches>::from_arg_matches(&matches)?)
}
