//! The program worker: `edi-bridge program-worker`, started by a [`Sandbox`](super::Sandbox)
//! with pipes for stdin and stdout. It reads requests (a program, its input and globals, the
//! limits) as length-prefixed JSON frames, compiles each program once (cached by its text), runs
//! it on a thread whose stack is the depth limit, under an address-space limit (the memory limit)
//! and a CPU-time limit (a backstop: the parent kills the worker at the time limit), and answers
//! with the outputs or the program's error. A run that overflows its stack or runs out of memory
//! aborts this process, which is the point: the parent sees the death and names the limit. The
//! worker exits when its parent closes the pipe, even in the middle of a run.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Limits, Program, RunError};

/// The hidden subcommand that starts a worker.
pub const SUBCOMMAND: &str = "program-worker";

/// A request as the parent writes it (borrowed) …
#[derive(Serialize)]
pub(super) struct RequestRef<'a> {
    pub code: &'a str,
    pub globals: &'a [String],
    pub input: &'a Value,
    pub vars: Vec<&'a Value>,
    pub limits: Limits,
}

/// … and as the worker reads it.
#[derive(Deserialize)]
struct Request {
    code: String,
    globals: Vec<String>,
    input: Value,
    vars: Vec<Value>,
    limits: Limits,
}

/// The worker's answer to one request.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Reply {
    Outputs(Vec<Value>),
    Failed(String),
    NotJson(String),
    Compile(String),
}

/// Largest request frame a worker reads.
const MAX_REQUEST: usize = 256 << 20;
/// Compiled programs kept; the cache starts over when full (a mapping has a handful).
const CACHE: usize = 64;

/// Runs the worker loop on stdin/stdout until stdin closes.
pub fn serve() -> ExitCode {
    // A run that dies leaves no core file behind.
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut cache: HashMap<(String, Vec<String>), Program> = HashMap::new();
    loop {
        let frame = match read_frame(&mut stdin, MAX_REQUEST) {
            Ok(Some(f)) => f,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::FAILURE,
        };
        let reply = match serde_json::from_slice::<Request>(&frame) {
            Err(e) => encode(&Reply::Compile(format!("unreadable request: {e}"))),
            Ok(req) => {
                let key = (req.code.clone(), req.globals.clone());
                if cache.len() >= CACHE && !cache.contains_key(&key) {
                    cache.clear();
                }
                let compiled = match cache.get(&key) {
                    Some(p) => Ok(p.clone()),
                    None => {
                        let names: Vec<&str> = req.globals.iter().map(String::as_str).collect();
                        Program::compile(&req.code, &names).inspect(|p| {
                            cache.insert(key, p.clone());
                        })
                    }
                };
                match compiled {
                    Err(e) => encode(&Reply::Compile(e.message)),
                    Ok(program) => run_bounded(program, req),
                }
            }
        };
        if write_frame(&mut stdout, &reply).is_err() {
            return ExitCode::FAILURE;
        }
    }
}

/// Runs one request on a thread with the depth limit as its stack, under the memory and CPU
/// limits, and returns the encoded reply. Exits the process when the parent goes away.
fn run_bounded(program: Program, req: Request) -> Vec<u8> {
    let limits = req.limits;
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("program".into())
        .stack_size(mib(limits.program_stack_mib))
        .spawn(move || {
            let saved = limit_this_run(limits);
            let reply = match program.run_all(&req.input, &req.vars) {
                Ok(out) => Reply::Outputs(out),
                Err(RunError::NotJson(m)) => Reply::NotJson(m),
                Err(e) => Reply::Failed(match e {
                    RunError::Failed(m) => m,
                    other => other.to_string(),
                }),
            };
            // Encoded (and the values dropped) here, on the bounded stack: a deeply nested output
            // costs this run, not the worker's main thread.
            let bytes = encode(&reply);
            drop(reply);
            drop(req);
            restore(saved);
            let _ = tx.send(bytes);
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => return encode(&Reply::Compile(format!("cannot start a run: {e}"))),
    };
    let stdin = io::stdin();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(bytes) => {
                let _ = handle.join();
                return bytes;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if parent_gone(&stdin) {
                    std::process::exit(3);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = handle.join();
                return encode(&Reply::Failed("the program stopped unexpectedly".into()));
            }
        }
    }
}

/// Whether the parent closed our stdin (it died, or gave up on this worker).
fn parent_gone(stdin: &io::Stdin) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(stdin, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(_) => fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR),
        Err(_) => false,
    }
}

/// The address-space and CPU limits before this run, to put back after it.
struct Saved {
    address_space: Rlimit,
    cpu: Rlimit,
}

/// Limits the process for one run: its address space to what it uses now plus the memory limit,
/// its CPU time to what it used so far plus the time limit (rounded up) and two seconds.
fn limit_this_run(limits: Limits) -> Saved {
    let saved = Saved {
        address_space: getrlimit(Resource::As),
        cpu: getrlimit(Resource::Cpu),
    };
    let clamp = |want: u64, max: Option<u64>| Some(max.map_or(want, |m| want.min(m)));
    if let Some(now) = address_space_bytes() {
        let want = now.saturating_add(mib(limits.program_memory_mib) as u64);
        let _ = setrlimit(
            Resource::As,
            Rlimit {
                current: clamp(want, saved.address_space.maximum),
                maximum: saved.address_space.maximum,
            },
        );
    }
    let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime).tv_sec;
    let want = (used.max(0) as u64) + limits.program_time_ms.div_ceil(1000) + 2;
    let _ = setrlimit(
        Resource::Cpu,
        Rlimit {
            current: clamp(want, saved.cpu.maximum),
            maximum: saved.cpu.maximum,
        },
    );
    saved
}

fn restore(saved: Saved) {
    let _ = setrlimit(Resource::As, saved.address_space);
    let _ = setrlimit(Resource::Cpu, saved.cpu);
}

/// The process's address space now (the first field of `/proc/self/statm`, in pages).
fn address_space_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

fn mib(n: u64) -> usize {
    usize::try_from(n)
        .unwrap_or(usize::MAX / 2)
        .saturating_mul(1 << 20)
}

fn encode(reply: &Reply) -> Vec<u8> {
    serde_json::to_vec(reply).unwrap_or_else(|e| {
        serde_json::to_vec(&Reply::NotJson(e.to_string())).expect("a string encodes")
    })
}

/// Reads one frame (a 4-byte little-endian length, then that many bytes); `None` at a clean end.
pub(super) fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Writes one frame and flushes.
pub(super) fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_clean_end_is_none() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"{\"a\":1}").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 100).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(read_frame(&mut r, 100).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r, 100).unwrap().is_none());
        let mut r = &buf[..];
        assert!(read_frame(&mut r, 3).is_err(), "larger than allowed");
        let mut cut = &buf[..6];
        assert!(read_frame(&mut cut, 100).is_err(), "cut in the middle");
    }

    #[test]
    fn a_request_written_by_the_parent_reads_back() {
        let input = serde_json::json!({"x": [1, "two"]});
        let globals = vec!["$po".to_string()];
        let po = serde_json::json!({"n": 1});
        let bytes = serde_json::to_vec(&RequestRef {
            code: ".x",
            globals: &globals,
            input: &input,
            vars: vec![&po],
            limits: Limits::default(),
        })
        .unwrap();
        let req: Request = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(req.code, ".x");
        assert_eq!(req.input, input);
        assert_eq!(req.vars, vec![po]);
        assert_eq!(req.limits, Limits::default());
    }
}
