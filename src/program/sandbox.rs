//! The parent side of the program workers: a small pool of `edi-bridge program-worker` processes
//! (started on demand, kept while healthy, at most [`MAX_WORKERS`] at once), each run sent as one
//! frame and answered by one. The time limit is enforced here: a worker that has not answered by
//! the deadline is killed (and a new one started for the next run). A worker that dies is
//! reported by the limit it broke: its last words say "overflowed its stack" (the depth limit) or
//! "memory allocation … failed" (the memory limit), or it got SIGXCPU (the time limit's
//! backstop). Its stderr is kept to read those words and never reaches the daemon's log.

use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::worker::{self, Reply, RequestRef};
use super::{Limits, Program, RunError};

/// Most worker processes alive at once; a run waits (within its time limit) for a free one.
pub const MAX_WORKERS: usize = 4;

/// A pool of program worker processes. Cloning shares the pool.
#[derive(Clone)]
pub struct Sandbox(Arc<Pool>);

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("exe", &self.0.exe).finish()
    }
}

struct Pool {
    exe: PathBuf,
    idle: Mutex<Vec<Worker>>,
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Sandbox {
    /// A pool of workers started as `exe program-worker` (`exe` is an edi-bridge binary).
    pub fn new(exe: impl Into<PathBuf>) -> Sandbox {
        Sandbox(Arc::new(Pool {
            exe: exe.into(),
            idle: Mutex::new(Vec::new()),
            busy: Mutex::new(0),
            freed: Condvar::new(),
        }))
    }

    /// A pool of workers started from the running binary (for the `edi-bridge` executable
    /// itself; a test binary must name the real one). On Linux through `/proc/self/exe`, which
    /// still starts this very binary after a package upgrade replaced the file on disk.
    pub fn this_binary() -> std::io::Result<Sandbox> {
        let proc_exe = Path::new("/proc/self/exe");
        if proc_exe.exists() {
            return Ok(Sandbox::new(proc_exe));
        }
        Ok(Sandbox::new(std::env::current_exe()?))
    }

    /// How many runs are in progress now.
    pub fn running(&self) -> usize {
        *self.0.busy.lock().expect("pool lock")
    }

    /// The executable the workers run.
    pub fn exe(&self) -> &Path {
        &self.0.exe
    }

    /// Runs `program` in a worker under `limits`. Blocks up to the time limit (plus the wait for
    /// a free worker, within the same limit).
    pub(super) fn run(
        &self,
        program: &Program,
        input: &Value,
        globals: &[Value],
        limits: Limits,
    ) -> Result<Vec<Value>, RunError> {
        assert_eq!(
            globals.len(),
            program.globals.len(),
            "program run with the wrong number of globals"
        );
        let started = Instant::now();
        let deadline = started + Duration::from_millis(limits.program_time_ms);
        let null = Value::Null;
        let request = RequestRef {
            code: &program.code,
            globals: &program.globals,
            input,
            // A global the program does not name is not sent (as in a run in process).
            vars: globals
                .iter()
                .zip(program.named.iter())
                .map(|(v, named)| if *named { v } else { &null })
                .collect(),
            limits,
        };
        let bytes = serde_json::to_vec(&request)
            .map_err(|e| RunError::Worker(format!("the input cannot be sent: {e}")))?;
        let _slot = self.slot(deadline, limits)?;
        let mut fresh = false;
        let mut w = match self.0.idle.lock().expect("pool lock").pop() {
            Some(w) => w,
            None => {
                fresh = true;
                Worker::spawn(&self.0.exe)?
            }
        };
        if w.send(&bytes).is_err() && !fresh {
            // An idle worker that died meanwhile (killed from outside): one fresh try.
            w.discard();
            w = Worker::spawn(&self.0.exe)?;
            if w.send(&bytes).is_err() {
                return Err(w.death(limits));
            }
        }
        let max_reply = (limits.program_memory_mib as usize).saturating_mul(1 << 20);
        match w.receive(deadline, max_reply) {
            Ok(frame) => {
                let reply = serde_json::from_slice::<Reply>(&frame);
                self.0.idle.lock().expect("pool lock").push(w);
                match reply {
                    Ok(Reply::Outputs(v)) => Ok(v),
                    Ok(Reply::Failed(m)) => Err(RunError::Failed(m)),
                    Ok(Reply::NotJson(m)) => Err(RunError::NotJson(m)),
                    Ok(Reply::Compile(m)) => Err(RunError::Worker(m)),
                    Err(e) if e.to_string().contains("recursion limit") => {
                        Err(RunError::NotJson("an output is nested too deep".into()))
                    }
                    Err(e) => Err(RunError::Worker(format!("unreadable answer: {e}"))),
                }
            }
            Err(Fate::TimedOut) => {
                w.discard();
                Err(RunError::TimeLimit(limits.program_time_ms))
            }
            Err(Fate::TooLarge) => {
                w.discard();
                Err(RunError::MemoryLimit(limits.program_memory_mib))
            }
            Err(Fate::Died) => Err(w.death(limits)),
        }
    }

    /// Waits (until `deadline`) for a worker slot.
    fn slot(&self, deadline: Instant, limits: Limits) -> Result<Slot<'_>, RunError> {
        let mut busy = self.0.busy.lock().expect("pool lock");
        while *busy >= MAX_WORKERS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RunError::Worker(format!(
                    "all {MAX_WORKERS} program workers stayed busy for the time limit ([limits] program_time_ms = {})",
                    limits.program_time_ms
                )));
            }
            busy = self.0.freed.wait_timeout(busy, left).expect("pool lock").0;
        }
        *busy += 1;
        Ok(Slot(&self.0))
    }
}

/// One of the [`MAX_WORKERS`] places, given back when dropped.
struct Slot<'a>(&'a Pool);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().expect("pool lock") -= 1;
        self.0.freed.notify_one();
    }
}

/// How a wait for an answer ended without one.
enum Fate {
    TimedOut,
    Died,
    TooLarge,
}

/// One worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
}

impl Worker {
    fn spawn(exe: &Path) -> Result<Worker, RunError> {
        let mut child = Command::new(exe)
            .arg(worker::SUBCOMMAND)
            // Nothing from the daemon's environment (no secret) reaches a worker; one malloc
            // arena keeps the address space (the memory limit) close to what is used.
            .env_clear()
            .env("MALLOC_ARENA_MAX", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                RunError::Worker(format!(
                    "cannot start {} {}: {e}",
                    exe.display(),
                    worker::SUBCOMMAND
                ))
            })?;
        let (stdin, stdout, stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        Ok(Worker {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        worker::write_frame(&mut self.stdin, bytes)
    }

    /// Reads one answer frame, giving up at `deadline`.
    fn receive(&mut self, deadline: Instant, max: usize) -> Result<Vec<u8>, Fate> {
        let mut len = [0u8; 4];
        self.read_by(&mut len, deadline)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > max {
            return Err(Fate::TooLarge);
        }
        let mut buf = vec![0u8; len];
        self.read_by(&mut buf, deadline)?;
        Ok(buf)
    }

    fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Fate> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut at = 0;
        while at < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Fate::TimedOut);
            }
            let timeout = Timespec::try_from(left).map_err(|_| Fate::TimedOut)?;
            let mut fds = [PollFd::new(&self.stdout, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return Err(Fate::TimedOut),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return Err(Fate::Died),
            }
            match self.stdout.read(&mut buf[at..]) {
                Ok(0) => return Err(Fate::Died),
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Fate::Died),
            }
        }
        Ok(())
    }

    /// Kills and reaps the worker (its `Drop`).
    fn discard(self) {}

    /// Why the worker died, in terms of the limit it broke.
    fn death(mut self, limits: Limits) -> RunError {
        let _ = self.stdin.flush();
        let _ = self.child.kill();
        let status = self.child.wait();
        let mut words = Vec::new();
        let _ = (&mut self.stderr).take(16 << 10).read_to_end(&mut words);
        let words = String::from_utf8_lossy(&words);
        if words.contains("overflowed its stack") {
            return RunError::DepthLimit(limits.program_stack_mib);
        }
        if words.contains("memory allocation of") || words.contains("capacity overflow") {
            return RunError::MemoryLimit(limits.program_memory_mib);
        }
        let status = match status {
            Ok(s) => s,
            Err(e) => return RunError::Worker(format!("it stopped: {e}")),
        };
        if status.signal() == Some(24) {
            // SIGXCPU: the CPU-time backstop.
            return RunError::TimeLimit(limits.program_time_ms);
        }
        let last = words
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", crate::text::escape(l.trim())))
            .unwrap_or_default();
        RunError::Worker(format!("it stopped ({status}){last}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // An idle worker reads EOF and exits; a busy one is killed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
