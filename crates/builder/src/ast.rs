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
    pub line: usize,
    pub column: usize,
}

/// A source range: from `start` to `end`, both inclusive of the characters they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub directives: Vec<Directive>,
    /// The escape character: `\` unless a `# escape=` directive chose the backtick.
    pub escape: char,
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
    pub line: usize,
    /// The text after `#`, trimmed.
    pub text: String,
}

/// A parser directive (`# syntax=`, `# escape=`, `# check=`) from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub span: Span,
    pub message: String,
}

/// One instruction with its place in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub span: Span,
    /// The instruction's text as it stands in the file, continuation lines and heredoc
    /// bodies included.
    pub original: String,
    /// The builder flags as BuildKit hands them on: `--name=value`, quotes removed.
    pub flags: Vec<String>,
    pub heredocs: Vec<Heredoc>,
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
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(Add),
    Copy(Copy),
    Entrypoint(CommandLine),
    Volume(Volume),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    Onbuild(Box<Instruction>),
    StopSignal(String),
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
    pub image: String,
    /// The stage name, lower-cased as BuildKit does.
    pub stage: Option<String>,
    pub platform: Option<String>,
}

/// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub paths: Vec<String>,
    /// True when written in the JSON form.
    pub json: bool,
}

/// A command in exec form (JSON array, run without a shell) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<Security>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// A `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// Where it appears in the container. Without one, a secret lands in
    /// `/run/secrets/ID`, an ssh socket in BuildKit's agent path, and the others at the
    /// working directory (BuildKit resolves targets against WORKDIR).
    pub target: Option<String>,
    /// `source` or `src`: a path in the context, the `from` stage or image.
    pub source: Option<String>,
    /// `from`: a stage name, index or image to mount from.
    pub from: Option<String>,
    pub readonly: Option<bool>,
    /// Cache, secret and ssh ids.
    pub id: Option<String>,
    pub sharing: Option<CacheSharing>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Secrets and ssh: fail when the build has none.
    pub required: Option<bool>,
    /// tmpfs: the size in bytes.
    pub size: Option<u64>,
    /// Secrets: the environment variable to expose it in.
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// `KEY=VALUE` of ENV and LABEL, as written (quotes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG NAME[=DEFAULT]`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
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
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    /// True when written in the JSON form.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub spec: CopySpec,
    pub from: Option<String>,
    pub parents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub spec: CopySpec,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Cmd {
        command: CommandLine,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}
