//! A container's streams in its supervisor: the output goes to the log (docker's
//! json-file, a line per entry) and, as it comes, to every attached client; clients'
//! input goes to the container's standard input or terminal, their resizes to the
//! terminal, their signals to PID 1. Clients come on the attach socket (`kiln attach`)
//! or on the socket `kiln run` and `kiln start -a` hand over when they start the
//! supervisor, so they see the output from its first byte.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard};

use kiln_runtime::containers::attach::Frame;
use kiln_runtime::containers::{Container, LogWriter, Stream};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The log and the part of a line each stream has not ended yet.
struct Log {
    writer: LogWriter,
    pending: [Vec<u8>; 2],
}

/// Where clients' input goes.
enum Input {
    /// The command has not started: kept for it (`echo hi | kiln run -i` sends at once).
    Early {
        bytes: Vec<u8>,
        closed: bool,
    },
    /// Its standard input: a pipe, or its terminal.
    Open(File),
    Closed,
}

pub(crate) struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    log: Mutex<Log>,
    input: Mutex<Input>,
    /// Its terminal, for resizes.
    terminal: Mutex<Option<File>>,
    /// The last size a client asked for (the terminal's size at the next start).
    size: Mutex<(u16, u16)>,
    /// Its PID 1 while it runs (shared with the supervisor's signal forwarding).
    pid: Arc<Mutex<Option<u32>>>,
}

impl Hub {
    pub fn new(container: &Container, pid: Arc<Mutex<Option<u32>>>) -> anyhow::Result<Arc<Hub>> {
        let writer = LogWriter::open(
            &container.log_path(),
            container.config.log_max_size,
            container.config.log_max_file,
        )?;
        Ok(Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            log: Mutex::new(Log {
                writer,
                pending: [Vec::new(), Vec::new()],
            }),
            input: Mutex::new(Input::Early {
                bytes: Vec::new(),
                closed: false,
            }),
            terminal: Mutex::new(None),
            size: Mutex::new((24, 80)),
            pid,
        }))
    }

    /// The slot of the running container's PID 1.
    pub fn pid(&self) -> Arc<Mutex<Option<u32>>> {
        self.pid.clone()
    }

    /// Accepts clients on the container's attach socket from now on (a socket left by a
    /// supervisor that was killed is replaced).
    pub fn listen(self: &Arc<Self>, container: &Container) -> anyhow::Result<()> {
        let listener = container.with_attach_socket(|path| {
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path)
        })?;
        let hub = self.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                hub.add(client);
            }
        });
        Ok(())
    }

    /// Sends the output to `client` from now on, and serves its input.
    pub fn add(self: &Arc<Self>, client: UnixStream) {
        let Ok(writer) = client.try_clone() else {
            return;
        };
        lock(&self.clients).push(writer);
        let hub = self.clone();
        std::thread::spawn(move || hub.serve(client));
    }

    fn serve(&self, mut client: UnixStream) {
        while let Ok(Some(frame)) = Frame::read_from(&mut client) {
            match frame {
                Frame::Stdin(bytes) => match &mut *lock(&self.input) {
                    Input::Open(input) => {
                        let _ = input.write_all(&bytes);
                    }
                    Input::Early { bytes: early, .. } => early.extend_from_slice(&bytes),
                    Input::Closed => {}
                },
                // A pipe closes (the program reads the end of its input); a terminal
                // stays.
                Frame::CloseStdin => {
                    let mut input = lock(&self.input);
                    match &mut *input {
                        Input::Early { closed, .. } => *closed = true,
                        Input::Open(_) if lock(&self.terminal).is_none() => *input = Input::Closed,
                        _ => {}
                    }
                }
                Frame::Resize { rows, cols } => self.resize(rows, cols),
                Frame::Signal(sig) => {
                    let pid = *lock(&self.pid);
                    if let (Some(pid), Ok(sig)) = (pid, nix::sys::signal::Signal::try_from(sig)) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
                    }
                }
                Frame::Stdout(_) | Frame::Exit { .. } | Frame::Stderr(_) => {}
            }
        }
    }

    /// The terminal's size: now, and for its next start.
    pub fn resize(&self, rows: u16, cols: u16) {
        *lock(&self.size) = (rows, cols);
        if let Some(t) = lock(&self.terminal).as_ref() {
            kiln_runtime::terminal::set_size(t.as_raw_fd(), rows, cols);
        }
    }

    pub fn size(&self) -> (u16, u16) {
        *lock(&self.size)
    }

    /// Where client input goes while the command runs (what came before it started
    /// goes first); with None, it ended: input is kept for its next run.
    pub fn connect(&self, input: Option<File>, terminal: Option<File>) {
        let mut slot = lock(&self.input);
        *lock(&self.terminal) = terminal;
        *slot = match (input, std::mem::replace(&mut *slot, Input::Closed)) {
            (Some(mut file), Input::Early { bytes, closed }) => {
                let _ = file.write_all(&bytes);
                if closed && lock(&self.terminal).is_none() {
                    Input::Closed
                } else {
                    Input::Open(file)
                }
            }
            (Some(file), _) => Input::Open(file),
            (None, _) => Input::Early {
                bytes: Vec::new(),
                closed: false,
            },
        };
    }

    /// Output of the container: to each client as it comes (one that cannot take it is
    /// dropped), to the log by lines.
    pub fn output(&self, stream: Stream, bytes: &[u8]) {
        let frame = match stream {
            Stream::Stdout => Frame::Stdout(bytes.to_vec()),
            Stream::Stderr => Frame::Stderr(bytes.to_vec()),
        };
        lock(&self.clients).retain_mut(|c| frame.write_to(c).is_ok());
        let mut log = lock(&self.log);
        let Log { writer, pending } = &mut *log;
        let pending = &mut pending[stream as usize];
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let _ = writer.write(stream, &String::from_utf8_lossy(&line));
        }
    }

    /// Copies `reader` (a pipe, or the terminal) to [`Hub::output`] until it ends.
    pub fn copy(
        self: &Arc<Self>,
        mut reader: impl Read + Send + 'static,
        stream: Stream,
    ) -> std::thread::JoinHandle<()> {
        let hub = self.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => hub.output(stream, &buf[..n]),
                }
            }
        })
    }

    /// The container's command ended: a line it left unfinished goes to the log, its
    /// input is closed, and each client gets the exit frame and is let go.
    pub fn exit(&self, code: i32, message: &str) {
        self.connect(None, None);
        {
            let mut log = lock(&self.log);
            let Log { writer, pending } = &mut *log;
            for (stream, rest) in [Stream::Stdout, Stream::Stderr].into_iter().zip(pending) {
                if !rest.is_empty() {
                    let _ = writer.write(stream, &String::from_utf8_lossy(rest));
                    rest.clear();
                }
            }
        }
        let frame = Frame::Exit {
            code,
            message: message.to_string(),
        };
        for mut c in lock(&self.clients).drain(..) {
            let _ = frame.write_to(&mut c);
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}
