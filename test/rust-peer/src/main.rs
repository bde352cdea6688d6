//! A Rust peer for test/rust-peer.test.js. It locks, writes and reads the lock
//! file the way the Rust reference (ralph_core::loop_lock) does: the same
//! LockMetadata, serde_json, chrono and whole-file flock(LOCK_EX).
//!
//! Each stdin line is a command as a JSON array of strings (so prompts can hold
//! any character); each reply is one JSON object on a stdout line:
//!
//!   ["read", path]         -> {"event":"read","record":R,"pretty":P}
//!   ["hold", path, prompt] -> {"event":"held","record":R} after writing the record
//!   ["try", path]          -> {"event":"try","acquired":true} (unlocked again at once),
//!                             or {"event":"try","acquired":false,"holder":R}
//!   ["release"]            -> {"event":"released"}
//!
//! and ralph_core::file_lock's sidecar locks (see file_lock.rs):
//!
//!   ["name", path]                -> {"event":"name","lockPath":L}, L as FileLock::new names it
//!   ["file-lock", path, mode, how] -> {"event":"file-lock","acquired":bool,"lockPath":L}: mode
//!                                    "shared" or "exclusive", how "try" (None when taken) or
//!                                    "block" (replies once it has the lock); kept until
//!                                    "file-release"
//!   ["file-release"]              -> {"event":"file-released"}, dropping every file lock held
//!
//! R is {"pid","started","prompt"} as serde parsed it, `started` in RFC 3339
//! with nanoseconds, or {"error"} with serde's message. P is what
//! to_string_pretty writes for the record read (null if it did not parse).
//! A held lock is kept until "release" or until stdin closes. An I/O error, or
//! a hold that finds the lock taken, ends the process with a message.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process;

mod file_lock;

/// The reference's record, field for field.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockMetadata {
    pid: u32,
    started: DateTime<Utc>,
    prompt: String,
}

fn main() {
    let mut held: Option<File> = None;
    let mut file_locks: Vec<file_lock::LockGuard> = Vec::new();
    for line in io::stdin().lock().lines() {
        let line = line.expect("reading stdin");
        let command: Vec<String> = serde_json::from_str(&line).expect("a JSON array of strings");
        let reply = match file_lock::run(&command, &mut file_locks) {
            Some(reply) => reply,
            None => run(&command, &mut held),
        };
        match reply {
            Ok(reply) => println!("{}", reply),
            Err(error) => {
                eprintln!("{}: {}", line, error);
                process::exit(1);
            }
        }
    }
}

fn run(command: &[String], held: &mut Option<File>) -> io::Result<Value> {
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    Ok(match args.as_slice() {
        ["read", path] => {
            let record = read_metadata(&mut File::open(path)?);
            let pretty = record.as_ref().ok().map(|m| serde_json::to_string_pretty(m).expect("serializing"));
            json!({ "event": "read", "record": describe(record), "pretty": pretty })
        }
        ["hold", path, prompt] => {
            assert!(held.is_none(), "this peer already holds a lock");
            let mut file = open(path)?;
            if !try_lock(&file)? {
                let holder = describe(read_metadata(&mut file));
                return Err(io::Error::new(io::ErrorKind::WouldBlock, format!("held by {}", holder)));
            }
            let metadata = write_metadata(&file, prompt)?;
            *held = Some(file);
            json!({ "event": "held", "record": describe(Ok(metadata)) })
        }
        ["try", path] => {
            let mut file = open(path)?;
            if try_lock(&file)? {
                json!({ "event": "try", "acquired": true })
            } else {
                json!({ "event": "try", "acquired": false, "holder": describe(read_metadata(&mut file)) })
            }
        }
        ["release"] => {
            *held = None; // closing the file drops the flock
            json!({ "event": "released" })
        }
        _ => panic!("unknown command {:?}", command),
    })
}

/// Opens the lock file as the reference does: read-write, created if missing.
fn open(path: &str) -> io::Result<File> {
    if let Some(parent) = Path::new(path).parent() {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// flock(LOCK_EX | LOCK_NB): Ok(false) when another open file holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// The reference's write_metadata: truncate, write to_string_pretty, fsync.
fn write_metadata(file: &File, prompt: &str) -> io::Result<LockMetadata> {
    let metadata = LockMetadata { pid: process::id(), started: Utc::now(), prompt: prompt.to_string() };
    let mut file = file.try_clone()?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    let json = serde_json::to_string_pretty(&metadata).expect("serializing LockMetadata");
    file.write_all(json.as_bytes())?;
    file.sync_all()?;
    Ok(metadata)
}

/// The reference's read_metadata: the whole file, parsed by serde_json.
fn read_metadata(file: &mut File) -> Result<LockMetadata, String> {
    let mut contents = String::new();
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    file.read_to_string(&mut contents).map_err(|e| e.to_string())?;
    if contents.trim().is_empty() {
        return Err("Empty lock file".to_string());
    }
    serde_json::from_str(&contents).map_err(|e| e.to_string())
}

fn describe(record: Result<LockMetadata, String>) -> Value {
    match record {
        Ok(m) => json!({
            "pid": m.pid,
            "started": m.started.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "prompt": m.prompt,
        }),
        Err(error) => json!({ "error": error }),
    }
}
