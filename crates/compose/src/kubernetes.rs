//! The same project on Kubernetes: for each service a Deployment (replicas, command and
//! arguments, environment, ports, resource limits, probes from the healthcheck, the
//! security context from `user`, capabilities and `read_only`) and, when it publishes or
//! exposes ports, a Service; a PersistentVolumeClaim per named volume, a Secret per
//! secret and a ConfigMap per config read from their files. Built from the `k8s-openapi`
//! types, so every field is one Kubernetes knows; what has no counterpart is said in a
//! warning (bind mounts become hostPath, `network_mode: host` hostNetwork, start order
//! is not kept).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, ExecAction, HostPathVolumeSource, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Secret, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;

use crate::error::Error;
use crate::model::{self, VolumeKind};
use crate::Project;

/// One Kubernetes object, ready to print.
pub enum Object {
    /// A service's pods.
    Deployment(Box<Deployment>),
    /// A service's name and ports on the cluster's network.
    Service(Box<Service>),
    /// A named volume.
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
    /// A secret's file.
    Secret(Box<Secret>),
    /// A config's file.
    ConfigMap(Box<ConfigMap>),
}

impl Object {
    /// Its kind and name, for a file name (`front-deployment.yaml`).
    pub fn file_name(&self) -> String {
        let (name, kind) = match self {
            Object::Deployment(o) => (&o.metadata.name, "deployment"),
            Object::Service(o) => (&o.metadata.name, "service"),
            Object::PersistentVolumeClaim(o) => (&o.metadata.name, "persistentvolumeclaim"),
            Object::Secret(o) => (&o.metadata.name, "secret"),
            Object::ConfigMap(o) => (&o.metadata.name, "configmap"),
        };
        format!("{}-{kind}.yaml", name.as_deref().unwrap_or("object"))
    }

    /// As YAML, `apiVersion` and `kind` included.
    pub fn to_yaml(&self) -> String {
        let value = match self {
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::PersistentVolumeClaim(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
        };
        value
            .ok()
            .and_then(|v| serde_yaml_ng::to_string(&v).ok())
            .unwrap_or_default()
    }
}

/// A name Kubernetes takes (DNS-1123: lowercase letters, digits and `-`).
fn dns_name(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

fn meta(project: &Project, name: &str, service: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([(
        "app.kubernetes.io/part-of".to_string(),
        project.name.clone(),
    )]);
    if let Some(s) = service {
        labels.insert("app.kubernetes.io/name".to_string(), dns_name(s));
    }
    ObjectMeta {
        name: Some(dns_name(name)),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// Compose's durations as whole seconds (at least 1).
fn seconds(text: &Option<String>) -> Option<i32> {
    text.as_deref()
        .and_then(|t| humantime::parse_duration(t).ok())
        .map(|d| d.as_secs().max(1) as i32)
}

/// The project's objects; `pinned` gives an image's reference pinned by digest
/// (`name@sha256:…`) when it is known (pushed or built here); `warn` hears what has no
/// Kubernetes counterpart.
pub fn convert(
    project: &Project,
    pinned: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Object>, Error> {
    let file = project.active();
    let mut objects = Vec::new();
    for (name, service) in &file.services {
        let image = service
            .image
            .clone()
            .unwrap_or_else(|| format!("{}-{name}", project.name));
        let image = match pinned(&image) {
            Some(p) => p,
            None => {
                warn(format!(
                    "service {name}: image {image} is not pinned by digest (push it first: kiln compose push)"
                ));
                image
            }
        };
        if !service.depends_on.is_empty() {
            warn(format!(
                "service {name}: depends_on has no Kubernetes counterpart: pods start in any order"
            ));
        }
        let (volumes, mounts) = volumes(project, &file, name, service, warn);
        let container = Container {
            name: dns_name(name),
            image: Some(image),
            command: service.entrypoint.clone(),
            args: service.command.clone(),
            env: non_empty(
                service
                    .environment
                    .iter()
                    .map(|(k, v)| EnvVar {
                        name: k.clone(),
                        value: v.clone(),
                        ..EnvVar::default()
                    })
                    .collect(),
            ),
            ports: non_empty(
                service
                    .ports
                    .iter()
                    .map(|p| (p.target, p.protocol.as_str()))
                    .chain(service.expose.iter().filter_map(|e| {
                        let (port, protocol) = e.split_once('/').unwrap_or((e, "tcp"));
                        port.parse().ok().map(|p| (p, protocol))
                    }))
                    .map(|(port, protocol)| ContainerPort {
                        container_port: i32::from(port),
                        protocol: Some(protocol.to_ascii_uppercase()),
                        ..ContainerPort::default()
                    })
                    .collect(),
            ),
            resources: resources(service),
            liveness_probe: probe(service),
            readiness_probe: probe(service),
            security_context: security(name, service, warn),
            volume_mounts: non_empty(mounts),
            working_dir: service.working_dir.clone(),
            ..Container::default()
        };
        let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), dns_name(name))]);
        let host_network = service.network_mode.as_deref() == Some("host");
        if host_network {
            warn(format!(
                "service {name}: network_mode: host becomes hostNetwork: true"
            ));
        }
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                name: None,
                ..meta(project, name, Some(name))
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: non_empty(volumes),
                host_network: host_network.then_some(true),
                hostname: service.hostname.clone(),
                restart_policy: Some("Always".to_string()),
                termination_grace_period_seconds: seconds(&service.stop_grace_period)
                    .map(i64::from),
                ..PodSpec::default()
            }),
        };
        if service
            .restart
            .as_deref()
            .is_some_and(|r| r != "always" && r != "unless-stopped")
        {
            warn(format!(
                "service {name}: restart {} becomes Kubernetes' Always (a Deployment's pods always restart)",
                service.restart.as_deref().unwrap_or_default()
            ));
        }
        objects.push(Object::Deployment(Box::new(Deployment {
            metadata: meta(project, name, Some(name)),
            spec: Some(DeploymentSpec {
                replicas: Some(
                    service
                        .deploy
                        .as_ref()
                        .and_then(|d| d.replicas)
                        .unwrap_or(1) as i32,
                ),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..LabelSelector::default()
                },
                template,
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })));
        let service_ports: Vec<ServicePort> = service
            .ports
            .iter()
            .map(|p| {
                let port = p
                    .published
                    .as_deref()
                    .and_then(|x| x.parse::<i32>().ok())
                    .unwrap_or(i32::from(p.target));
                ServicePort {
                    name: Some(format!("{}-{port}", p.protocol)),
                    port,
                    target_port: Some(IntOrString::Int(i32::from(p.target))),
                    protocol: Some(p.protocol.to_ascii_uppercase()),
                    ..ServicePort::default()
                }
            })
            .collect();
        if !service_ports.is_empty() {
            objects.push(Object::Service(Box::new(Service {
                metadata: meta(project, name, Some(name)),
                spec: Some(ServiceSpec {
                    selector: Some(selector),
                    ports: Some(service_ports),
                    ..ServiceSpec::default()
                }),
                ..Service::default()
            })));
        }
    }
    for (key, volume) in &file.volumes {
        if volume.external {
            continue;
        }
        warn(format!(
            "volume {key}: a PersistentVolumeClaim of 1Gi (Compose gives no size)"
        ));
        objects.push(Object::PersistentVolumeClaim(Box::new(
            PersistentVolumeClaim {
                metadata: meta(project, &claim_name(project, key), None),
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity("1Gi".to_string()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            },
        )));
    }
    for (key, secret) in &file.secrets {
        let data = file_contents(secret)?;
        objects.push(Object::Secret(Box::new(Secret {
            metadata: meta(project, &format!("{}-{key}", project.name), None),
            data: Some(BTreeMap::from([(key.clone(), ByteString(data))])),
            ..Secret::default()
        })));
    }
    for (key, config) in &file.configs {
        let data = file_contents(config)?;
        objects.push(Object::ConfigMap(Box::new(ConfigMap {
            metadata: meta(project, &format!("{}-{key}", project.name), None),
            data: Some(BTreeMap::from([(
                key.clone(),
                String::from_utf8_lossy(&data).into_owned(),
            )])),
            ..ConfigMap::default()
        })));
    }
    Ok(objects)
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn claim_name(project: &Project, key: &str) -> String {
    format!("{}-{key}", project.name)
}

fn file_contents(object: &model::FileObject) -> Result<Vec<u8>, Error> {
    match (&object.file, &object.content) {
        (Some(path), _) => std::fs::read(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        }),
        (None, Some(content)) => Ok(content.clone().into_bytes()),
        (None, None) => Ok(Vec::new()),
    }
}

/// The pod's volumes and the container's mounts: named volumes as claims, binds as
/// hostPath (with a warning), tmpfs as memory-backed emptyDir, secrets and configs from
/// their objects.
fn volumes(
    project: &Project,
    file: &model::File,
    name: &str,
    service: &model::Service,
    warn: &mut dyn FnMut(String),
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, v) in service.volumes.iter().enumerate() {
        let volume_name = format!("{}-{i}", dns_name(name));
        let mut volume = Volume {
            name: volume_name.clone(),
            ..Volume::default()
        };
        match (v.kind, &v.source) {
            (VolumeKind::Volume, Some(source)) => {
                let claim = match file.volumes.get(source) {
                    Some(spec) if spec.external => source.clone(),
                    _ => dns_name(&claim_name(project, source)),
                };
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim,
                    read_only: v.read_only.then_some(true),
                });
            }
            (VolumeKind::Bind, Some(source)) => {
                warn(format!(
                    "service {name}: the bind mount {source} becomes a hostPath volume: the file must be on every node"
                ));
                volume.host_path = Some(HostPathVolumeSource {
                    path: source.clone(),
                    ..HostPathVolumeSource::default()
                });
            }
            (VolumeKind::Tmpfs, _) | (VolumeKind::Volume, None) | (VolumeKind::Bind, None) => {
                volume.empty_dir = Some(EmptyDirVolumeSource {
                    medium: (v.kind == VolumeKind::Tmpfs).then(|| "Memory".to_string()),
                    ..EmptyDirVolumeSource::default()
                });
            }
        }
        volumes.push(volume);
        mounts.push(VolumeMount {
            name: volume_name,
            mount_path: v.target.clone(),
            read_only: v.read_only.then_some(true),
            ..VolumeMount::default()
        });
    }
    for r in &service.secrets {
        let volume_name = dns_name(&format!("secret-{}", r.source));
        volumes.push(Volume {
            name: volume_name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(dns_name(&format!("{}-{}", project.name, r.source))),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        let target = r.target.clone().unwrap_or_else(|| r.source.clone());
        mounts.push(VolumeMount {
            name: volume_name,
            mount_path: if target.starts_with('/') {
                target
            } else {
                format!("/run/secrets/{target}")
            },
            sub_path: Some(r.source.clone()),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    for r in &service.configs {
        let volume_name = dns_name(&format!("config-{}", r.source));
        volumes.push(Volume {
            name: volume_name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: dns_name(&format!("{}-{}", project.name, r.source)),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        let target = r.target.clone().unwrap_or_else(|| format!("/{}", r.source));
        mounts.push(VolumeMount {
            name: volume_name,
            mount_path: target,
            sub_path: Some(r.source.clone()),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    (volumes, mounts)
}

fn resources(service: &model::Service) -> Option<ResourceRequirements> {
    let limits = service
        .deploy
        .as_ref()?
        .resources
        .as_ref()?
        .limits
        .as_ref()?;
    let mut map = BTreeMap::new();
    if let Some(cpus) = &limits.cpus {
        map.insert("cpu".to_string(), Quantity(cpus.clone()));
    }
    if let Some(memory) = &limits.memory {
        // Compose's `64m` is Kubernetes' `64Mi` (binary units).
        let quantity = match memory
            .to_ascii_lowercase()
            .strip_suffix('b')
            .unwrap_or(memory)
        {
            m if m.ends_with(['k', 'm', 'g']) => {
                let (n, unit) = m.split_at(m.len() - 1);
                format!("{n}{}i", unit.to_ascii_uppercase())
            }
            m => m.to_string(),
        };
        map.insert("memory".to_string(), Quantity(quantity));
    }
    (!map.is_empty()).then(|| ResourceRequirements {
        limits: Some(map),
        ..ResourceRequirements::default()
    })
}

/// The healthcheck as an exec probe (`CMD-SHELL` through `sh -c`).
fn probe(service: &model::Service) -> Option<Probe> {
    let check = service.healthcheck.as_ref()?;
    if check.disable == Some(true) {
        return None;
    }
    let command = match check.test.as_deref()? {
        [kind, rest @ ..] if kind == "CMD" => rest.to_vec(),
        [kind, rest @ ..] if kind == "CMD-SHELL" => {
            vec!["sh".to_string(), "-c".to_string(), rest.join(" ")]
        }
        _ => return None,
    };
    Some(Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: seconds(&check.interval),
        timeout_seconds: seconds(&check.timeout),
        failure_threshold: check.retries.map(|r| r as i32),
        initial_delay_seconds: seconds(&check.start_period),
        ..Probe::default()
    })
}

fn security(
    name: &str,
    service: &model::Service,
    warn: &mut dyn FnMut(String),
) -> Option<SecurityContext> {
    let user = service.user.as_deref().and_then(|u| {
        let (user, _) = u.split_once(':').unwrap_or((u, ""));
        let id = user.parse::<i64>().ok();
        if id.is_none() {
            warn(format!(
                "service {name}: user {user} is a name: Kubernetes' runAsUser takes a number"
            ));
        }
        id
    });
    let context = SecurityContext {
        run_as_user: user,
        read_only_root_filesystem: service.read_only,
        capabilities: (!service.cap_add.is_empty() || !service.cap_drop.is_empty()).then(|| {
            Capabilities {
                add: non_empty(service.cap_add.clone()),
                drop: non_empty(service.cap_drop.clone()),
            }
        }),
        ..SecurityContext::default()
    };
    (context != SecurityContext::default()).then_some(context)
}
