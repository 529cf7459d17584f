//! The typed syntax tree of a Dockerfile: one [`Command`] variant per instruction, each
//! wrapped in an [`Instruction`] that carries where it stands and how it was written.
//!
//! Arguments are kept as written (quotes, escapes and `$VAR` references intact); the
//! expansion that BuildKit applies to some instructions is [`crate::expand`]'s job, since it
//! needs the build's variables.

use std::time::Duration;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

/// A source range: from `start` to `end`, both inclusive of the characters they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first character.
    pub start: Position,
    /// The last character.
    pub end: Position,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The parser directives at the top, in order.
    pub directives: Vec<Directive>,
    /// The escape character: `\` unless a `# escape=` directive chose the backtick.
    pub escape: char,
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
    /// Comment lines between instructions (not those inside a continued instruction or a
    /// heredoc body): lint pragmas live here.
    pub comments: Vec<Comment>,
    /// Accepted but discouraged constructs (BuildKit's parser warnings).
    pub warnings: Vec<Warning>,
}

/// A `# ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The line it is on.
    pub line: usize,
    /// The text after `#`, trimmed.
    pub text: String,
}

/// A parser directive (`# syntax=`, `# escape=`, `# check=`) from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The line it is on.
    pub line: usize,
}

/// A construct BuildKit's parser accepts with a warning (an empty continuation line, a
/// misplaced directive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where it is.
    pub span: Span,
    /// What BuildKit says of it.
    pub message: String,
}

/// One instruction with its place in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// From the keyword to the end of the last line, heredoc bodies included.
    pub span: Span,
    /// The instruction's text as it stands in the file, continuation lines and heredoc
    /// bodies included.
    pub original: String,
    /// The builder flags as BuildKit hands them on: `--name=value`, quotes removed.
    pub flags: Vec<String>,
    /// The heredocs the instruction opens, in the order of their markers.
    pub heredocs: Vec<Heredoc>,
    /// The instruction and its typed arguments.
    pub command: Command,
}

/// A heredoc (`<<EOF` … `EOF`) attached to a RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter with its quotes removed.
    pub name: String,
    /// The body as written, line breaks included; with `<<-` leading tabs are removed.
    pub content: String,
    /// False when any part of the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// The instructions, one variant each, with typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `FROM`: a new stage.
    From(From),
    /// `RUN`.
    Run(Run),
    /// `CMD`: the default command.
    Cmd(CommandLine),
    /// `LABEL k=v …`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER` (deprecated): becomes the `author` field.
    Maintainer(String),
    /// `EXPOSE`: ports as written (`80`, `53/udp`, `$PORT`).
    Expose(Vec<String>),
    /// `ENV k=v …` (or the legacy `ENV k v`).
    Env(Vec<KeyValue>),
    /// `ADD`: files, URLs, git repositories, archives unpacked.
    Add(Add),
    /// `COPY`.
    Copy(Copy),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `VOLUME`.
    Volume(Volume),
    /// `USER user[:group]`, as written.
    User(String),
    /// `WORKDIR`, as written.
    Workdir(String),
    /// `ARG name[=default] …`.
    Arg(Vec<ArgDecl>),
    /// `ONBUILD`: the instruction it holds, run when another build uses the image as its
    /// base.
    Onbuild(Box<Instruction>),
    /// `STOPSIGNAL`, as written.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// SHELL takes the exec form only.
    Shell(Vec<String>),
}

impl Command {
    /// The instruction keyword in lower case, as BuildKit's AST names it.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "from",
            Command::Run(_) => "run",
            Command::Cmd(_) => "cmd",
            Command::Label(_) => "label",
            Command::Maintainer(_) => "maintainer",
            Command::Expose(_) => "expose",
            Command::Env(_) => "env",
            Command::Add(_) => "add",
            Command::Copy(_) => "copy",
            Command::Entrypoint(_) => "entrypoint",
            Command::Volume(_) => "volume",
            Command::User(_) => "user",
            Command::Workdir(_) => "workdir",
            Command::Arg(_) => "arg",
            Command::Onbuild(_) => "onbuild",
            Command::StopSignal(_) => "stopsignal",
            Command::Healthcheck(_) => "healthcheck",
            Command::Shell(_) => "shell",
        }
    }
}

/// `FROM [--platform=P] IMAGE [AS NAME]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image reference (or stage name, or `scratch`), as written.
    pub image: String,
    /// The stage name, lower-cased as BuildKit does.
    pub stage: Option<String>,
    /// `--platform`, as written.
    pub platform: Option<String>,
}

/// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The mount points, as written.
    pub paths: Vec<String>,
    /// True when written in the JSON form.
    pub json: bool,
}

/// A command in exec form (JSON array, run without a shell) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// The exec form: the JSON array's strings.
    Exec(Vec<String>),
    /// The shell form: the text after the keyword, run with the stage's SHELL.
    Shell(String),
}

/// `RUN [--mount=…] [--network=…] [--security=…] COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// The `--mount` flags, in order.
    pub mounts: Vec<Mount>,
    /// `--network`, when given.
    pub network: Option<NetworkMode>,
    /// `--security`, when given.
    pub security: Option<Security>,
}

/// `RUN --network=`: which network the step sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The build's network (`kiln build --network`; by default a namespace of the step's
    /// own with a way out, never the host's).
    Default,
    /// No network: loopback only.
    None,
    /// The host's network (an entitlement: `--allow network.host`).
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Confined as usual.
    Sandbox,
    /// Without confinement (an entitlement: `--allow security.insecure`).
    Insecure,
}

/// A `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type`: bind unless given.
    pub kind: MountKind,
    /// Where it appears in the container. Without one, a secret lands in
    /// `/run/secrets/ID`, an ssh socket in BuildKit's agent path, and the others at the
    /// working directory (BuildKit resolves targets against WORKDIR).
    pub target: Option<String>,
    /// `source` or `src`: a path in the context, the `from` stage or image.
    pub source: Option<String>,
    /// `from`: a stage name, index or image to mount from.
    pub from: Option<String>,
    /// `readonly`/`ro` or `rw`/`readwrite`.
    pub readonly: Option<bool>,
    /// Cache, secret and ssh ids.
    pub id: Option<String>,
    /// Cache mounts: how concurrent steps share the cache.
    pub sharing: Option<CacheSharing>,
    /// Cache, secret and ssh mounts: the file mode.
    pub mode: Option<u32>,
    /// Cache, secret and ssh mounts: the owner's user id.
    pub uid: Option<u32>,
    /// Cache, secret and ssh mounts: the owner's group id.
    pub gid: Option<u32>,
    /// Secrets and ssh: fail when the build has none.
    pub required: Option<bool>,
    /// tmpfs: the size in bytes.
    pub size: Option<u64>,
    /// Secrets: the environment variable to expose it in.
    pub env: Option<String>,
}

/// `RUN --mount=type=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A file or directory of the context, a stage or an image, read-only unless `rw`.
    Bind,
    /// A directory kept between builds (package caches).
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret given to the build (`--secret`), never in a layer.
    Secret,
    /// An ssh agent socket given to the build (`--ssh`).
    Ssh,
}

/// `RUN --mount=type=cache,sharing=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    /// Every step uses the cache at once (the default).
    Shared,
    /// A step the cache is busy for gets a new one.
    Private,
    /// A step waits while another uses the cache.
    Locked,
}

/// `KEY=VALUE` of ENV and LABEL, as written (quotes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, as written.
    pub key: String,
    /// The value, as written.
    pub value: String,
}

/// `ARG NAME[=DEFAULT]`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The variable's name.
    pub name: String,
    /// The default, as written, when there is one.
    pub default: Option<String>,
}

/// Whether a COPY/ADD source word is a heredoc marker (`<<EOF`, `<<-EOF`, `3<<"EOF"`)
/// rather than a path, as the grammar reads it.
pub fn is_heredoc_word(word: &str) -> bool {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let name = rest
        .strip_prefix("<<")
        .map(|r| r.strip_prefix('-').unwrap_or(r));
    name.is_some_and(|n| !n.is_empty() && !n.contains('<'))
}

/// What COPY and ADD share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Sources as written; a heredoc source stays as its marker (`<<EOF`, see
    /// [`is_heredoc_word`]) and its body is in [`Instruction::heredocs`], in order.
    pub sources: Vec<String>,
    /// The destination, as written.
    pub dest: String,
    /// `--chown`, as written.
    pub chown: Option<String>,
    /// `--chmod`, as written (octal, or symbolic as BuildKit takes it).
    pub chmod: Option<String>,
    /// `--link`: the layer does not depend on what is below it.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// True when written in the JSON form.
    pub json: bool,
}

/// `COPY [--from=…] [--parents] SRC… DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// What COPY shares with ADD.
    pub spec: CopySpec,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--parents`: keep the sources' parent directories under the destination.
    pub parents: bool,
}

/// `ADD [--checksum=…] [--keep-git-dir] SRC… DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// What ADD shares with COPY.
    pub spec: CopySpec,
    /// `--checksum`: the digest a URL's content (or a commit a git source) must have.
    pub checksum: Option<String>,
    /// `--keep-git-dir`: keep `.git` of a git source.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Cmd {
        /// The check to run.
        command: CommandLine,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}
