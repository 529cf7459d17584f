//! hadolint's rules about package managers in RUN: versions pinned, prompts answered,
//! caches left out of the layer.

use super::*;
use crate::lint::shell::{Command, Word};
use crate::lint::stages::Run;

/// Options of each tool that take a value in the next word.
const APT_VALUED: &[&str] = &[
    "-o",
    "-c",
    "-t",
    "--option",
    "--config-file",
    "--target-release",
    "--default-release",
];
const APK_VALUED: &[&str] = &[
    "-X",
    "--repository",
    "-p",
    "--root",
    "-t",
    "--virtual",
    "--keys-dir",
    "--arch",
    "--cache-dir",
    "--repositories-file",
];
const PIP_VALUED: &[&str] = &[
    "-b",
    "--build",
    "-e",
    "--editable",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-i",
    "--index-url",
    "--implementation",
    "--no-binary",
    "--only-binary",
    "--platform",
    "--prefix",
    "--progress-bar",
    "--proxy",
    "--python-version",
    "--root",
    "--src",
    "-t",
    "--target",
    "--trusted-host",
    "--upgrade-strategy",
    "--abi",
    "-c",
    "--constraint",
    "-r",
    "--requirement",
    "--cache-dir",
];
const RPM_VALUED: &[&str] = &[
    "--setopt",
    "--enablerepo",
    "--disablerepo",
    "--installroot",
    "--releasever",
    "-c",
    "--config",
];
const NO_VALUED: &[&str] = &[];

/// The operands of `cmd` after its subcommand, when the subcommand is one of `verbs`.
fn after<'a>(cmd: &'a Command, verbs: &[&str], valued: &'a [&str]) -> Option<Vec<&'a Word>> {
    let mut ops = cmd.operands(valued);
    let verb = ops.next()?;
    (verb.known && verbs.contains(&verb.text.as_str())).then(|| ops.collect())
}

/// The known package words that fail `pinned`. A word with an unknown part (a variable
/// from the base image) is not judged: it may well hold `name=version`.
fn unpinned<'a>(packages: &[&'a Word], pinned: impl Fn(&str) -> bool) -> Option<Vec<&'a str>> {
    let bad: Vec<&str> = packages
        .iter()
        .filter(|w| w.known)
        .map(|w| w.text.as_str())
        .filter(|p| !pinned(p))
        .collect();
    (!bad.is_empty()).then_some(bad)
}

fn local_path(p: &str) -> bool {
    p.starts_with('/') || p.starts_with("./") || p.starts_with("../") || p == "."
}

fn cached(run: &Run, dir: &str) -> bool {
    run.caches
        .iter()
        .any(|c| c.trim_end_matches('/').starts_with(dir))
}

fn removes(run: &Run, dir: &str) -> bool {
    run.script.find("rm").any(|c| {
        c.args
            .iter()
            .any(|a| a.text.trim_end_matches(['*', '/']) == dir)
    })
}

pub fn check(file: &File) -> Vec<Finding> {
    let mut out = Vec::new();
    let exported = file.exported();
    for run in file.runs() {
        let instr = run.instr;
        let mut found = |rule: &Rule, names: Option<Vec<&str>>| match names {
            Some(names) => out.push(naming(rule, instr, "packages", &names)),
            None => out.push(plain(rule, instr)),
        };
        // apt-get
        let mut apt_update = false;
        let mut apt_lists_removed = false;
        for cmd in run.script.find("apt-get") {
            let Some(packages) = after(cmd, &["install"], APT_VALUED) else {
                apt_update |= after(cmd, &["update"], APT_VALUED).is_some();
                apt_lists_removed |= after(cmd, &["dist-clean"], APT_VALUED).is_some();
                continue;
            };
            if let Some(bad) = unpinned(&packages, |p| {
                p.contains('=') || p.ends_with(".deb") || local_path(p)
            }) {
                found(&DL3008, Some(bad));
            }
            let quiet = cmd.flags().filter(|f| *f == "q").count() >= 2
                || cmd
                    .args
                    .iter()
                    .any(|a| a.text == "--quiet=2" || a.text == "-q=2");
            let yes = cmd.has_flag("y")
                || cmd.has_flag("yes")
                || cmd.has_flag("assume-yes")
                || quiet
                || option_set(cmd, "APT::Get::Assume-Yes");
            if !yes {
                found(&DL3014, None);
            }
            let no_recommends = cmd.has_flag("no-install-recommends")
                || option_set(cmd, "APT::Install-Recommends")
                || recommends_configured(file, run);
            if !no_recommends {
                found(&DL3015, None);
            }
        }
        if apt_update
            && exported.contains(&run.stage)
            && !apt_lists_removed
            && !removes(run, "/var/lib/apt/lists")
            && !cached(run, "/var/lib/apt")
        {
            found(&DL3009, None);
        }
        if run.script.any("apt") {
            found(&DL3027, None);
        }
        // apk
        for cmd in run.script.find("apk") {
            let Some(packages) = after(cmd, &["add"], APK_VALUED) else {
                continue;
            };
            let pinned =
                |p: &str| p.contains(['=', '<', '>', '~']) || p.ends_with(".apk") || local_path(p);
            if let Some(bad) = unpinned(&packages, pinned) {
                found(&DL3018, Some(bad));
            }
            if !cmd.has_flag("no-cache")
                && !cached(run, "/var/cache/apk")
                && !cached(run, "/etc/apk/cache")
            {
                found(&DL3019, None);
            }
        }
        // pip
        for cmd in &run.script.commands {
            let Some(args) = pip_install(cmd) else {
                continue;
            };
            let pip = Command {
                name: cmd.name.clone(),
                args: args.to_vec(),
            };
            let requirements = pip.has_flag("r")
                || pip.has_flag("requirement")
                || pip.has_flag("c")
                || pip.has_flag("constraint");
            let packages: Vec<&Word> = pip.operands(PIP_VALUED).skip(1).collect();
            if !requirements {
                let pinned = |p: &str| {
                    ["==", ">=", "<=", ">", "<", "!=", "~=", "==="]
                        .iter()
                        .any(|s| p.contains(s))
                        || p.contains('@')
                        || p.ends_with(".whl")
                        || p.ends_with(".tar.gz")
                        || p.ends_with(".zip")
                        || (p.contains('/') && !is_vcs(p))
                        || p == "."
                };
                if let Some(bad) = unpinned(&packages, pinned) {
                    found(&DL3013, Some(bad));
                }
            }
            let no_cache = cmd.has_flag("no-cache-dir")
                || cached(run, "/root/.cache")
                || env_set(file, run, "PIP_NO_CACHE_DIR");
            if !no_cache {
                found(&DL3042, None);
            }
        }
        // npm
        for cmd in run.script.find("npm") {
            let Some(packages) = after(
                cmd,
                &["install", "i", "add"],
                &["--prefix", "--registry", "-w", "--workspace"],
            ) else {
                continue;
            };
            let pinned = |p: &str| {
                let name = p.strip_prefix('@').unwrap_or(p);
                name.contains('@')
                    || local_path(p)
                    || p.contains("://")
                    || p.starts_with("git")
                    || p.ends_with(".tgz")
                    || p.ends_with(".tar.gz")
                    || p.contains(':')
            };
            if let Some(bad) = unpinned(&packages, pinned) {
                found(&DL3016, Some(bad));
            }
        }
        // gem
        for cmd in run.script.find("gem") {
            let Some(packages) = after(
                cmd,
                &["install", "i"],
                &[
                    "-v",
                    "--version",
                    "-i",
                    "--install-dir",
                    "-n",
                    "--bindir",
                    "--source",
                    "-s",
                    "--platform",
                ],
            ) else {
                continue;
            };
            if cmd.has_flag("v") || cmd.has_flag("version") {
                continue;
            }
            if let Some(bad) = unpinned(&packages, |p| {
                p.contains(':') || p.ends_with(".gem") || local_path(p)
            }) {
                found(&DL3028, Some(bad));
            }
        }
        // go
        for cmd in run.script.find("go") {
            let Some(packages) = after(
                cmd,
                &["install"],
                &[
                    "-ldflags",
                    "-tags",
                    "-o",
                    "-gcflags",
                    "-mod",
                    "-modfile",
                    "-p",
                    "-pkgdir",
                    "-toolexec",
                    "-exec",
                    "-C",
                    "-overlay",
                    "-asmflags",
                ],
            ) else {
                continue;
            };
            let pinned = |p: &str| {
                p.contains('@') || p.starts_with('.') || p.starts_with('/') || !p.contains('.')
            };
            if let Some(bad) = unpinned(&packages, pinned) {
                found(&DL3062, Some(bad));
            }
        }
        // yarn
        // `yarn` alone installs, as `yarn install` does.
        let yarn_install = run.script.find("yarn").any(|c| {
            c.args.is_empty()
                || c.operands(NO_VALUED)
                    .next()
                    .is_some_and(|v| v.text == "install")
        });
        let yarn_clean = run.script.find("yarn").any(|c| {
            let mut ops = c.operands(NO_VALUED);
            ops.next().is_some_and(|v| v.text == "cache")
                && ops.next().is_some_and(|v| v.text == "clean")
        });
        if yarn_install
            && !yarn_clean
            && !cached(run, "/usr/local/share/.cache/yarn")
            && !removes(run, "/usr/local/share/.cache/yarn")
        {
            found(&DL3060, None);
        }
        // yum, dnf, microdnf: -y, versions, clean all
        for (tools, yes_rule, version_rule, clean_rule, cache) in [
            (&["yum"][..], &DL3030, &DL3033, &DL3032, "/var/cache/yum"),
            (
                &["dnf", "microdnf"][..],
                &DL3038,
                &DL3041,
                &DL3040,
                "/var/cache/dnf",
            ),
        ] {
            let mut installs = false;
            let mut cleans = false;
            for cmd in run
                .script
                .commands
                .iter()
                .filter(|c| tools.iter().any(|t| c.is(t)))
            {
                let mut ops = cmd.operands(RPM_VALUED);
                let verb = ops.next().map(|w| w.text.as_str());
                if verb == Some("clean") && ops.next().is_some_and(|w| w.text == "all") {
                    cleans = true;
                }
                let Some(packages) = after(
                    cmd,
                    &[
                        "install",
                        "groupinstall",
                        "localinstall",
                        "reinstall",
                        "upgrade",
                        "update",
                    ],
                    RPM_VALUED,
                ) else {
                    continue;
                };
                installs = true;
                if !(cmd.has_flag("y") || cmd.has_flag("assumeyes") || cmd.is("microdnf")) {
                    found(yes_rule, None);
                }
                if verb == Some("install") {
                    let pinned = |p: &str| {
                        p.ends_with(".rpm")
                            || local_path(p)
                            || p.contains("://")
                            || p.starts_with('@')
                            || has_rpm_version(p)
                    };
                    if let Some(bad) = unpinned(&packages, pinned) {
                        found(version_rule, Some(bad));
                    }
                }
            }
            if installs && !cleans && !removes(run, cache) && !cached(run, cache) {
                found(clean_rule, None);
            }
        }
        // zypper
        let mut zypper_installs = false;
        let mut zypper_cleans = false;
        for cmd in run.script.find("zypper") {
            let mut ops = cmd.operands(&["--root", "-R", "--repo", "-r", "--from"]);
            let verb = ops.next().map(|w| w.text.as_str());
            match verb {
                Some("clean" | "cc") => zypper_cleans = true,
                Some("dist-upgrade" | "dup") => found(&DL3035, None),
                Some(
                    "install" | "in" | "remove" | "rm" | "source-install" | "si" | "patch"
                    | "update" | "up",
                ) => {
                    zypper_installs = true;
                    let yes = ["n", "non-interactive", "y", "no-confirm"]
                        .iter()
                        .any(|f| cmd.has_flag(f));
                    if !yes {
                        found(&DL3034, None);
                    }
                    if matches!(verb, Some("install" | "in")) {
                        let packages: Vec<&Word> = ops.collect();
                        let pinned = |p: &str| {
                            p.contains(['=', '<', '>']) || p.ends_with(".rpm") || local_path(p)
                        };
                        if let Some(bad) = unpinned(&packages, pinned) {
                            found(&DL3037, Some(bad));
                        }
                    }
                }
                _ => {}
            }
        }
        if zypper_installs
            && !zypper_cleans
            && !removes(run, "/var/cache/zypp")
            && !cached(run, "/var/cache/zypp")
        {
            found(&DL3036, None);
        }
    }
    out
}

/// `-o Name=value` (or `-oName=value`) sets an apt option.
fn option_set(cmd: &Command, name: &str) -> bool {
    cmd.args
        .iter()
        .any(|a| a.text.contains(&format!("{name}=")))
}

/// An earlier RUN of this stage (or a stage it is built on) turned recommends off in
/// apt's configuration.
fn recommends_configured(file: &File, run: &Run) -> bool {
    let lineage = file.lineage(run.stage);
    file.runs()
        .iter()
        .take_while(|r| !std::ptr::eq(r.instr, run.instr))
        .filter(|r| lineage.contains(&r.stage))
        .any(|r| r.instr.original.contains("Install-Recommends"))
}

/// An ENV of this stage (or a stage it is built on) set before this RUN.
fn env_set(file: &File, run: &Run, name: &str) -> bool {
    file.lineage(run.stage).iter().any(|&s| {
        file.stages[s]
            .instructions
            .iter()
            .take_while(|i| !std::ptr::eq(**i, run.instr))
            .any(|i| matches!(&i.command, crate::ast::Command::Env(p) if p.iter().any(|p| p.key == name)))
    })
}

/// The arguments from `install` on of `pip install ...`, `pip3 ...`, `python -m pip ...`.
fn pip_install(cmd: &Command) -> Option<&[Word]> {
    let name = cmd.name.text.rsplit('/').next()?;
    let pip = name == "pip" || name.starts_with("pip2") || name.starts_with("pip3");
    let args: &[Word] = if pip && cmd.name.known {
        &cmd.args
    } else if name.starts_with("python") && cmd.name.known {
        let m = cmd.args.iter().position(|a| a.text == "-m")?;
        (cmd.args.get(m + 1)?.text == "pip").then(|| &cmd.args[m + 2..])?
    } else {
        return None;
    };
    let verb = args.iter().position(|a| !a.text.starts_with('-'))?;
    (args[verb].text == "install").then(|| &args[verb..])
}

/// `name-1.2.3` or `name-1.2.3-4.el9`: a version after a dash starts with a digit.
fn has_rpm_version(p: &str) -> bool {
    p.split('-')
        .skip(1)
        .any(|part| part.starts_with(|c: char| c.is_ascii_digit()))
}

/// A pip requirement fetched from version control: pinned only by `@ref`.
fn is_vcs(p: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+", "git://"]
        .iter()
        .any(|s| p.starts_with(s))
}
