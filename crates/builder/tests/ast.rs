//! The typed syntax tree: fields that the JSON form does not show (typed mounts,
//! durations, COPY/ADD options, spans) and expansion scoping.

use std::collections::BTreeMap;
use std::time::Duration;

use kiln_builder::ast::{
    CacheSharing, Command, CommandLine, Healthcheck, MountKind, NetworkMode, Position, Security,
};
use kiln_builder::{expand, parse};

fn commands(text: &str) -> Vec<Command> {
    parse("Dockerfile", text)
        .unwrap_or_else(|e| panic!("{e}"))
        .instructions
        .into_iter()
        .map(|i| i.command)
        .collect()
}

#[test]
fn run_mounts_and_modes_are_typed() {
    let cmds = commands(
        "FROM a\n\
         RUN --mount=type=cache,target=/c,id=pip,sharing=locked,mode=0755,uid=1000,gid=10 \
             --mount=type=tmpfs,target=/t,size=64m \
             --mount=type=secret,id=tok,required,env=TOKEN \
             --mount=type=ssh --mount=from=build,src=/out,target=/in,rw \
             --network=none --security=insecure true\n",
    );
    let Command::Run(run) = &cmds[1] else {
        panic!("not a RUN: {:?}", cmds[1])
    };
    assert_eq!(run.network, Some(NetworkMode::None));
    assert_eq!(run.security, Some(Security::Insecure));
    assert_eq!(run.command, CommandLine::Shell("true".into()));
    let [cache, tmpfs, secret, ssh, bind] = run.mounts.as_slice() else {
        panic!("{:?}", run.mounts)
    };
    assert_eq!(cache.kind, MountKind::Cache);
    assert_eq!(
        (cache.target.as_deref(), cache.id.as_deref()),
        (Some("/c"), Some("pip"))
    );
    assert_eq!(
        (cache.sharing, cache.mode, cache.uid, cache.gid),
        (
            Some(CacheSharing::Locked),
            Some(0o755),
            Some(1000),
            Some(10)
        )
    );
    assert_eq!((tmpfs.kind, tmpfs.size), (MountKind::Tmpfs, Some(64 << 20)));
    assert_eq!(
        (secret.kind, secret.required, secret.env.as_deref()),
        (MountKind::Secret, Some(true), Some("TOKEN"))
    );
    assert_eq!((ssh.kind, ssh.target.as_deref()), (MountKind::Ssh, None));
    assert_eq!(
        (bind.kind, bind.from.as_deref(), bind.source.as_deref()),
        (MountKind::Bind, Some("build"), Some("/out"))
    );
    assert_eq!(bind.readonly, Some(false));
}

#[test]
fn healthcheck_options_are_durations_and_counts() {
    let cmds = commands("FROM a\nHEALTHCHECK --interval=1m30s --timeout=500ms --start-period=0 --retries=4 CMD [\"probe\"]\n");
    let Command::Healthcheck(Healthcheck::Cmd {
        command,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }) = &cmds[1]
    else {
        panic!("{:?}", cmds[1])
    };
    assert_eq!(command, &CommandLine::Exec(vec!["probe".into()]));
    assert_eq!(*interval, Some(Duration::from_secs(90)));
    assert_eq!(*timeout, Some(Duration::from_millis(500)));
    assert_eq!(*start_period, Some(Duration::ZERO));
    assert_eq!(*start_interval, None);
    assert_eq!(*retries, Some(4));
}

#[test]
fn copy_and_add_options_are_typed() {
    let cmds = commands(
        "FROM a\n\
         COPY --from=build --chown=1:2 --chmod=600 --link --parents --exclude=*.md --exclude=.git a b /dst/\n\
         ADD --link=false --keep-git-dir --checksum=sha256:00 [\"https://x/y\", \"/z\"]\n",
    );
    let Command::Copy(copy) = &cmds[1] else {
        panic!()
    };
    assert_eq!(copy.from.as_deref(), Some("build"));
    assert!(copy.parents && copy.spec.link && !copy.spec.json);
    assert_eq!(copy.spec.sources, ["a", "b"]);
    assert_eq!(copy.spec.dest, "/dst/");
    assert_eq!(
        (copy.spec.chown.as_deref(), copy.spec.chmod.as_deref()),
        (Some("1:2"), Some("600"))
    );
    assert_eq!(copy.spec.exclude, ["*.md", ".git"]);
    let Command::Add(add) = &cmds[2] else {
        panic!()
    };
    assert!(add.keep_git_dir && !add.spec.link && add.spec.json);
    assert_eq!(add.checksum.as_deref(), Some("sha256:00"));
    assert_eq!(add.spec.sources, ["https://x/y"]);
}

#[test]
fn spans_cover_continuations_and_count_characters() {
    let df = parse(
        "Dockerfile",
        "FROM a\n  RUN echo é \\\n    && true\nENV Ä=1 \\\n  B=2\n",
    )
    .unwrap();
    let run = &df.instructions[1];
    assert_eq!(run.span.start, Position { line: 2, column: 3 });
    assert_eq!(
        run.span.end,
        Position {
            line: 3,
            column: 11
        }
    );
    assert_eq!(run.original, "RUN echo é \\\n    && true");
    assert_eq!(
        run.command,
        Command::Run(kiln_builder::ast::Run {
            command: CommandLine::Shell("echo é     && true".into()),
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    // A character after a multi-byte one: column counts characters, not bytes.
    let err = parse("Dockerfile", "FROM a\nENV Ä=1 B\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Dockerfile:2:9: "), "{err}");
}

#[test]
fn stage_names_are_lower_cased_and_platform_kept() {
    let cmds = commands("FROM --platform=$BUILDPLATFORM golang:1.22 AS Builder\n");
    let Command::From(from) = &cmds[0] else {
        panic!()
    };
    assert_eq!(from.image, "golang:1.22");
    assert_eq!(from.stage.as_deref(), Some("builder"));
    assert_eq!(from.platform.as_deref(), Some("$BUILDPLATFORM"));
}

#[test]
fn backtick_escape_joins_lines_and_leaves_backslashes_alone() {
    let df = parse(
        "Dockerfile",
        "# escape=`\nFROM a\nRUN dir C:\\ `\n  /s\nRUN echo \\\nRUN x\n",
    )
    .unwrap();
    assert_eq!(df.escape, '`');
    let shells: Vec<_> = df
        .instructions
        .iter()
        .filter_map(|i| match &i.command {
            Command::Run(r) => Some(r.command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        shells,
        [
            CommandLine::Shell("dir C:\\   /s".into()),
            CommandLine::Shell("echo \\".into()),
            CommandLine::Shell("x".into())
        ]
    );
}

#[test]
fn heredoc_terminators_match_with_crlf_and_tabs() {
    let df = parse(
        "Dockerfile",
        "FROM a\r\nRUN <<-EOF\r\n\techo hi\r\n\tEOF\r\nRUN after\r\n",
    )
    .unwrap();
    assert_eq!(df.instructions.len(), 3);
    let doc = &df.instructions[1].heredocs[0];
    assert_eq!(
        (doc.name.as_str(), doc.content.as_str(), doc.chomp),
        ("EOF", "echo hi\r\n", true)
    );
    assert_eq!(df.instructions[1].span.end.line, 4);
}

fn build_args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn expansion_follows_arg_scope() {
    let df = parse(
        "Dockerfile",
        "ARG IMG=alpine\nARG TAG=1\nFROM $IMG:$TAG\nENV A=${TAG}-${IMG}\nARG TAG\nENV B=$TAG C=$B\nARG NEW=x\nENV D=$NEW\n",
    )
    .unwrap();
    let out = expand::dockerfile(&df, &build_args(&[("TAG", "2"), ("NEW", "y")])).unwrap();
    let Command::From(from) = &out[2].command else {
        panic!()
    };
    assert_eq!(
        from.image, "alpine:2",
        "global ARGs and --build-arg reach FROM"
    );
    let env = |i: usize| match &out[i].command {
        Command::Env(kvs) => kvs
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        env(3),
        ["A=-"],
        "global ARGs are not visible in a stage until re-declared"
    );
    assert_eq!(
        env(5),
        ["B=2", "C="],
        "a re-declared ARG takes the build arg; ENV is visible after its line only"
    );
    assert_eq!(env(7), ["D=y"]);
}

#[test]
fn expansion_leaves_shell_commands_and_quoted_heredocs_alone() {
    let df = parse(
        "Dockerfile",
        "FROM a\nARG X=1\nRUN echo $X\nCOPY <<'A' <<B /d/$X\n$X\nA\n$X\nB\n",
    )
    .unwrap();
    let vars = build_args(&[("X", "1")]);
    let run = expand::instruction(&df.instructions[2], df.escape, &vars).unwrap();
    assert_eq!(run, df.instructions[2]);
    let copy = expand::instruction(&df.instructions[3], df.escape, &vars).unwrap();
    let Command::Copy(c) = &copy.command else {
        panic!()
    };
    assert_eq!(c.spec.sources, ["<<'A'", "<<B"]);
    assert_eq!(c.spec.dest, "/d/1");
    assert_eq!(copy.heredocs[0].content, "$X\n");
    assert_eq!(copy.heredocs[1].content, "1\n");
}
