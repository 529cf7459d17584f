//! The image config a build writes: Docker's format (which OCI readers accept), kept as
//! JSON so fields kiln does not model (from a base image) pass through untouched.

use std::path::{Component, Path};

use kiln_image::digest::DiffId;
use kiln_image::Platform;
use serde_json::{json, Map, Value};

use crate::ast::{Command, CommandLine, Healthcheck};

/// The config being built, and the history entries that go with it.
pub struct ImageConfig {
    pub root: Map<String, Value>,
}

impl ImageConfig {
    /// A config for `FROM scratch`.
    pub fn scratch(platform: &Platform) -> ImageConfig {
        let mut root = json!({"architecture": platform.architecture, "os": platform.os, "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []});
        if let Some(v) = &platform.variant {
            root["variant"] = json!(v);
        }
        ImageConfig {
            root: root.as_object().cloned().unwrap_or_default(),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<ImageConfig> {
        serde_json::from_slice::<Map<String, Value>>(bytes)
            .ok()
            .map(|root| ImageConfig { root })
    }

    fn config(&mut self) -> &mut Map<String, Value> {
        let c = self.root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("object")
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.root.get("config").and_then(|c| c.get(key))
    }

    /// `KEY=VALUE` entries, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|kv| {
                        kv.split_once('=')
                            .map_or((kv.to_string(), String::new()), |(k, v)| {
                                (k.to_string(), v.to_string())
                            })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
        self.config().insert(
            "Env".into(),
            json!(env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()),
        );
    }

    /// The image's creation time (RFC 3339), when it has one.
    pub fn created(&self) -> Option<String> {
        self.root
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.config().insert(key.into(), value);
    }

    /// A string-array field of the config (`Shell`, `OnBuild`), empty when absent.
    fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn shell(&self) -> Vec<String> {
        let shell = self.strings("Shell");
        if shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            shell
        }
    }

    /// Adds to a map-valued field (`Labels`, `ExposedPorts`, `Volumes`).
    pub fn insert(&mut self, field: &str, key: &str, value: Value) {
        let map = self.config().entry(field).or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        map.as_object_mut()
            .expect("object")
            .insert(key.into(), value);
    }

    pub fn command_line(&self, c: &CommandLine) -> Value {
        match c {
            CommandLine::Exec(argv) => json!(argv),
            CommandLine::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                json!(v)
            }
        }
    }

    pub fn set_healthcheck(&mut self, h: &Healthcheck) {
        let value = match h {
            Healthcheck::None => json!({"Test": ["NONE"]}),
            Healthcheck::Cmd {
                command,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let test = match command {
                    CommandLine::Exec(argv) => std::iter::once("CMD".to_string())
                        .chain(argv.iter().cloned())
                        .collect::<Vec<_>>(),
                    CommandLine::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                };
                let mut v = json!({"Test": test});
                let nanos = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
                for (k, d) in [
                    ("Interval", nanos(interval)),
                    ("Timeout", nanos(timeout)),
                    ("StartPeriod", nanos(start_period)),
                    ("StartInterval", nanos(start_interval)),
                ] {
                    if let Some(d) = d {
                        v[k] = json!(d);
                    }
                }
                if let Some(r) = retries {
                    v["Retries"] = json!(r);
                }
                v
            }
        };
        self.set("Healthcheck", value);
    }

    /// The ONBUILD triggers this image passes to images built from it.
    pub fn onbuild(&self) -> Vec<String> {
        self.strings("OnBuild")
    }

    pub fn push_onbuild(&mut self, text: &str) {
        let list = self.config().entry("OnBuild").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        list.as_array_mut().expect("array").push(json!(text));
    }

    /// Records a step: a history entry, and the layer's diffID when it made one.
    pub fn add_history(&mut self, created: &str, created_by: &str, diff_id: Option<&DiffId>) {
        let mut entry = json!({"created": created, "created_by": created_by, "comment": "buildkit.dockerfile.v0"});
        match diff_id {
            Some(d) => {
                let rootfs = self
                    .root
                    .entry("rootfs")
                    .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
                if let Some(ids) = rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
                    ids.push(json!(d.to_string()));
                }
            }
            None => entry["empty_layer"] = json!(true),
        }
        let history = self.root.entry("history").or_insert_with(|| json!([]));
        if let Some(h) = history.as_array_mut() {
            h.push(entry);
        }
    }

    /// Applies an instruction that changes the config alone (ENV, USER, CMD, ENTRYPOINT,
    /// LABEL, MAINTAINER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD), as a
    /// build does and as `kiln import --change` does; others change nothing here.
    /// `cmd_set` tells whether CMD was set since the base (ENTRYPOINT resets an inherited
    /// one, as Docker does).
    pub fn apply(&mut self, command: &Command, cmd_set: &mut bool) {
        let config = self;
        match command {
            Command::Env(kvs) => {
                for kv in kvs {
                    config.set_env(&kv.key, &kv.value);
                }
            }
            Command::User(u) => config.set("User", json!(u)),
            Command::Cmd(c) => {
                config.set("Cmd", config.command_line(c));
                *cmd_set = true;
            }
            Command::Entrypoint(c) => {
                config.set("Entrypoint", config.command_line(c));
                if !*cmd_set {
                    config.set("Cmd", serde_json::Value::Null);
                }
            }
            Command::Label(kvs) => kvs
                .iter()
                .for_each(|kv| config.insert("Labels", &kv.key, json!(kv.value))),
            Command::Maintainer(m) => {
                config.root.insert("author".into(), json!(m));
            }
            Command::Expose(ports) => {
                for p in ports {
                    let port = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    config.insert("ExposedPorts", &port, json!({}));
                }
            }
            Command::Volume(v) => v
                .paths
                .iter()
                .for_each(|p| config.insert("Volumes", p, json!({}))),
            Command::StopSignal(s) => config.set("StopSignal", json!(s)),
            Command::Healthcheck(h) => config.set_healthcheck(h),
            Command::Shell(argv) => config.set("Shell", json!(argv)),
            Command::Onbuild(trigger) => config.push_onbuild(&trigger.original),
            _ => {}
        }
    }

    pub fn to_bytes(&self, created: &str) -> Vec<u8> {
        let mut root = self.root.clone();
        root.insert("created".into(), json!(created));
        serde_json::to_vec(&Value::Object(root)).expect("a JSON map serialises")
    }
}

/// `dir` joined to the working directory `cwd` (when relative) and cleaned lexically:
/// `/a` then `b` then `../c` is `/a/c`, as BuildKit stores it.
pub fn join_workdir(cwd: &str, dir: &str) -> String {
    let joined = Path::new(cwd).join(dir);
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let parts: Vec<String> = out
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

/// `kiln import --change`: Dockerfile instructions that change the config (docker
/// import's set: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
/// applied to an image config (the JSON of its `config` object, its `Env`, `Cmd`, ...).
pub fn apply_changes(config: Value, changes: &[String]) -> Result<Value, crate::Error> {
    let mut image = ImageConfig::from_bytes(
        &serde_json::to_vec(&json!({ "config": config })).unwrap_or_default(),
    )
    .unwrap_or_else(|| ImageConfig::scratch(&Platform::host()));
    let mut cmd_set = false;
    for change in changes {
        let parsed = crate::parse("--change", &format!("FROM scratch\n{change}\n"))?;
        for instr in parsed.instructions.iter().skip(1) {
            match &instr.command {
                Command::Workdir(dir) => {
                    let cwd = image.str("WorkingDir").unwrap_or_else(|| "/".into());
                    image.set("WorkingDir", json!(join_workdir(&cwd, dir)));
                }
                Command::Cmd(_)
                | Command::Entrypoint(_)
                | Command::Env(_)
                | Command::Expose(_)
                | Command::Label(_)
                | Command::Onbuild(_)
                | Command::User(_)
                | Command::Volume(_) => image.apply(&instr.command, &mut cmd_set),
                other => {
                    return Err(crate::Error::Unchangeable {
                        change: change.to_string(),
                        keyword: other.keyword().to_uppercase(),
                    })
                }
            }
        }
    }
    Ok(image
        .root
        .get("config")
        .cloned()
        .unwrap_or_else(|| json!({})))
}

#[cfg(test)]
mod tests {
    use super::join_workdir as join;

    #[test]
    fn relative_workdirs_join_and_clean_as_buildkit_stores_them() {
        assert_eq!(join("/", "/a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/a/b", "../c"), "/a/c");
        assert_eq!(join("/a", "./b/./c/"), "/a/b/c");
        assert_eq!(join("/a", "../../.."), "/");
        assert_eq!(join("/", "app//src"), "/app/src");
    }
}
