//! The client end of a container's streams: `kiln run` (without -d), `kiln start -a`
//! and `kiln attach` — the output printed as it comes, standard input passed on, the
//! terminal in raw mode and its size followed, signals passed to the container
//! (docker's sig-proxy), and the detach keys (Ctrl-P Ctrl-Q) leaving it running.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use kiln_image::store::Store;
use kiln_runtime::containers::attach::Frame;
use kiln_runtime::containers::{Containers, Status};

use super::run::KILN_FAILED;

#[derive(clap::Args)]
pub struct AttachArgs {
    /// The keys that detach, docker's way: `ctrl-p,ctrl-q`; `ctrl-<a-z@[\]^_>` or one
    /// character each; empty for none.
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    detach_keys: String,
    /// Do not pass standard input on.
    #[arg(long)]
    no_stdin: bool,
    /// Pass the signals kiln receives on to the container.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    container: String,
}

/// How a client attaches.
pub(crate) struct Options {
    /// Pass standard input on (the container was made with -i).
    pub stdin: bool,
    /// Close the container's standard input when ours ends (docker's StdinOnce: `run -i`).
    pub stdin_once: bool,
    pub tty: bool,
    pub detach_keys: Vec<u8>,
    pub sig_proxy: bool,
}

/// `kiln attach CONTAINER`.
pub fn attach_command(args: AttachArgs) -> anyhow::Result<ExitCode> {
    let containers = Containers::open(&Store::default_root())?;
    let c = containers.find(&args.container)?;
    if c.state.status != Status::Running {
        bail!("you cannot attach to a stopped container: start it first (kiln start -a)");
    }
    let stream = c
        .with_attach_socket(|p| UnixStream::connect(p))
        .context("connecting to the container's supervisor")?;
    attach(
        stream,
        &Options {
            stdin: c.config.open_stdin && !args.no_stdin,
            stdin_once: false,
            tty: c.config.tty,
            detach_keys: parse_detach_keys(&args.detach_keys)?,
            sig_proxy: args.sig_proxy,
        },
    )
}

/// Docker's `--detach-keys` format.
pub(crate) fn parse_detach_keys(spec: &str) -> anyhow::Result<Vec<u8>> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|key| {
            let bad = || {
                anyhow::anyhow!(
                    "--detach-keys {spec:?}: {key:?} is not ctrl-<a-z@[\\]^_> or one character"
                )
            };
            match key.strip_prefix("ctrl-") {
                Some(k) if k.len() == 1 => match k.as_bytes()[0] {
                    c @ b'a'..=b'z' => Ok(c - b'a' + 1),
                    c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => Ok(c & 0x1f),
                    _ => Err(bad()),
                },
                Some(_) => Err(bad()),
                None if key.len() == 1 => Ok(key.as_bytes()[0]),
                None => Err(bad()),
            }
        })
        .collect()
}

/// Attached to the supervisor on `stream` until the container's command ends (its exit
/// code is ours) or the detach keys are typed (0, the container left running).
pub(crate) fn attach(stream: UnixStream, o: &Options) -> anyhow::Result<ExitCode> {
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let send = {
        let writer = writer.clone();
        move |frame: Frame| {
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            frame.write_to(&mut *w).is_ok()
        }
    };
    let _raw = (o.tty && o.stdin).then(super::tty::RawMode::enter);
    if o.tty {
        let (rows, cols) = super::tty::caller_size();
        send(Frame::Resize { rows, cols });
    }
    relay_signals(o.tty, o.sig_proxy, send.clone())?;
    let detached = Arc::new(AtomicBool::new(false));
    if o.stdin {
        let keys = if o.tty {
            o.detach_keys.clone()
        } else {
            Vec::new()
        };
        let (detached, stdin_once, shut) = (detached.clone(), o.stdin_once, stream.try_clone()?);
        // Detached: a read of standard input cannot be interrupted, and the process
        // ends soon after its output does.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            let mut matched = 0;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !keys.is_empty() && b == keys[matched] {
                        matched += 1;
                        if matched == keys.len() {
                            detached.store(true, Ordering::SeqCst);
                            let _ = shut.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        continue;
                    }
                    // Not the sequence after all: what was held back goes on.
                    out.extend_from_slice(&keys[..matched]);
                    matched = 0;
                    out.push(b);
                }
                if !out.is_empty() && !send(Frame::Stdin(out)) {
                    return;
                }
            }
            if stdin_once {
                send(Frame::CloseStdin);
            }
        });
    }
    let mut reader = stream;
    loop {
        match Frame::read_from(&mut reader) {
            Ok(Some(Frame::Stdout(b))) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&b)?;
                out.flush()?;
            }
            Ok(Some(Frame::Stderr(b))) => std::io::stderr().write_all(&b)?,
            Ok(Some(Frame::Exit { code, message })) => {
                if !message.is_empty() {
                    eprintln!("kiln: {message}");
                }
                return Ok(ExitCode::from(code.clamp(0, 255) as u8));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) if detached.load(Ordering::SeqCst) => return Ok(ExitCode::SUCCESS),
            Ok(None) | Err(_) => {
                eprintln!("kiln: the container's supervisor ended without saying how the container did (was it killed?): see kiln ps -a");
                return Ok(ExitCode::from(KILN_FAILED));
            }
        }
    }
}

/// On a thread of its own: SIGWINCH resizes the container's terminal; SIGINT, SIGTERM,
/// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 go to the container (with `sig_proxy`).
fn relay_signals(
    tty: bool,
    sig_proxy: bool,
    send: impl Fn(Frame) -> bool + Send + 'static,
) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    if tty {
        set.add(Signal::SIGWINCH);
    }
    if sig_proxy {
        for s in super::supervisor::PROXIED_SIGNALS {
            set.add(s);
        }
    }
    set.thread_block()
        .context("blocking the signals to pass on")?;
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let frame = if sig == Signal::SIGWINCH {
                let (rows, cols) = super::tty::caller_size();
                Frame::Resize { rows, cols }
            } else {
                Frame::Signal(sig as i32)
            };
            if !send(frame) {
                return;
            }
        }
    });
    Ok(())
}
