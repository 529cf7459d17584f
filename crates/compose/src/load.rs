//! Reading a project as Docker Compose reads one: the files (found or named), the
//! environment they are interpolated with (`.env` or `--env-file`, then the process's,
//! which wins), `include`, the merge of several files, `extends`, then the
//! normalisation `config` prints (absolute paths, `env_file` read into `environment`,
//! the default network, resource names prefixed with the project) and the checks that
//! must pass before anything starts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::error::Error;
use crate::interpolate::{interpolate, Failure};
use crate::model::{File, Service, VolumeKind};
use crate::{dotenv, merge};

/// The files Docker Compose looks for, in order, and their override files.
const NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What the command line and the process give the loader.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-f` (none: `COMPOSE_FILE`, else found from the working directory up).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory` (default: the first file's directory).
    pub project_dir: Option<PathBuf>,
    /// `--profile` (added to `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// `--env-file` (default: the project directory's `.env`).
    pub env_files: Vec<PathBuf>,
    /// The directory relative `-f` paths and discovery start from.
    pub working_dir: PathBuf,
    /// The process's environment.
    pub environment: BTreeMap<String, String>,
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's name (`-p`, `name:`, `COMPOSE_PROJECT_NAME`, or the directory's).
    pub name: String,
    /// The project directory: relative paths in the files are from here.
    pub dir: PathBuf,
    /// The Compose files read, in merge order.
    pub files: Vec<PathBuf>,
    /// Every service (and the top-level resources), normalised.
    pub file: File,
    /// The services whose profiles are not active.
    pub disabled: BTreeSet<String>,
    /// What the files were interpolated with.
    pub environment: BTreeMap<String, String>,
}

impl Project {
    /// The project as `config` prints it: the active services only.
    pub fn active(&self) -> File {
        let mut file = self.file.clone();
        file.services
            .retain(|name, _| !self.disabled.contains(name));
        file
    }
}

/// Finds, reads, interpolates, merges and checks the project's files as Docker Compose
/// does: every error names its file and the path in it.
pub fn load(options: &Options) -> Result<Project, Error> {
    let files = discover(options)?;
    let dir = match &options.project_dir {
        Some(d) => absolute(&options.working_dir, d),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| options.working_dir.clone()),
    };
    let environment = environment(options, &dir)?;
    let lookup = |name: &str| environment.get(name).cloned();
    let mut merged: Option<File> = None;
    for path in &files {
        let file = read(path, &dir, &lookup, &mut Vec::new())?;
        match merged.as_mut() {
            None => merged = Some(file),
            Some(base) => merge::files(base, file),
        }
    }
    let mut file = merged.unwrap_or_default();
    resolve_extends(&mut file, &dir, &lookup)?;
    let name = project_name(options, &file, &environment, &dir)?;
    normalise(&mut file, &name, &lookup)?;
    check(&mut file)?;
    let mut active: BTreeSet<String> = options.profiles.iter().cloned().collect();
    if let Some(list) = environment.get("COMPOSE_PROFILES") {
        active.extend(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from),
        );
    }
    let disabled = file
        .services
        .iter()
        .filter(|(_, s)| {
            !s.profiles.is_empty()
                && !active.contains("*")
                && !s.profiles.iter().any(|p| active.contains(p))
        })
        .map(|(n, _)| n.clone())
        .collect();
    Ok(Project {
        name,
        dir,
        files,
        file,
        disabled,
        environment,
    })
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// `-f`, else `COMPOSE_FILE`, else the first of Docker's names from the working
/// directory up, with its override file beside it.
fn discover(options: &Options) -> Result<Vec<PathBuf>, Error> {
    if !options.files.is_empty() {
        return Ok(options
            .files
            .iter()
            .map(|f| absolute(&options.working_dir, f))
            .collect());
    }
    if let Some(list) = options.environment.get("COMPOSE_FILE") {
        let separator = options
            .environment
            .get("COMPOSE_PATH_SEPARATOR")
            .map_or(":", String::as_str);
        return Ok(list
            .split(separator)
            .filter(|f| !f.is_empty())
            .map(|f| absolute(&options.working_dir, Path::new(f)))
            .collect());
    }
    let mut dir = Some(options.working_dir.as_path());
    while let Some(d) = dir {
        if let Some(main) = NAMES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
            let mut files = vec![main];
            files.extend(OVERRIDES.iter().map(|n| d.join(n)).find(|p| p.is_file()));
            return Ok(files);
        }
        dir = d.parent();
    }
    Err(Error::NoFile {
        dir: options.working_dir.clone(),
    })
}

/// The variables files are interpolated with: the `.env` files, then the process's
/// environment over them.
fn environment(options: &Options, dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let files: Vec<(PathBuf, bool)> = if options.env_files.is_empty() {
        vec![(dir.join(".env"), false)]
    } else {
        options
            .env_files
            .iter()
            .map(|f| (absolute(&options.working_dir, f), true))
            .collect()
    };
    let mut vars = BTreeMap::new();
    for (path, required) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path, source }),
        };
        let process = |name: &str| options.environment.get(name).cloned();
        let parsed = dotenv::parse(&text, &process).map_err(|bad| Error::EnvFile {
            file: path.clone(),
            line: bad.line,
            reason: bad.reason,
        })?;
        vars.extend(parsed);
    }
    vars.extend(options.environment.clone());
    Ok(vars)
}

/// One file: YAML, interpolated, its `include`s laid under it, its `x-…` fields taken
/// out, read into the model, its relative paths made absolute against `base` (the
/// project directory; an included file's own directory for it).
fn read(
    path: &Path,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    chain: &mut Vec<PathBuf>,
) -> Result<File, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut value: Value = serde_yaml_ng::from_str(&text).map_err(|e| Error::Yaml {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    // YAML merge keys (`<<: *base`), which Compose files use with their `x-` anchors.
    value.apply_merge().map_err(|e| Error::Yaml {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    interpolate_value(&mut value, &mut String::new(), path, lookup)?;
    strip_extensions(&mut value);
    let includes = match &mut value {
        Value::Mapping(m) => m.remove("include"),
        _ => None,
    };
    let mut file: File = serde_path_to_error::deserialize(value).map_err(|e| Error::Invalid {
        file: path.to_path_buf(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    resolve_paths(&mut file, base);
    let mut included = File::default();
    for entry in includes
        .map(|v| match v {
            Value::Sequence(items) => items,
            other => vec![other],
        })
        .unwrap_or_default()
    {
        let paths: Vec<String> = match &entry {
            Value::String(p) => vec![p.clone()],
            Value::Mapping(m) => match m.get("path") {
                Some(Value::String(p)) => vec![p.clone()],
                Some(Value::Sequence(ps)) => ps.iter().filter_map(crate::forms::scalar).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if paths.is_empty() {
            return Err(Error::Invalid {
                file: path.to_path_buf(),
                path: "include".into(),
                message: "expected a path or a mapping with path".into(),
            });
        }
        for p in paths {
            let target = absolute(path.parent().unwrap_or(base), Path::new(&p));
            if chain.contains(&target) {
                return Err(Error::Invalid {
                    file: path.to_path_buf(),
                    path: "include".into(),
                    message: format!("{} includes itself", target.display()),
                });
            }
            chain.push(target.clone());
            let dir = target.parent().unwrap_or(base).to_path_buf();
            merge::files(&mut included, read(&target, &dir, lookup, chain)?);
            chain.pop();
        }
    }
    merge::files(&mut included, file);
    Ok(included)
}

/// Interpolates every string value (keys stay as written), naming where it failed.
fn interpolate_value(
    value: &mut Value,
    at: &mut String,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    match value {
        Value::String(s) => {
            *s = interpolate(s, lookup).map_err(|e| match e {
                Failure::Required { variable, message } => Error::RequiredVariable {
                    file: file.to_path_buf(),
                    path: at.clone(),
                    variable,
                    message,
                },
                Failure::Syntax { text } => Error::Interpolation {
                    file: file.to_path_buf(),
                    path: at.clone(),
                    text,
                },
            })?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                interpolate_value(item, at, file, lookup)?;
                at.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(&crate::forms::scalar(k).unwrap_or_default());
                interpolate_value(v, at, file, lookup)?;
                at.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Takes out the `x-…` fields of the top level and of each service, network, volume,
/// secret and config.
fn strip_extensions(value: &mut Value) {
    let strip = |m: &mut Mapping| {
        m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    };
    let Value::Mapping(top) = value else { return };
    strip(top);
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Mapping(entries)) = top.get_mut(section) {
            for (_, entry) in entries.iter_mut() {
                if let Value::Mapping(m) = entry {
                    strip(m);
                }
            }
        }
    }
}

/// Relative paths made absolute against `base`: build contexts, bind sources,
/// `env_file`s, and the files of secrets and configs.
fn resolve_paths(file: &mut File, base: &Path) {
    let resolve = |p: &str| -> String {
        if let Some(rest) = p.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                return Path::new(&home).join(rest).display().to_string();
            }
        }
        clean(&absolute(base, Path::new(p))).display().to_string()
    };
    for service in file.services.values_mut() {
        if let Some(build) = &mut service.build {
            // A remote context (a URL) stays as it is.
            if !build.context.contains("://") {
                build.context = resolve(&build.context);
            }
        }
        for v in &mut service.volumes {
            if v.kind == VolumeKind::Bind {
                v.source = v.source.as_deref().map(resolve);
            }
        }
        for e in &mut service.env_file {
            e.path = resolve(&e.path);
        }
    }
    for object in file.secrets.values_mut().chain(file.configs.values_mut()) {
        object.file = object.file.as_deref().map(resolve);
    }
}

/// `a/./b/../c` as `a/c`, without touching the filesystem.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `extends: {service, file}`: the service laid over its base (which may extend
/// another), from this project or from another file.
fn resolve_extends(
    file: &mut File,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let names: Vec<String> = file.services.keys().cloned().collect();
    for name in names {
        let mut seen = vec![name.clone()];
        let resolved = extended(file, &name, dir, lookup, &mut seen)?;
        file.services.insert(name, resolved);
    }
    Ok(())
}

fn extended(
    file: &File,
    name: &str,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    seen: &mut Vec<String>,
) -> Result<Service, Error> {
    let service = file.services[name].clone();
    let Some(spec) = service.extends.clone() else {
        return Ok(service);
    };
    let (base_name, other) = match &spec {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(m) => (
            m.get("service")
                .and_then(crate::forms::scalar)
                .unwrap_or_default(),
            m.get("file").and_then(crate::forms::scalar),
        ),
        _ => (String::new(), None),
    };
    let unknown = |file: Option<PathBuf>| Error::UnknownBase {
        service: name.to_string(),
        base: base_name.clone(),
        file,
    };
    let mut base = match other {
        Some(path) => {
            let path = absolute(dir, Path::new(&path));
            let other = read(&path, path.parent().unwrap_or(dir), lookup, &mut Vec::new())?;
            if !other.services.contains_key(&base_name) {
                return Err(unknown(Some(path)));
            }
            let mut seen = vec![base_name.clone()];
            extended(
                &other,
                &base_name,
                path.parent().unwrap_or(dir),
                lookup,
                &mut seen,
            )?
        }
        None => {
            if !file.services.contains_key(&base_name) || seen.contains(&base_name) {
                return Err(unknown(None));
            }
            seen.push(base_name.clone());
            extended(file, &base_name, dir, lookup, seen)?
        }
    };
    // What a base's dependants need stays with them, as Compose does.
    base.depends_on.clear();
    let mut service = service;
    service.extends = None;
    merge::services(&mut base, service);
    base.extends = None;
    Ok(base)
}

/// `-p`, `COMPOSE_PROJECT_NAME`, the file's `name`, or the directory's name — made
/// lowercase, as Docker Compose makes it.
fn project_name(
    options: &Options,
    file: &File,
    environment: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<String, Error> {
    let given = options
        .project_name
        .clone()
        .or_else(|| environment.get("COMPOSE_PROJECT_NAME").cloned())
        .or_else(|| file.name.clone());
    match given {
        Some(name) => {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if valid {
                Ok(name)
            } else {
                Err(Error::ProjectName { name })
            }
        }
        None => {
            let base = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let name: String = base
                .chars()
                .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
                .collect();
            let name = name.trim_start_matches(['-', '_']).to_string();
            if name.is_empty() {
                Err(Error::ProjectName { name: base })
            } else {
                Ok(name)
            }
        }
    }
}

/// What `config` prints beyond what was written: `env_file`s read into `environment`
/// (which wins), the default network, and resource names with the project's prefix.
fn normalise(
    file: &mut File,
    project: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let mut uses_default = false;
    for service in file.services.values_mut() {
        for env_file in std::mem::take(&mut service.env_file) {
            let path = PathBuf::from(&env_file.path);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if !env_file.required && e.kind() == std::io::ErrorKind::NotFound => {
                    continue
                }
                Err(source) => return Err(Error::Read { path, source }),
            };
            let vars = dotenv::parse(&text, lookup).map_err(|bad| Error::EnvFile {
                file: path.clone(),
                line: bad.line,
                reason: bad.reason,
            })?;
            for (k, v) in vars {
                service.environment.entry(k).or_insert(Some(v));
            }
        }
        if service.network_mode.is_none() && service.networks.is_empty() {
            service.networks.insert("default".to_string(), None);
        }
        uses_default |= service.networks.contains_key("default");
    }
    if uses_default {
        file.networks.entry("default".to_string()).or_default();
    }
    for (key, network) in &mut file.networks {
        if network.name.is_none() {
            network.name = Some(if network.external {
                key.clone()
            } else {
                format!("{project}_{key}")
            });
        }
    }
    for (key, volume) in &mut file.volumes {
        if volume.name.is_none() {
            volume.name = Some(if volume.external {
                key.clone()
            } else {
                format!("{project}_{key}")
            });
        }
    }
    for (key, object) in file.secrets.iter_mut().chain(file.configs.iter_mut()) {
        if object.name.is_none() {
            object.name = Some(if object.external {
                key.clone()
            } else {
                format!("{project}_{key}")
            });
        }
    }
    Ok(())
}

/// What must hold before anything starts: every service has an image or a build, its
/// dependencies, networks, volumes, secrets and configs exist, and no dependency cycle.
fn check(file: &mut File) -> Result<(), Error> {
    let names: BTreeSet<String> = file.services.keys().cloned().collect();
    for (name, service) in &mut file.services {
        if service.image.is_none() && service.build.is_none() {
            return Err(Error::NoImage {
                service: name.clone(),
            });
        }
        // A dependency that is not required may be missing (a profile left it out).
        service
            .depends_on
            .retain(|dependency, d| d.required || names.contains(dependency));
    }
    for (name, service) in &file.services {
        let undefined = |kind: &'static str, what: &str| Error::Undefined {
            service: name.clone(),
            kind,
            name: what.to_string(),
        };
        for dependency in service.depends_on.keys() {
            if !file.services.contains_key(dependency) {
                return Err(Error::UnknownDependency {
                    service: name.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
        for network in service.networks.keys() {
            if !file.networks.contains_key(network) {
                return Err(undefined("network", network));
            }
        }
        for v in &service.volumes {
            if let (VolumeKind::Volume, Some(source)) = (v.kind, &v.source) {
                if !file.volumes.contains_key(source) {
                    return Err(undefined("volume", source));
                }
            }
        }
        for s in &service.secrets {
            if !file.secrets.contains_key(&s.source) {
                return Err(undefined("secret", &s.source));
            }
        }
        for c in &service.configs {
            if !file.configs.contains_key(&c.source) {
                return Err(undefined("config", &c.source));
            }
        }
    }
    crate::order::levels(file).map(drop)
}
