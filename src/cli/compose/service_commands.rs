//! The commands over a project's containers and images: `logs` (prefixed, coloured on
//! a terminal, as Docker Compose prints them), `stop`, `start`, `restart`, `kill`, `rm`,
//! `exec`, `port`, `run`, `pull`, `push`, `images`, `top` — each on the services named,
//! or on all of them.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use kiln_compose::Project;
use kiln_image::store::Store;
use kiln_runtime::containers::{self, Container, Containers, Status};

use super::service::{NUMBER, SERVICE};
use super::up::project_containers;

/// The project's containers of the services named (all when none is), in the order
/// services start (each service's by number); `reverse` for the order they stop.
pub(crate) fn containers_of(
    project: &Project,
    services: &[String],
    reverse: bool,
) -> anyhow::Result<(Containers, Vec<Container>)> {
    for s in services {
        if !project.file.services.contains_key(s) {
            bail!(kiln_compose::Error::NoSuchService { service: s.clone() });
        }
    }
    let store = Containers::open(&Store::default_root())?;
    let mut order: Vec<String> = kiln_compose::levels(&project.file)?
        .into_iter()
        .flatten()
        .collect();
    if reverse {
        order.reverse();
    }
    let wanted: BTreeSet<&String> = services.iter().collect();
    let all = project_containers(&store, &project.name)?;
    let number = |c: &Container| {
        c.config
            .labels
            .get(NUMBER)
            .and_then(|n| n.parse::<u32>().ok())
    };
    let mut chosen = Vec::new();
    for name in order
        .iter()
        .filter(|n| wanted.is_empty() || wanted.contains(n))
    {
        let mut of: Vec<Container> = all
            .iter()
            .filter(|c| c.config.labels.get(SERVICE) == Some(name))
            .cloned()
            .collect();
        of.sort_by_key(number);
        chosen.extend(of);
    }
    Ok((store, chosen))
}

/// `SERVICE-N`, how Docker Compose's log lines name a container.
fn short_name(c: &Container) -> String {
    format!(
        "{}-{}",
        c.config.labels.get(SERVICE).map_or("", String::as_str),
        c.config.labels.get(NUMBER).map_or("1", String::as_str)
    )
}

/// How long `logs` follows new output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Until every container has stopped (`logs -f`, `up`).
    UntilAllExit,
    /// Until one has (`up --abort-on-container-exit`).
    UntilOneExits,
}

/// `compose logs [-f] [-n N] [-t] [--no-color] [SERVICE...]`.
/// (`stop`: when following, set to end it early, as `up` does on Ctrl-C.)
pub(crate) fn logs(
    project: &Project,
    services: &[String],
    follow: Option<Follow>,
    tail: Option<usize>,
    timestamps: bool,
    no_color: bool,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    let (_, list) = containers_of(project, services, false)?;
    let width = list.iter().map(|c| short_name(c).len()).max().unwrap_or(0);
    let colour = !no_color && std::io::stdout().is_terminal();
    let prefixes: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = format!("{:<width$} | ", short_name(c));
            if colour {
                // Docker Compose's palette: cyan, yellow, green, magenta, blue, red.
                let code = [36, 33, 32, 35, 34, 31][i % 6];
                format!("\x1b[{code}m{name}\x1b[0m")
            } else {
                name
            }
        })
        .collect();
    let mut lines = Vec::new();
    let mut offsets = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let path = c.log_path();
        let mut own = Vec::new();
        for older in containers::rotated_logs(&path) {
            own.extend(containers::read_log(&older, 0)?.0);
        }
        let (current, offset) = containers::read_log(&path, 0)?;
        own.extend(current);
        if let Some(n) = tail {
            let skip = own.len().saturating_sub(n);
            own.drain(..skip);
        }
        lines.extend(own.into_iter().map(|l| (i, l)));
        offsets.push(offset);
    }
    // Interleaved as they were written.
    lines.sort_by(|a, b| a.1.time.cmp(&b.1.time));
    let print = |lines: &[(usize, containers::LogLine)]| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for (i, l) in lines {
            let time = if timestamps {
                format!("{} ", l.time)
            } else {
                String::new()
            };
            let text = l.log.strip_suffix('\n').unwrap_or(&l.log);
            writeln!(out, "{}{time}{text}", prefixes[*i])?;
        }
        out.flush()
    };
    print(&lines)?;
    if let Some(until) = follow {
        let mut list = list;
        loop {
            let (mut any_running, mut all_running) = (false, true);
            let mut more = Vec::new();
            for (i, c) in list.iter_mut().enumerate() {
                let running = c.reload().is_ok() && c.state.status != Status::Exited;
                any_running |= running;
                all_running &= running;
                let (new, next) = containers::read_log(&c.log_path(), offsets[i])?;
                offsets[i] = next;
                more.extend(new.into_iter().map(|l| (i, l)));
            }
            more.sort_by(|a, b| a.1.time.cmp(&b.1.time));
            print(&more)?;
            let stopped = stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
            let ended = match until {
                Follow::UntilAllExit => !any_running,
                Follow::UntilOneExits => !all_running,
            };
            if ended || stopped {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// `compose stop [-t N] [SERVICE...]`: dependants first.
pub(crate) fn stop(
    project: &Project,
    services: &[String],
    timeout: Option<u64>,
) -> anyhow::Result<()> {
    let (_, list) = containers_of(project, services, true)?;
    for mut c in list {
        super::super::container::stop_one(&mut c, timeout)?;
        eprintln!(" ✔ Container {}  Stopped", c.config.name);
    }
    Ok(())
}

/// `compose start [SERVICE...]`: dependencies first.
pub(crate) fn start(project: &Project, services: &[String]) -> anyhow::Result<()> {
    let (store, list) = containers_of(project, services, false)?;
    for mut c in list {
        c.settle();
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            continue;
        }
        if let Some((_, message)) = super::super::supervisor::spawn_supervisor(&store, &mut c)? {
            bail!("starting {}: {message}", c.config.name);
        }
        eprintln!(" ✔ Container {}  Started", c.config.name);
    }
    Ok(())
}

/// `compose kill [-s SIGNAL] [SERVICE...]`.
pub(crate) fn kill(project: &Project, services: &[String], signal: &str) -> anyhow::Result<()> {
    let (_, list) = containers_of(project, services, true)?;
    let names: Vec<String> = list
        .into_iter()
        .filter(|c| c.state.status == Status::Running)
        .map(|c| c.config.name)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let mut args = vec!["-s".to_string(), signal.to_string()];
    args.extend(names);
    forward::<super::super::container::KillArgs>("kill", &args, super::super::container::kill)
}

/// `compose rm [-f] [-s] [-v] [SERVICE...]`: stopped containers (`-s`: stopped first).
pub(crate) fn rm(
    project: &Project,
    services: &[String],
    stop_first: bool,
    volumes: bool,
) -> anyhow::Result<()> {
    let (store, list) = containers_of(project, services, true)?;
    for mut c in list {
        c.settle();
        if matches!(c.state.status, Status::Running | Status::Restarting) {
            if !stop_first {
                continue;
            }
            super::super::container::stop_one(&mut c, None)?;
        }
        super::super::container::remove_one(&store, &mut c, false, volumes)?;
        eprintln!(" ✔ Container {}  Removed", c.config.name);
    }
    Ok(())
}

/// The container of replica `index` of `service`.
fn replica(project: &Project, service: &str, index: u32) -> anyhow::Result<Container> {
    let (_, list) = containers_of(project, &[service.to_string()], false)?;
    list.into_iter()
        .find(|c| c.config.labels.get(NUMBER).map(String::as_str) == Some(&index.to_string()))
        .with_context(|| {
            format!("service {service} has no container number {index}: is the project up?")
        })
}

/// `compose exec [-d] [-T] [-e K=V]... [-u USER] [-w DIR] [--index N] SERVICE COMMAND...`:
/// `kiln exec` in the service's container (a terminal when ours is one, but with -T).
#[allow(clippy::too_many_arguments)]
pub(crate) fn exec(
    project: &Project,
    service: &str,
    index: u32,
    detach: bool,
    no_tty: bool,
    env: &[String],
    user: Option<&str>,
    workdir: Option<&str>,
    command: &[String],
) -> anyhow::Result<std::process::ExitCode> {
    let c = replica(project, service, index)?;
    let mut args: Vec<String> = Vec::new();
    if detach {
        args.push("-d".into());
    } else {
        args.push("-i".into());
        if !no_tty && std::io::stdin().is_terminal() {
            args.push("-t".into());
        }
    }
    for e in env {
        args.extend(["-e".to_string(), e.clone()]);
    }
    if let Some(u) = user {
        args.extend(["-u".to_string(), u.to_string()]);
    }
    if let Some(w) = workdir {
        args.extend(["-w".to_string(), w.to_string()]);
    }
    args.push(c.config.name);
    args.extend(command.iter().cloned());
    let exec: super::super::exec::ExecArgs = super::parse_args("exec", &args)?;
    super::super::exec::exec(exec)
}

/// `compose port [--index N] [--protocol P] SERVICE PRIVATE_PORT`: the host address.
pub(crate) fn port(
    project: &Project,
    service: &str,
    index: u32,
    private: u16,
    protocol: &str,
) -> anyhow::Result<()> {
    let c = replica(project, service, index)?;
    let binding = super::super::network::published(&c)
        .into_iter()
        .find(|b| b.container_port == private && b.protocol.name() == protocol)
        .with_context(|| format!("no port {private}/{protocol} for service {service}"))?;
    println!("{}", binding.host());
    Ok(())
}

fn forward<T: clap::Args>(
    name: &'static str,
    args: &[String],
    run: fn(T) -> anyhow::Result<std::process::ExitCode>,
) -> anyhow::Result<()> {
    let code = run(super::parse_args(name, args)?)?;
    if code != std::process::ExitCode::SUCCESS {
        bail!("kiln {name} failed");
    }
    Ok(())
}

/// `compose run`: a one-off container of `service` (its dependencies up first, unless
/// `no_deps`), attached in the foreground — its exit code is ours — or detached.
pub(crate) fn run(
    project: &Project,
    service: &str,
    no_deps: bool,
    detach: bool,
    one_off: &super::service::OneOff,
) -> anyhow::Result<std::process::ExitCode> {
    let Some(spec) = project.file.services.get(service) else {
        bail!(kiln_compose::Error::NoSuchService {
            service: service.to_string()
        });
    };
    let chosen = [service.to_string()].into_iter().collect();
    super::up::check_file_objects(project, &chosen)?;
    let dependencies: Vec<String> = spec.depends_on.keys().cloned().collect();
    if !no_deps && !dependencies.is_empty() {
        super::up::up(
            project,
            &super::up::UpOptions {
                start: true,
                build: false,
                scale: Default::default(),
                wait: false,
                remove_orphans: false,
                no_deps: false,
                services: dependencies,
            },
        )?;
    }
    super::up::build_images(project, &chosen, false)?;
    super::up::ensure_networks(project, &chosen)?;
    super::up::ensure_volumes(project, &chosen)?;
    let args = super::service::create_args(project, service, spec, 1, Some(one_off));
    let mut container = super::up::create_from(project, service, spec, args)?;
    let store = Containers::open(&Store::default_root())?;
    if detach {
        if let Some((_, message)) =
            super::super::supervisor::spawn_supervisor(&store, &mut container)?
        {
            bail!("starting {}: {message}", container.config.name);
        }
        println!("{}", container.config.name);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    super::super::supervisor::start_attached(
        &store,
        &mut container,
        &super::super::attach::Options {
            stdin: one_off.interactive,
            stdin_once: true,
            tty: one_off.tty,
            detach_keys: super::super::attach::parse_detach_keys("ctrl-p,ctrl-q")?,
            sig_proxy: true,
        },
    )
}

/// `compose pull` (the images of services not built here) or `compose push` (those
/// built here), one `kiln pull`/`kiln push` each.
pub(crate) fn pull_or_push(
    project: &Project,
    services: &[String],
    push: bool,
) -> anyhow::Result<()> {
    let chosen = super::up::selected(project, services, true)?;
    let mut images = BTreeSet::new();
    for name in &chosen {
        let s = &project.file.services[name];
        if s.build.is_some() == push && (push || s.image.is_some()) {
            images.insert(super::service::image(project, name, s));
        }
    }
    for image in images {
        let args = vec![image.clone()];
        if push {
            forward::<super::super::push::Args>("push", &args, super::super::push::run)?;
        } else {
            forward::<super::super::pull::Args>("pull", &args, super::super::pull::run)?;
        }
    }
    Ok(())
}

/// `compose images`: CONTAINER REPOSITORY TAG IMAGE ID SIZE.
pub(crate) fn images(project: &Project, services: &[String]) -> anyhow::Result<()> {
    let (_, list) = containers_of(project, services, false)?;
    let store = super::super::store()?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let (repository, tag) = match c.config.image.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (c.config.image.clone(), "latest".to_string()),
            };
            let size = store
                .resolve(&c.config.image)
                .map(|i| {
                    super::super::output::human_size(
                        i.manifest.layers().iter().map(|l| l.size()).sum::<u64>(),
                    )
                })
                .unwrap_or_default();
            let id = c.config.image_id.trim_start_matches("sha256:");
            vec![
                c.config.name.clone(),
                repository,
                tag,
                id[..12.min(id.len())].to_string(),
                size,
            ]
        })
        .collect();
    print!(
        "{}",
        super::super::output::table(
            &["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
            &rows
        )
    );
    Ok(())
}

/// `compose top`: each running container's name, then its processes.
pub(crate) fn top(project: &Project, services: &[String]) -> anyhow::Result<()> {
    let (_, list) = containers_of(project, services, false)?;
    for c in list.iter().filter(|c| c.state.status == Status::Running) {
        println!("{}", c.config.name);
        forward::<super::super::container::TopArgs>(
            "top",
            std::slice::from_ref(&c.config.name),
            super::super::container::top,
        )?;
        println!();
    }
    Ok(())
}

/// The exit code of `service`'s (first) container.
pub(crate) fn exit_code(project: &Project, service: &str) -> anyhow::Result<i32> {
    let mut c = replica(project, service, 1)?;
    c.settle();
    Ok(c.state.exit_code)
}

/// `services` and, transitively, the services that depend on one of them with
/// `restart: true` (restarted with it, as Docker Compose restarts them).
pub(crate) fn with_restarting_dependants(project: &Project, services: &[String]) -> Vec<String> {
    if services.is_empty() {
        return Vec::new();
    }
    let mut all: Vec<String> = services.to_vec();
    let mut i = 0;
    while i < all.len() {
        let dependency = all[i].clone();
        for (name, s) in &project.file.services {
            if s.depends_on.get(&dependency).is_some_and(|d| d.restart) && !all.contains(name) {
                all.push(name.clone());
            }
        }
        i += 1;
    }
    all
}

/// `down --rmi local|all`: the images of the project's services — `local`: only those
/// built here under the project's name (services without an `image`).
pub(crate) fn remove_images(project: &Project, which: &str) -> anyhow::Result<()> {
    let all = match which {
        "all" => true,
        "local" => false,
        other => bail!("--rmi {other}: use local or all"),
    };
    let store = super::super::store()?;
    let images: BTreeSet<String> = project
        .file
        .services
        .iter()
        .filter(|(_, s)| all || s.image.is_none())
        .map(|(name, s)| super::service::image(project, name, s))
        .filter(|image| store.resolve(image).is_ok())
        .collect();
    for image in images {
        forward::<super::super::rmi::Args>(
            "rmi",
            std::slice::from_ref(&image),
            super::super::rmi::run,
        )?;
        eprintln!(" ✔ Image {image}  Removed");
    }
    Ok(())
}
