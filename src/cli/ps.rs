//! `kiln ps`: docker's columns, `--filter` keys and `--format` (json, templates, table).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use kiln_runtime::containers::{Container, Status};

use super::container::containers;

#[derive(clap::Args)]
pub struct PsArgs {
    /// Every container, not only running ones.
    #[arg(short, long)]
    all: bool,
    /// IDs only.
    #[arg(short, long)]
    quiet: bool,
    /// Full IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Only containers that match, docker's way: id=, name=, label=KEY[=VALUE],
    /// status=, exited=CODE, ancestor=IMAGE, health= (one key given twice: either).
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// `json` (an object per line, docker's fields), or a template of those fields:
    /// `{{.Names}} {{.Status}}` (`table ...` with a header).
    #[arg(long)]
    format: Option<String>,
}

/// "2 minutes", as docker's `units.HumanDuration` says a duration.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

fn since(rfc3339: &str) -> Duration {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// `Up 2 minutes`, `Exited (0) 5 seconds ago`, `Created`.
fn status_text(c: &Container) -> String {
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match super::health::read(&c.dir).map(|h| h.status) {
                Some(s) if s == "starting" => " (health: starting)".to_string(),
                Some(s) => format!(" ({s})"),
                None => String::new(),
            };
            let paused = if c.state.paused { " (Paused)" } else { "" };
            format!("Up {}{paused}{health}", human(since(&c.state.started_at)))
        }
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human(since(&c.state.finished_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human(since(&c.state.finished_at))
        ),
    }
}

/// docker's `ps` fields of a container (what `--format` and `--filter` see).
pub(crate) fn ps_fields(
    c: &Container,
    no_trunc: bool,
) -> serde_json::Map<String, serde_json::Value> {
    let mut command = c.config.args.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let state = match c.state.status {
        Status::Created => "created",
        Status::Running if c.state.paused => "paused",
        Status::Running => "running",
        Status::Exited => "exited",
        Status::Restarting => "restarting",
    };
    let fields = [
        ("Command", format!("\"{command}\"")),
        ("CreatedAt", c.config.created.clone()),
        (
            "ID",
            if no_trunc {
                c.config.id.clone()
            } else {
                c.config.id[..12].to_string()
            },
        ),
        ("Image", c.config.image.clone()),
        ("Labels", labels.join(",")),
        (
            "Mounts",
            c.config
                .mounts
                .iter()
                .map(|m| m.source.clone())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("Names", c.config.name.clone()),
        (
            "Networks",
            if c.config.networks.is_empty() {
                c.config.network.clone()
            } else {
                c.config
                    .networks
                    .iter()
                    .map(|a| a.network.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ),
        (
            "Ports",
            if c.state.status == Status::Running {
                super::network::published(c)
                    .iter()
                    .map(|b| format!("{}->{}", b.host(), b.container()))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            },
        ),
        (
            "RunningFor",
            format!("{} ago", human(since(&c.config.created))),
        ),
        ("State", state.to_string()),
        ("Status", status_text(c)),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect()
}

const FILTERS: [&str; 7] = [
    "id", "name", "label", "status", "exited", "ancestor", "health",
];

/// Whether `c` passes every filter key (values of one key: any of them).
fn matches(c: &Container, filters: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    for key in keys {
        let mut any = false;
        for (_, want) in filters.iter().filter(|(k, _)| k == key) {
            any |= match key {
                "id" => c.config.id.starts_with(want.as_str()),
                "name" => c.config.name.contains(want.as_str()),
                "label" => match want.split_once('=') {
                    Some((k, v)) => c.config.labels.get(k).is_some_and(|l| l == v),
                    None => c.config.labels.contains_key(want),
                },
                "status" => ps_fields(c, false)["State"] == want.as_str(),
                "exited" => {
                    c.state.status == Status::Exited && c.state.exit_code.to_string() == *want
                }
                "ancestor" => c.config.image == *want || c.config.image_id.contains(want.as_str()),
                "health" => {
                    let health = super::health::read(&c.dir).map(|h| h.status);
                    health.as_deref().unwrap_or("none") == want
                }
                _ => false,
            };
        }
        if !any {
            return false;
        }
    }
    true
}

/// A `{{.Field}}` template filled from `fields` (docker's Go templates, their common
/// form).
fn fill(template: &str, fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = template.replace("\\t", "\t");
    for (k, v) in fields {
        let value = v.as_str().unwrap_or_default();
        out = out.replace(&format!("{{{{.{k}}}}}"), value);
        out = out.replace(&format!("{{{{ .{k} }}}}"), value);
    }
    out
}

pub fn ps(args: PsArgs) -> anyhow::Result<ExitCode> {
    let mut list = containers()?.list()?;
    // Newest first, as docker lists them.
    list.reverse();
    let filters: Vec<(String, String)> = args
        .filter
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if FILTERS.contains(&k) => Ok((k.to_string(), v.to_string())),
            Some((k, _)) => bail!("--filter {k}: kiln filters on {}", FILTERS.join(", ")),
            None => bail!("--filter {f}: write KEY=VALUE"),
        })
        .collect::<anyhow::Result<_>>()?;
    // A status filter looks at every container, as docker's does.
    let all = args.all || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let mut shown = Vec::new();
    for c in &list {
        if (all || c.state.status == Status::Running) && matches(c, &filters) {
            shown.push(c);
        }
    }
    if args.quiet {
        for c in shown {
            println!(
                "{}",
                ps_fields(c, args.no_trunc)["ID"]
                    .as_str()
                    .unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format.as_deref() {
        Some("json") => {
            for c in shown {
                println!("{}", serde_json::Value::Object(ps_fields(c, args.no_trunc)));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(template) if !template.starts_with("table") => {
            for c in shown {
                println!("{}", fill(template, &ps_fields(c, args.no_trunc)));
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let columns: Vec<(String, &str)> = match args.format.as_deref() {
        Some(table) => {
            let spec = table.trim_start_matches("table").replace("\\t", "\t");
            spec.split_whitespace()
                .filter_map(|part| {
                    let key = part.trim().strip_prefix("{{.")?.strip_suffix("}}")?;
                    let header = match key {
                        "ID" => "CONTAINER ID",
                        "RunningFor" | "CreatedAt" => "CREATED",
                        _ => "",
                    };
                    Some((key.to_string(), header))
                })
                .collect()
        }
        None => [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
        ]
        .map(|(k, h)| (k.to_string(), h))
        .to_vec(),
    };
    let mut rows: Vec<Vec<String>> = vec![columns
        .iter()
        .map(|(k, h)| {
            if h.is_empty() {
                k.to_ascii_uppercase()
            } else {
                h.to_string()
            }
        })
        .collect()];
    for c in shown {
        let fields = ps_fields(c, args.no_trunc);
        rows.push(
            columns
                .iter()
                .map(|(k, _)| {
                    fields
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
        );
    }
    let header: Vec<&str> = rows[0].iter().map(String::as_str).collect();
    for line in super::output::table(&header, &rows[1..]).lines() {
        println!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
