//! hadolint's rules about the commands a RUN runs (other than package managers).

use super::*;
use crate::lint::shell::Command;

pub fn check(file: &File) -> Vec<Finding> {
    let mut out = Vec::new();
    // DL4001: the download tools used so far in the current stage.
    let mut stage_tools: (usize, bool, bool) = (usize::MAX, false, false);
    for run in file.runs() {
        let (instr, script) = (run.instr, &run.script);
        let odd: Vec<&str> = [
            "free", "kill", "mount", "ps", "service", "shutdown", "ssh", "top", "vim", "ifconfig",
        ]
        .into_iter()
        .filter(|n| script.any(n))
        .collect();
        if !odd.is_empty() {
            out.push(naming(&DL3001, instr, "found", &odd));
        }
        if script.any("cd") {
            out.push(plain(&DL3003, instr));
        }
        if script.any("sudo") {
            out.push(plain(&DL3004, instr));
        }
        if script.find("useradd").any(large_uid_without_l) {
            out.push(plain(&DL3046, instr));
        }
        if script.find("wget").any(|c| !quiet_wget(c)) {
            out.push(plain(&DL3047, instr));
        }
        if script
            .find("ln")
            .any(|c| c.args.iter().any(|a| a.text == "/bin/sh"))
        {
            out.push(plain(&DL4005, instr));
        }
        if script.pipes && !run.shell_pipefail && !sets_pipefail(script) {
            out.push(plain(&DL4006, instr));
        }
        if stage_tools.0 != run.stage {
            stage_tools = (run.stage, false, false);
        }
        let (curl, wget) = (script.any("curl"), script.any("wget"));
        stage_tools.1 |= curl;
        stage_tools.2 |= wget;
        if (curl || wget) && stage_tools.1 && stage_tools.2 {
            out.push(plain(&DL4001, instr));
        }
    }
    out
}

/// `useradd -u 1234567` without `-l`: the lastlog file grows sparse to the size of the id.
fn large_uid_without_l(cmd: &Command) -> bool {
    if cmd.has_flag("l") || cmd.has_flag("no-log-init") {
        return false;
    }
    cmd.args
        .windows(2)
        .any(|w| matches!(w[0].text.as_str(), "-u" | "--uid") && w[1].known && w[1].text.len() > 5)
        || cmd.args.iter().any(|a| {
            a.text
                .strip_prefix("--uid=")
                .is_some_and(|uid| a.known && uid.len() > 5)
        })
}

/// wget that does not print a progress bar per byte range.
fn quiet_wget(cmd: &Command) -> bool {
    [
        "progress",
        "q",
        "quiet",
        "o",
        "output-file",
        "a",
        "append-output",
        "no-verbose",
    ]
    .iter()
    .any(|f| cmd.has_flag(f))
        || cmd.has_arg("-nv")
}

/// `set -o pipefail` (or `set -eo pipefail`, `set -euxo pipefail`) in the script itself.
fn sets_pipefail(script: &crate::lint::shell::Script) -> bool {
    script
        .find("set")
        .any(|c| c.has_flag("o") && c.has_arg("pipefail"))
}
