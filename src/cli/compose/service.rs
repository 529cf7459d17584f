//! A service's container as `kiln create` would make it: the Compose model turned into
//! the flags `kiln run` takes (so a service's container is made, checked and confined
//! exactly as one started by hand), with Docker Compose's names and labels.

use std::collections::BTreeMap;

use kiln_compose::model::{Service, VolumeKind};
use kiln_compose::Project;

/// Docker Compose's labels, which `ps`, `down` and a user's scripts find containers by.
pub(crate) const PROJECT: &str = "com.docker.compose.project";
pub(crate) const SERVICE: &str = "com.docker.compose.service";
pub(crate) const NUMBER: &str = "com.docker.compose.container-number";
pub(crate) const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub(crate) const ONEOFF: &str = "com.docker.compose.oneoff";

/// The image a service runs: its `image`, or `PROJECT-SERVICE` for one only built.
pub(crate) fn image(project: &Project, name: &str, service: &Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", project.name))
}

/// `PROJECT-SERVICE-N`, or the service's `container_name`.
pub(crate) fn container_name(project: &Project, name: &str, service: &Service, n: u32) -> String {
    service
        .container_name
        .clone()
        .unwrap_or_else(|| format!("{}-{name}-{n}", project.name))
}

/// What identifies a service's configuration: a change recreates its containers.
pub(crate) fn config_hash(service: &Service) -> String {
    let text = kiln_compose::service_yaml(service);
    kiln_image::digest::sha256(text.as_bytes()).digest()[..16].to_string()
}

/// The network a service's container starts on (its first), with the aliases it has
/// there, and the others it joins before it starts.
pub(crate) fn networks(
    project: &Project,
    service: &Service,
) -> Vec<(String, Vec<String>, Option<String>)> {
    service
        .networks
        .iter()
        .map(|(key, settings)| {
            let real = project
                .file
                .networks
                .get(key)
                .and_then(|n| n.name.clone())
                .unwrap_or_else(|| key.clone());
            let aliases = settings
                .as_ref()
                .map(|s| s.aliases.clone())
                .unwrap_or_default();
            let ip = settings.as_ref().and_then(|s| s.ipv4_address.clone());
            (real, aliases, ip)
        })
        .collect()
}

/// A `compose run` container: its name, its command, what else it gets.
pub(crate) struct OneOff {
    pub name: String,
    /// Empty: the service's command.
    pub command: Vec<String>,
    pub env: Vec<String>,
    /// `--service-ports`: the service's published ports (else none, as Compose).
    pub service_ports: bool,
    pub remove: bool,
    pub interactive: bool,
    pub tty: bool,
}

/// `kiln create`'s arguments for replica `n` of service `name` (or for a `run`
/// container, `one_off`).
pub(crate) fn create_args(
    project: &Project,
    name: &str,
    service: &Service,
    n: u32,
    one_off: Option<&OneOff>,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut flag = |f: &str, v: String| {
        a.push(f.to_string());
        a.push(v);
    };
    flag(
        "--name",
        one_off.map_or_else(
            || container_name(project, name, service, n),
            |o| o.name.clone(),
        ),
    );
    let mut labels: BTreeMap<String, String> = service.labels.clone();
    labels.insert(PROJECT.into(), project.name.clone());
    labels.insert(SERVICE.into(), name.to_string());
    labels.insert(NUMBER.into(), n.to_string());
    labels.insert(
        ONEOFF.into(),
        if one_off.is_some() { "True" } else { "False" }.into(),
    );
    labels.insert(CONFIG_HASH.into(), config_hash(service));
    labels.insert(
        "com.docker.compose.project.working_dir".into(),
        project.dir.display().to_string(),
    );
    for (k, v) in labels {
        flag("-l", format!("{k}={v}"));
    }
    match service.network_mode.as_deref() {
        Some(mode) => {
            let mode = match mode.strip_prefix("service:") {
                Some(other) => format!("container:{}-{other}-1", project.name),
                None => mode.to_string(),
            };
            flag("--network", mode);
        }
        None => {
            if let Some((network, aliases, ip)) = networks(project, service).into_iter().next() {
                flag("--network", network);
                // Found by its service's name, as Compose's containers are.
                flag("--network-alias", name.to_string());
                for alias in aliases {
                    flag("--network-alias", alias);
                }
                if let Some(ip) = ip {
                    flag("--ip", ip);
                }
            }
        }
    }
    for (k, v) in &service.environment {
        flag(
            "-e",
            match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            },
        );
    }
    for e in one_off.map(|o| o.env.as_slice()).unwrap_or_default() {
        flag("-e", e.clone());
    }
    let ports = match one_off {
        Some(o) if !o.service_ports => &[][..],
        _ => service.ports.as_slice(),
    };
    for p in ports {
        let mut spec = String::new();
        if let Some(ip) = &p.host_ip {
            spec.push_str(&format!("{ip}:"));
        }
        match &p.published {
            Some(published) => spec.push_str(&format!("{published}:")),
            None if p.host_ip.is_some() => spec.push(':'),
            None => {}
        }
        spec.push_str(&format!("{}/{}", p.target, p.protocol));
        flag("-p", spec);
    }
    for v in &service.volumes {
        let ro = if v.read_only { ":ro" } else { "" };
        match (v.kind, &v.source) {
            (VolumeKind::Volume, Some(source)) => {
                let real = project
                    .file
                    .volumes
                    .get(source)
                    .and_then(|vol| vol.name.clone())
                    .unwrap_or_else(|| source.clone());
                flag("-v", format!("{real}:{}{ro}", v.target));
            }
            (VolumeKind::Volume, None) => flag("-v", v.target.clone()),
            (VolumeKind::Bind, Some(source)) => flag("-v", format!("{source}:{}{ro}", v.target)),
            (VolumeKind::Bind, None) => {}
            (VolumeKind::Tmpfs, _) => flag("--tmpfs", v.target.clone()),
        }
    }
    // Secrets and configs: their files bound read-only where Compose puts them.
    for (refs, objects, base) in [
        (&service.secrets, &project.file.secrets, "/run/secrets/"),
        (&service.configs, &project.file.configs, "/"),
    ] {
        for r in refs {
            if let Some(file) = objects.get(&r.source).and_then(|o| o.file.clone()) {
                let target = r.target.clone().unwrap_or_else(|| r.source.clone());
                let target = if target.starts_with('/') {
                    target
                } else {
                    format!("{base}{target}")
                };
                flag("-v", format!("{file}:{target}:ro"));
            }
        }
    }
    for t in &service.tmpfs {
        flag("--tmpfs", t.clone());
    }
    // A one-off container is not restarted, as Compose's `run` makes it.
    if let (Some(r), None) = (&service.restart, one_off) {
        flag("--restart", r.clone());
    }
    if let Some(u) = &service.user {
        flag("-u", u.clone());
    }
    if let Some(w) = &service.working_dir {
        flag("-w", w.clone());
    }
    if let Some(h) = &service.hostname {
        flag("--hostname", h.clone());
    }
    for c in &service.cap_add {
        flag("--cap-add", c.clone());
    }
    for c in &service.cap_drop {
        flag("--cap-drop", c.clone());
    }
    for d in &service.dns {
        flag("--dns", d.clone());
    }
    for h in &service.extra_hosts {
        flag("--add-host", h.clone());
    }
    if let Some(s) = &service.stop_signal {
        flag("--stop-signal", s.clone());
    }
    if let Some(grace) = service.stop_grace_period.as_deref().and_then(seconds) {
        flag("--stop-timeout", grace.to_string());
    }
    if let Some(limits) = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
    {
        if let Some(cpus) = &limits.cpus {
            flag("--cpus", cpus.clone());
        }
        if let Some(memory) = &limits.memory {
            flag("--memory", memory.clone());
        }
        if let Some(pids) = limits.pids {
            flag("--pids-limit", pids.to_string());
        }
    }
    if let Some(check) = &service.healthcheck {
        match check.test.as_deref() {
            Some([none]) if none == "NONE" => a.push("--no-healthcheck".into()),
            _ if check.disable == Some(true) => a.push("--no-healthcheck".into()),
            Some([kind, rest @ ..]) => {
                let command = if kind == "CMD-SHELL" {
                    rest.join(" ")
                } else {
                    rest.iter()
                        .map(|w| shell_quote(w))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                a.push("--health-cmd".into());
                a.push(command);
            }
            _ => {}
        }
        for (f, v) in [
            ("--health-interval", &check.interval),
            ("--health-timeout", &check.timeout),
            ("--health-start-period", &check.start_period),
        ] {
            if let Some(v) = v {
                a.push(f.into());
                a.push(v.clone());
            }
        }
        if let Some(r) = check.retries {
            a.push("--health-retries".into());
            a.push(r.to_string());
        }
    }
    if service.init == Some(true) {
        a.push("--init".into());
    }
    if service.read_only == Some(true) {
        a.push("--read-only".into());
    }
    if let Some(o) = one_off {
        for (on, f) in [(o.remove, "--rm"), (o.interactive, "-i"), (o.tty, "-t")] {
            if on {
                a.push(f.into());
            }
        }
    }
    let mut command: Vec<String> = match one_off {
        Some(o) if !o.command.is_empty() => o.command.clone(),
        _ => service.command.clone().unwrap_or_default(),
    };
    if let Some(entrypoint) = &service.entrypoint {
        a.push("--entrypoint".into());
        a.push(entrypoint.first().cloned().unwrap_or_default());
        // The rest of a list entrypoint goes before the command.
        let mut rest: Vec<String> = entrypoint.iter().skip(1).cloned().collect();
        rest.append(&mut command);
        command = rest;
    }
    a.push("--pull".into());
    a.push(
        match service.pull_policy.as_deref() {
            Some("always") => "always",
            Some("never") | Some("build") => "never",
            _ => "missing",
        }
        .into(),
    );
    a.push(image(project, name, service));
    a.extend(command);
    a
}

/// Compose's durations (`1m30s`, `10s`, `500ms`) in whole seconds.
fn seconds(text: &str) -> Option<u64> {
    humantime::parse_duration(text).ok().map(|d| d.as_secs())
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
