//! How `kiln build` shows its steps: `plain` lines for CI logs, `json` events for tools,
//! and on a terminal (`tty`, or `auto` when standard error is one) a live line per step
//! with a spinner, the elapsed time and the last line of its output.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_builder::build::Event;

/// Prints a line on standard output, best effort: a reader that went away (`kiln build |
/// head`) must not stop (or panic) the build, which goes on to its end.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints a line on standard error, best effort: where `docker build` writes its
/// progress and what it made, so standard output holds only what `-q` asks for.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub enum Progress {
    Plain {
        /// When each step started: output lines are timed from their step's start.
        started: Mutex<HashMap<usize, Instant>>,
    },
    Json,
    Tty(Tty),
    /// `-q`: nothing but the image ID, at the end.
    Quiet,
}

pub struct Tty {
    multi: MultiProgress,
    steps: Mutex<HashMap<usize, Step>>,
}

struct Step {
    bar: ProgressBar,
    text: String,
    miss: Option<String>,
}

impl Progress {
    /// `auto` (tty when standard error is a terminal, else plain), `tty`, `plain`,
    /// `json`, `quiet`.
    pub fn new(mode: &str) -> anyhow::Result<Progress> {
        Ok(match mode {
            "auto" if std::io::stderr().is_terminal() => Progress::Tty(Tty::new()),
            "tty" => Progress::Tty(Tty::new()),
            "auto" | "plain" => Progress::Plain {
                started: Mutex::new(HashMap::new()),
            },
            "json" => Progress::Json,
            "quiet" => Progress::Quiet,
            other => bail!("--progress {other}: use auto, tty, plain, json or quiet"),
        })
    }

    pub fn is_quiet(&self) -> bool {
        matches!(self, Progress::Quiet)
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Progress::Json)
    }

    pub fn event(&self, event: Event) {
        match self {
            Progress::Json => crate::say!("{}", event_json(&event)),
            Progress::Plain { started } => plain(&event, started),
            Progress::Tty(tty) => tty.event(event),
            Progress::Quiet => {}
        }
    }

    /// Ends the progress before anything else is printed: steps still running when the
    /// build stopped get `#N ERROR: why` (plain), or the live lines are replaced with one
    /// plain line per step, as it ended (tty).
    pub fn finish(&self, error: Option<&str>) {
        if let Progress::Plain { started } = self {
            let mut open: Vec<usize> = started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .copied()
                .collect();
            open.sort_unstable();
            if let Some(why) = error {
                for id in open {
                    crate::tell!("#{id} ERROR: {why}");
                }
            }
        }
        if let Progress::Tty(tty) = self {
            let mut steps: Vec<(usize, Step)> =
                tty.steps.lock().expect("progress lock").drain().collect();
            steps.sort_by_key(|(id, _)| *id);
            let _ = tty.multi.clear();
            for (_, step) in steps {
                let end = if step.bar.is_finished() {
                    step.bar.message()
                } else {
                    format!("{} ERROR", step.text)
                };
                eprintln!("{} {end}", step.bar.prefix());
            }
        }
    }
}

/// `[stage i/n]`, or `[i/n]` for the stage with no name that the build ends with, as
/// BuildKit labels steps.
fn label(stage: &str, index: usize, total: usize) -> String {
    if stage.is_empty() {
        format!("[{index}/{total}]")
    } else {
        format!("[{stage} {index}/{total}]")
    }
}

fn plain(event: &Event, started: &Mutex<HashMap<usize, Instant>>) {
    match event {
        Event::Step {
            id,
            stage,
            index,
            total,
            text,
        } => {
            started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(*id, Instant::now());
            crate::tell!("#{id} {} {text}", label(stage, *index, *total))
        }
        Event::Cached { id } => {
            started.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            crate::tell!("#{id} CACHED")
        }
        Event::Miss { id, reason } => crate::tell!("#{id} cache miss: {reason}"),
        Event::Output { id, line } => {
            let since = started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .map_or(0.0, |t| t.elapsed().as_secs_f64());
            crate::tell!("#{id} {since:.3} {line}")
        }
        Event::Done { id, seconds } => {
            started.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            crate::tell!("#{id} DONE {seconds:.1}s")
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid template")
}

impl Tty {
    fn new() -> Tty {
        Tty {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            steps: Mutex::new(HashMap::new()),
        }
    }

    fn event(&self, event: Event) {
        let mut steps = self.steps.lock().expect("progress lock");
        match event {
            Event::Step {
                id,
                stage,
                index,
                total,
                text,
            } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(style(
                    "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:>4.dim}",
                ));
                bar.set_prefix(format!("#{id} {}", label(stage, index, total)));
                bar.set_message(text.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                steps.insert(
                    id,
                    Step {
                        bar,
                        text: text.to_string(),
                        miss: None,
                    },
                );
            }
            Event::Cached { id } => {
                if let Some(s) = steps.get(&id) {
                    s.bar.set_style(style("{prefix:.bold} {wide_msg:.dim}"));
                    s.bar.finish_with_message(format!("{} CACHED", s.text));
                }
            }
            Event::Miss { id, reason } => {
                if let Some(s) = steps.get_mut(&id) {
                    s.miss = Some(reason.to_string());
                }
            }
            Event::Output { id, line } => {
                if let Some(s) = steps.get(&id) {
                    s.bar.set_message(format!("{} │ {line}", s.text));
                }
            }
            Event::Done { id, seconds } => {
                if let Some(s) = steps.get(&id).filter(|s| !s.bar.is_finished()) {
                    let why = s
                        .miss
                        .as_ref()
                        .map(|m| format!(" (cache miss: {m})"))
                        .unwrap_or_default();
                    s.bar.set_style(style("{prefix:.green.bold} {wide_msg}"));
                    s.bar
                        .finish_with_message(format!("{}{why} DONE {seconds:.1}s", s.text));
                }
            }
        }
    }
}

/// One line of `--progress json`.
fn event_json(event: &Event) -> serde_json::Value {
    use serde_json::json;
    match event {
        Event::Step {
            id,
            stage,
            index,
            total,
            text,
        } => {
            json!({"type": "step", "id": id, "stage": stage, "index": index, "total": total, "instruction": text})
        }
        Event::Cached { id } => json!({"type": "cached", "id": id}),
        Event::Miss { id, reason } => json!({"type": "miss", "id": id, "reason": reason}),
        Event::Output { id, line } => json!({"type": "output", "id": id, "line": line}),
        Event::Done { id, seconds } => json!({"type": "done", "id": id, "seconds": seconds}),
    }
}
