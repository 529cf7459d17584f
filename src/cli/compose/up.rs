//! `kiln compose up -d` and `down`: the project's images built, its networks and
//! volumes made, its services started level by level of the dependency graph (each
//! waiting on its dependencies' conditions), containers whose configuration changed
//! made again and the others left as they are; `down` the same backwards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kiln_compose::model::{Condition, Service};
use kiln_compose::Project;
use kiln_image::store::Store;
use kiln_runtime::containers::{Container, Containers, Status};
use kiln_runtime::networks::{Attachment, Driver, NetworkRequest, Networks};
use kiln_runtime::volumes::Volumes;

use super::service::{self, CONFIG_HASH, NUMBER, PROJECT, SERVICE};

/// How long a dependency may take to be healthy or to complete (docker compose waits
/// without a limit; a broken project should not hang a CI job for ever).
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) struct UpOptions {
    /// `create`: make the containers, start none.
    pub start: bool,
    pub build: bool,
    pub scale: BTreeMap<String, u32>,
    pub wait: bool,
    pub remove_orphans: bool,
    pub no_deps: bool,
    pub services: Vec<String>,
}

/// Tells what happened to a resource, as Docker Compose's progress lines do.
fn said(kind: &str, name: &str, what: &str) {
    eprintln!(" ✔ {kind} {name}  {what}");
}

/// The containers of a project, by their labels.
pub(crate) fn project_containers(
    containers: &Containers,
    project: &str,
) -> anyhow::Result<Vec<Container>> {
    let mut found: Vec<Container> = containers
        .list()?
        .into_iter()
        .filter(|c| c.config.labels.get(PROJECT).map(String::as_str) == Some(project))
        .collect();
    found.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    Ok(found)
}

/// The services `up` starts: those named (and what they depend on, unless `no_deps`),
/// else every service whose profile is active.
pub(crate) fn selected(
    project: &Project,
    named: &[String],
    no_deps: bool,
) -> anyhow::Result<BTreeSet<String>> {
    if named.is_empty() {
        return Ok(project
            .file
            .services
            .keys()
            .filter(|s| !project.disabled.contains(*s))
            .cloned()
            .collect());
    }
    let mut chosen = BTreeSet::new();
    let mut todo: Vec<String> = named.to_vec();
    while let Some(name) = todo.pop() {
        let Some(service) = project.file.services.get(&name) else {
            bail!(kiln_compose::Error::NoSuchService { service: name });
        };
        if chosen.insert(name.clone()) && !no_deps {
            todo.extend(service.depends_on.keys().cloned());
        }
    }
    Ok(chosen)
}

pub(crate) fn up(project: &Project, o: &UpOptions) -> anyhow::Result<()> {
    let root = Store::default_root();
    let containers = Containers::open(&root)?;
    let chosen = selected(project, &o.services, o.no_deps)?;
    for name in o.scale.keys() {
        if !project.file.services.contains_key(name) {
            bail!("--scale {name}: no such service");
        }
    }
    check_file_objects(project, &chosen)?;
    if o.start {
        check_ports(project, &containers, &chosen)?;
    }
    build_images(project, &chosen, o.build)?;
    ensure_networks(project, &chosen)?;
    ensure_volumes(project, &chosen)?;
    let orphans: Vec<Container> = project_containers(&containers, &project.name)?
        .into_iter()
        .filter(|c| {
            c.config
                .labels
                .get(SERVICE)
                .is_none_or(|s| !project.file.services.contains_key(s))
        })
        .collect();
    for mut orphan in orphans {
        if o.remove_orphans {
            super::super::container::remove_one(&containers, &mut orphan, true, false)?;
            said("Container", &orphan.config.name, "Removed");
        } else {
            eprintln!(
                "WARN Found orphan container ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                orphan.config.name
            );
        }
    }
    // Services whose containers were made again or restarted: a service depending on
    // one with `restart: true` is restarted after it, as Docker Compose does.
    let mut changed = BTreeSet::new();
    for level in kiln_compose::levels(&project.file)? {
        for name in level.iter().filter(|n| chosen.contains(*n)) {
            let service = &project.file.services[name];
            wait_for_dependencies(project, &containers, name, service, &chosen)?;
            let replicas = o
                .scale
                .get(name)
                .copied()
                .or(service.deploy.as_ref().and_then(|d| d.replicas))
                .unwrap_or(1);
            let restart = service
                .depends_on
                .iter()
                .any(|(dependency, d)| d.restart && changed.contains(dependency));
            let plan = Converge {
                replicas,
                start: o.start,
                restart,
            };
            if converge(project, &containers, name, service, &plan)? {
                changed.insert(name.clone());
            }
        }
    }
    if o.wait {
        for name in &chosen {
            let service = &project.file.services[name];
            let condition = if service.healthcheck.is_some() {
                Condition::ServiceHealthy
            } else {
                Condition::ServiceStarted
            };
            wait_for(project, &containers, name, condition)?;
        }
    }
    Ok(())
}

/// Refuses, before anything is made, a secret or config the chosen services use that
/// has no file to bind (`environment`, `content`: not yet made into files).
pub(crate) fn check_file_objects(
    project: &Project,
    chosen: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for name in chosen {
        let service = &project.file.services[name];
        for (refs, objects, kind) in [
            (&service.secrets, &project.file.secrets, "secret"),
            (&service.configs, &project.file.configs, "config"),
        ] {
            for r in refs {
                if objects.get(&r.source).is_some_and(|o| o.file.is_none()) {
                    bail!(
                        "service {name}: {kind} {}: only a `file` {kind} can be used yet: write its value to a file and name it with `file:`",
                        r.source
                    );
                }
            }
        }
    }
    Ok(())
}

/// Refuses, before anything is made, a host port the chosen services publish that is
/// in use — but by this project's own running containers, which keep theirs.
fn check_ports(
    project: &Project,
    containers: &Containers,
    chosen: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let held: Vec<kiln_runtime::networks::PortBinding> =
        project_containers(containers, &project.name)?
            .iter()
            .flat_map(super::super::network::published)
            .collect();
    for name in chosen {
        for port in &project.file.services[name].ports {
            let Some(published) = &port.published else {
                continue;
            };
            let spec = match &port.host_ip {
                Some(ip) => format!("{ip}:{published}:{}/{}", port.target, port.protocol),
                None => format!("{published}:{}/{}", port.target, port.protocol),
            };
            let mut bindings = kiln_runtime::networks::ports::parse(&spec)
                .with_context(|| format!("service {name}"))?;
            bindings.retain(|b| {
                !held
                    .iter()
                    .any(|h| h.host_port == b.host_port && h.protocol == b.protocol)
            });
            // Bound and let go at once: the container's supervisor binds it again.
            kiln_runtime::networks::ports::reserve(&mut bindings)
                .with_context(|| format!("service {name} publishes port {published}"))?;
        }
    }
    Ok(())
}

/// Builds the images of the chosen services that have a `build` section — all of them
/// with `--build`, else those the store lacks — with `kiln build` in a process of its
/// own (a build unshares its mount namespace).
pub(crate) fn build_images(
    project: &Project,
    chosen: &BTreeSet<String>,
    always: bool,
) -> anyhow::Result<()> {
    let store = super::super::store()?;
    // Built-only services (behind a profile, as the sample's base) build too when a
    // chosen service runs their image.
    let wanted: BTreeSet<String> = chosen
        .iter()
        .map(|n| service::image(project, n, &project.file.services[n]))
        .collect();
    // Every build's command first, so a missing context or secret stops before any
    // build has run.
    let mut builds = Vec::new();
    for (name, s) in &project.file.services {
        let Some(build) = &s.build else { continue };
        let image = service::image(project, name, s);
        if !(chosen.contains(name) || wanted.contains(&image)) {
            continue;
        }
        if !always && store.resolve(&image).is_ok() {
            continue;
        }
        builds.push((build_command(project, name, build, &image)?, image));
    }
    for (mut cmd, image) in builds {
        let status = cmd.status().context("starting kiln build")?;
        if !status.success() {
            bail!("building image {image} failed");
        }
        said("Image", &image, "Built");
    }
    Ok(())
}

/// `kiln build` for a service's `build` section, in a process of its own.
fn build_command(
    project: &Project,
    name: &str,
    build: &kiln_compose::model::Build,
    image: &str,
) -> anyhow::Result<std::process::Command> {
    let context = std::path::Path::new(&build.context);
    if !context.is_dir() {
        bail!(
            "service {name}: build context {} is not a directory: create it, or correct build.context",
            context.display()
        );
    }
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["build", "-t", image]);
    if let Some(dockerfile) = &build.dockerfile {
        cmd.arg("-f").arg(context.join(dockerfile));
    }
    if let Some(target) = &build.target {
        cmd.args(["--target", target]);
    }
    for (k, v) in &build.args {
        cmd.arg("--build-arg").arg(match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        });
    }
    for (k, v) in &build.labels {
        cmd.arg("--label").arg(format!("{k}={v}"));
    }
    for from in &build.cache_from {
        cmd.arg("--cache-from").arg(from);
    }
    match build.cache_to.as_slice() {
        [] => {}
        [to] => {
            cmd.arg("--cache-to").arg(to);
        }
        _ => bail!("service {name}: build.cache_to: kiln exports one cache: name one"),
    }
    // A build secret's id is its target, else its name; its file the top-level one's.
    for r in &build.secrets {
        let Some(file) = project
            .file
            .secrets
            .get(&r.source)
            .and_then(|o| o.file.as_ref())
        else {
            bail!(
                "service {name}: build secret {}: only a `file` secret can be used: define it at the top level with `file:`",
                r.source
            );
        };
        let id = r.target.as_deref().unwrap_or(&r.source);
        cmd.arg("--secret").arg(format!("id={id},src={file}"));
    }
    cmd.arg(context);
    Ok(cmd)
}

/// The project's networks the chosen services use, made when missing (labelled as
/// Docker Compose labels them); an external one must exist.
pub(crate) fn ensure_networks(project: &Project, chosen: &BTreeSet<String>) -> anyhow::Result<()> {
    let networks = Networks::open(&Store::default_root())?;
    let used: BTreeSet<&String> = chosen
        .iter()
        .filter(|n| project.file.services[*n].network_mode.is_none())
        .flat_map(|n| project.file.services[n].networks.keys())
        .collect();
    for key in used {
        let spec = &project.file.networks[key];
        let real = spec.name.clone().unwrap_or_else(|| key.clone());
        if networks.find(&real).is_ok() {
            continue;
        }
        if spec.external {
            bail!("network {real} declared as external, but could not be found: create it first (kiln network create {real})");
        }
        let mut labels = spec.labels.clone();
        labels.insert(PROJECT.into(), project.name.clone());
        labels.insert("com.docker.compose.network".into(), key.clone());
        let subnet = spec
            .ipam
            .as_ref()
            .and_then(|ipam| ipam.get("config"))
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("subnet"))
            .and_then(|s| s.as_str())
            .map(|s| s.parse())
            .transpose()
            .with_context(|| format!("network {key}: ipam subnet"))?;
        networks.create(NetworkRequest {
            name: real.clone(),
            driver: Some(match spec.driver.as_deref() {
                None | Some("bridge") => Driver::Bridge,
                Some("macvlan") => Driver::Macvlan,
                Some(other) => {
                    bail!("network {key}: kiln's drivers are bridge and macvlan, not {other}")
                }
            }),
            subnet,
            gateway: None,
            internal: spec.internal,
            labels,
            options: spec.driver_opts.clone(),
        })?;
        said("Network", &real, "Created");
    }
    Ok(())
}

/// The named volumes the chosen services mount, made when missing.
pub(crate) fn ensure_volumes(project: &Project, chosen: &BTreeSet<String>) -> anyhow::Result<()> {
    let volumes = Volumes::open(&Store::default_root())?;
    for name in chosen {
        for v in &project.file.services[name].volumes {
            let Some(key) = v
                .source
                .as_ref()
                .filter(|_| v.kind == kiln_compose::model::VolumeKind::Volume)
            else {
                continue;
            };
            let spec = &project.file.volumes[key];
            let real = spec.name.clone().unwrap_or_else(|| key.clone());
            if volumes.get(&real).is_ok() {
                continue;
            }
            if spec.external {
                bail!(
                    "external volume {real} not found: create it first (kiln volume create {real})"
                );
            }
            let mut labels = spec.labels.clone();
            labels.insert(PROJECT.into(), project.name.clone());
            labels.insert("com.docker.compose.volume".into(), key.clone());
            volumes.create(&real, labels, false)?;
            said("Volume", &real, "Created");
        }
    }
    Ok(())
}

/// Waits until the service's dependencies meet their conditions.
fn wait_for_dependencies(
    project: &Project,
    containers: &Containers,
    name: &str,
    service: &Service,
    chosen: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for (dependency, d) in &service.depends_on {
        if chosen.contains(dependency) {
            wait_for(project, containers, dependency, d.condition)
                .with_context(|| format!("service {name} waits on {dependency}"))?;
        }
    }
    Ok(())
}

/// Waits until every container of `service` meets `condition`.
fn wait_for(
    project: &Project,
    containers: &Containers,
    service: &str,
    condition: Condition,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
    loop {
        let mut all = true;
        for mut c in project_containers(containers, &project.name)?
            .into_iter()
            .filter(|c| c.config.labels.get(SERVICE).map(String::as_str) == Some(service))
        {
            c.settle();
            let met = match condition {
                Condition::ServiceStarted => c.state.status == Status::Running,
                Condition::ServiceHealthy => {
                    let health = super::super::health::read(&c.dir).map(|h| h.status);
                    if health.as_deref() == Some("unhealthy") {
                        bail!(
                            "dependency failed to start: container {} is unhealthy",
                            c.config.name
                        );
                    }
                    c.state.status == Status::Running && health.as_deref() == Some("healthy")
                }
                Condition::ServiceCompletedSuccessfully => match c.state.status {
                    Status::Exited if c.state.exit_code == 0 => true,
                    Status::Exited => bail!(
                        "service {service} didn't complete successfully: exit {}",
                        c.state.exit_code
                    ),
                    _ => false,
                },
            };
            all &= met;
        }
        if all {
            if condition == Condition::ServiceHealthy {
                said(
                    "Container",
                    &format!("{}-{service}", project.name),
                    "Healthy",
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("service {service} did not become {condition:?} within {DEPENDENCY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `converge` makes of a service.
struct Converge {
    replicas: u32,
    /// Start its containers (`create` does not).
    start: bool,
    /// Restart those kept running (a dependency with `restart: true` changed).
    restart: bool,
}

/// Makes the service's containers what the file says: `replicas` of them, each with
/// the current configuration (a changed one made again), running. Says whether a
/// running container was made again or restarted.
fn converge(
    project: &Project,
    containers: &Containers,
    name: &str,
    service: &Service,
    plan: &Converge,
) -> anyhow::Result<bool> {
    let hash = service::config_hash(service);
    let existing: Vec<Container> = project_containers(containers, &project.name)?
        .into_iter()
        .filter(|c| c.config.labels.get(SERVICE).map(String::as_str) == Some(name))
        .collect();
    let number = |c: &Container| {
        c.config
            .labels
            .get(NUMBER)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let mut changed = false;
    for n in 1..=plan.replicas {
        let current = existing.iter().find(|c| number(c) == n).cloned();
        let mut container = match current {
            Some(mut c) if c.config.labels.get(CONFIG_HASH) == Some(&hash) => {
                c.settle();
                if plan.restart && plan.start && c.state.status == Status::Running {
                    super::super::container::stop_one(&mut c, None)?;
                    said("Container", &c.config.name, "Restarting");
                    changed = true;
                }
                c
            }
            Some(mut stale) => {
                super::super::container::remove_one(containers, &mut stale, true, false)?;
                said("Container", &stale.config.name, "Recreated");
                changed = true;
                create(project, name, service, n)?
            }
            None => create(project, name, service, n)?,
        };
        container.settle();
        if !plan.start {
            said("Container", &container.config.name, "Created");
        } else if !matches!(container.state.status, Status::Running | Status::Restarting) {
            if let Some((_, message)) =
                super::super::supervisor::spawn_supervisor(containers, &mut container)?
            {
                bail!("starting {}: {message}", container.config.name);
            }
            said("Container", &container.config.name, "Started");
        }
    }
    for mut extra in existing.into_iter().filter(|c| number(c) > plan.replicas) {
        super::super::container::stop_one(&mut extra, None)?;
        super::super::container::remove_one(containers, &mut extra, true, false)?;
        said("Container", &extra.config.name, "Removed");
    }
    Ok(changed)
}

/// Makes replica `n` of a service (not started): `kiln create`'s checks and flags,
/// its other networks added to it.
fn create(project: &Project, name: &str, service: &Service, n: u32) -> anyhow::Result<Container> {
    create_from(
        project,
        name,
        service,
        service::create_args(project, name, service, n, None),
    )
}

/// Makes a service's container from `kiln create`'s arguments `args`, its other
/// networks added to it.
pub(crate) fn create_from(
    project: &Project,
    name: &str,
    service: &Service,
    args: Vec<String>,
) -> anyhow::Result<Container> {
    let create: super::super::run::Args =
        super::parse_args("create", &args).with_context(|| format!("service {name}"))?;
    // Its other networks, read before anything is made.
    let mut others = Vec::new();
    if service.network_mode.is_none() {
        for (network, mut aliases, ip) in service::networks(project, service).into_iter().skip(1) {
            aliases.push(name.to_string());
            let ip = ip
                .map(|i| i.parse())
                .transpose()
                .with_context(|| format!("service {name}: network {network}: ipv4_address"))?;
            others.push(Attachment {
                network,
                aliases,
                ip,
            });
        }
    }
    let (_, mut container) = super::super::run::create_container(&create)?;
    if !others.is_empty() {
        container.config.networks.extend(others);
        container.save_config()?;
    }
    Ok(container)
}

pub(crate) struct DownOptions {
    pub volumes: bool,
    pub remove_orphans: bool,
}

pub(crate) fn down(project: &Project, o: &DownOptions) -> anyhow::Result<()> {
    let root = Store::default_root();
    let containers = Containers::open(&root)?;
    let mut levels = kiln_compose::levels(&project.file)?;
    levels.reverse();
    let all = project_containers(&containers, &project.name)?;
    let service_of = |c: &Container| c.config.labels.get(SERVICE).cloned().unwrap_or_default();
    // Orphans first (with --remove-orphans), then the services level by level,
    // dependants first; each level's containers stopped at once, as Docker Compose stops
    // them.
    let mut groups: Vec<Vec<Container>> = Vec::new();
    if o.remove_orphans {
        groups.push(
            all.iter()
                .filter(|c| !project.file.services.contains_key(&service_of(c)))
                .cloned()
                .collect(),
        );
    }
    for level in &levels {
        groups.push(
            all.iter()
                .filter(|c| level.contains(&service_of(c)))
                .cloned()
                .collect(),
        );
    }
    for group in groups {
        let stopped: Vec<anyhow::Result<Container>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .map(|mut c| {
                    let grace = project
                        .file
                        .services
                        .get(&service_of(&c))
                        .and_then(|s| s.stop_grace_period.as_deref())
                        .and_then(|g| humantime::parse_duration(g).ok())
                        .map(|d| d.as_secs());
                    s.spawn(move || super::super::container::stop_one(&mut c, grace).map(|()| c))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a stop panicked")))
                })
                .collect()
        });
        for c in stopped {
            let mut c = c?;
            super::super::container::remove_one(&containers, &mut c, true, false)?;
            said("Container", &c.config.name, "Removed");
        }
    }
    let networks = Networks::open(&root)?;
    for (key, spec) in &project.file.networks {
        let real = spec.name.clone().unwrap_or_else(|| key.clone());
        if spec.external || networks.find(&real).is_err() {
            continue;
        }
        networks.remove(&real)?;
        said("Network", &real, "Removed");
    }
    if o.volumes {
        let volumes = Volumes::open(&root)?;
        for (key, spec) in &project.file.volumes {
            let real = spec.name.clone().unwrap_or_else(|| key.clone());
            if spec.external || volumes.get(&real).is_err() {
                continue;
            }
            volumes.remove(&real)?;
            said("Volume", &real, "Removed");
        }
    }
    Ok(())
}
