//! How `kiln pull` and `kiln push` show their blobs: on a terminal, a bar per blob with
//! the bytes moved, ended by its status as docker words it ("Pull complete", "Pushed",
//! "Layer already exists"); elsewhere those status lines alone, for CI logs.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_image::client::Report;
use kiln_image::digest::Digest;

pub enum Transfer {
    Plain,
    Bars {
        multi: MultiProgress,
        /// By short digest, as the lines name blobs.
        bars: Mutex<HashMap<String, ProgressBar>>,
        /// What a moving bar says: `Downloading`, `Pushing`.
        verb: &'static str,
    },
}

impl Transfer {
    /// `auto` (bars when standard output is a terminal), `tty` or `plain`; a moving bar
    /// says `verb`.
    pub fn new(mode: &str, verb: &'static str) -> anyhow::Result<Transfer> {
        Ok(match mode {
            "auto" if std::io::stdout().is_terminal() => Transfer::bars(verb),
            "tty" => Transfer::bars(verb),
            "auto" | "plain" => Transfer::Plain,
            other => bail!("--progress {other}: use auto, tty or plain"),
        })
    }

    fn bars(verb: &'static str) -> Transfer {
        Transfer::Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
            verb,
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

/// The bar of blob `short`, made on first use.
fn bar(multi: &MultiProgress, bars: &mut HashMap<String, ProgressBar>, short: &str) -> ProgressBar {
    bars.entry(short.to_string())
        .or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style(
                "{prefix}: {msg:<12} [{bar:30}] {bytes:>10}/{total_bytes:<10}",
            ));
            bar.set_prefix(short.to_string());
            bar
        })
        .clone()
}

impl Report for Transfer {
    fn line(&self, line: String) {
        let Transfer::Bars { multi, bars, .. } = self else {
            println!("{line}");
            return;
        };
        let blob = line
            .split_once(": ")
            .filter(|(short, _)| short.len() == 12 && short.bytes().all(|b| b.is_ascii_hexdigit()));
        match blob {
            Some((short, status)) => {
                let bar = bar(multi, &mut bars.lock().expect("bars lock"), short);
                bar.set_style(style("{prefix}: {msg}"));
                bar.finish_with_message(status.to_string());
            }
            None => {
                let _ = multi.println(line);
            }
        }
    }

    fn bytes(&self, digest: &Digest, done: u64, total: u64) {
        if let Transfer::Bars { multi, bars, verb } = self {
            let short = &digest.digest()[..12];
            let bar = bar(multi, &mut bars.lock().expect("bars lock"), short);
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_message(*verb);
            }
            bar.set_position(done);
        }
    }
}
