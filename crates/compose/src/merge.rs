//! Docker Compose's merge rules, for several `-f` files (each over the ones before) and
//! for `extends` (the service over its base): single values are replaced; `command`,
//! `entrypoint` and a healthcheck's `test` are replaced whole; maps (`environment`,
//! `labels`, build `args`, `networks`, `depends_on`) merge by key; `ports`, `expose`,
//! `dns`, `cap_add`/`cap_drop`, `profiles` and `tmpfs` keep the base's entries and add
//! the new ones; `volumes` merge by target, `secrets` and `configs` by source.

use std::collections::BTreeMap;

use crate::model::{File, Healthcheck, Service};

/// `over` laid over `base`.
pub(crate) fn files(base: &mut File, over: File) {
    if over.name.is_some() {
        base.name = over.name;
    }
    for (name, service) in over.services {
        match base.services.get_mut(&name) {
            Some(existing) => services(existing, service),
            None => {
                base.services.insert(name, service);
            }
        }
    }
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
}

/// `over` laid over `base` (one service).
pub(crate) fn services(base: &mut Service, over: Service) {
    fn replace<T>(base: &mut Option<T>, over: Option<T>) {
        if over.is_some() {
            *base = over;
        }
    }
    fn append(base: &mut Vec<String>, over: Vec<String>) {
        for item in over {
            if !base.contains(&item) {
                base.push(item);
            }
        }
    }
    fn by_key<T, K: PartialEq>(base: &mut Vec<T>, over: Vec<T>, key: impl Fn(&T) -> K) {
        for item in over {
            match base.iter_mut().find(|b| key(b) == key(&item)) {
                Some(existing) => *existing = item,
                None => base.push(item),
            }
        }
    }
    fn maps<V>(base: &mut BTreeMap<String, V>, over: BTreeMap<String, V>) {
        base.extend(over);
    }
    match (&mut base.build, over.build) {
        (Some(b), Some(o)) => {
            b.context = o.context;
            replace(&mut b.dockerfile, o.dockerfile);
            replace(&mut b.target, o.target);
            maps(&mut b.args, o.args);
            maps(&mut b.labels, o.labels);
            append(&mut b.cache_from, o.cache_from);
            append(&mut b.cache_to, o.cache_to);
            by_key(&mut b.secrets, o.secrets, |s| s.source.clone());
        }
        (b, o) => replace(b, o),
    }
    append(&mut base.cap_add, over.cap_add);
    append(&mut base.cap_drop, over.cap_drop);
    replace(&mut base.command, over.command);
    by_key(&mut base.configs, over.configs, |c| c.source.clone());
    replace(&mut base.container_name, over.container_name);
    maps(&mut base.depends_on, over.depends_on);
    replace(&mut base.deploy, over.deploy);
    append(&mut base.dns, over.dns);
    replace(&mut base.entrypoint, over.entrypoint);
    base.env_file.extend(over.env_file);
    maps(&mut base.environment, over.environment);
    append(&mut base.expose, over.expose);
    replace(&mut base.extends, over.extends);
    append(&mut base.extra_hosts, over.extra_hosts);
    match (&mut base.healthcheck, over.healthcheck) {
        (Some(b), Some(o)) => healthchecks(b, o),
        (b, o) => replace(b, o),
    }
    replace(&mut base.hostname, over.hostname);
    replace(&mut base.image, over.image);
    replace(&mut base.init, over.init);
    maps(&mut base.labels, over.labels);
    replace(&mut base.network_mode, over.network_mode);
    maps(&mut base.networks, over.networks);
    for port in over.ports {
        if !base.ports.contains(&port) {
            base.ports.push(port);
        }
    }
    append(&mut base.profiles, over.profiles);
    replace(&mut base.pull_policy, over.pull_policy);
    replace(&mut base.read_only, over.read_only);
    replace(&mut base.restart, over.restart);
    by_key(&mut base.secrets, over.secrets, |s| s.source.clone());
    replace(&mut base.stop_grace_period, over.stop_grace_period);
    replace(&mut base.stop_signal, over.stop_signal);
    append(&mut base.tmpfs, over.tmpfs);
    replace(&mut base.user, over.user);
    by_key(&mut base.volumes, over.volumes, |v| v.target.clone());
    replace(&mut base.working_dir, over.working_dir);
}

fn healthchecks(base: &mut Healthcheck, over: Healthcheck) {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
        start_interval,
        disable,
    } = over;
    for (b, o) in [
        (&mut base.interval, interval),
        (&mut base.timeout, timeout),
        (&mut base.start_period, start_period),
        (&mut base.start_interval, start_interval),
    ] {
        if o.is_some() {
            *b = o;
        }
    }
    if test.is_some() {
        base.test = test;
    }
    if retries.is_some() {
        base.retries = retries;
    }
    if disable.is_some() {
        base.disable = disable;
    }
}
