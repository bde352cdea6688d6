//! ralph_core::file_lock as the reference writes it (its FileLock::new, the
//! same open options and flock() calls), with libc in place of nix, and the
//! commands that drive it (see main.rs).

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub struct FileLock {
    lock_path: PathBuf,
}

/// Held until dropped: closing the file drops the flock.
pub struct LockGuard {
    _file: File,
}

#[derive(Clone, Copy)]
enum LockType {
    Shared,
    Exclusive,
}

/// The reference's sidecar name, expression for expression.
pub fn lock_path_of(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}.lock",
        path.extension().map(|s| s.to_string_lossy().to_string()).unwrap_or_default()
    ))
}

impl FileLock {
    pub fn new(path: impl AsRef<Path>) -> io::Result<Self> {
        let lock_path = lock_path_of(path.as_ref());
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Self { lock_path })
    }

    fn lock(&self, lock_type: LockType, block: bool) -> io::Result<Option<LockGuard>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&self.lock_path)?;
        let operation = match lock_type {
            LockType::Shared => libc::LOCK_SH,
            LockType::Exclusive => libc::LOCK_EX,
        } | if block { 0 } else { libc::LOCK_NB };
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(Some(LockGuard { _file: file }));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) if !block => Ok(None),
            _ => Err(error),
        }
    }
}

/// A file_lock command's reply, or None when `command` is not one.
pub fn run(command: &[String], held: &mut Vec<LockGuard>) -> Option<io::Result<Value>> {
    let args: Vec<&str> = command.iter().map(String::as_str).collect();
    Some(match args.as_slice() {
        ["name", path] => Ok(json!({ "event": "name", "lockPath": lock_path_of(Path::new(path)).to_string_lossy() })),
        ["file-lock", path, mode, how] => {
            let lock_type = match *mode {
                "shared" => LockType::Shared,
                "exclusive" => LockType::Exclusive,
                _ => panic!("unknown mode {}", mode),
            };
            FileLock::new(path).and_then(|lock| {
                let guard = lock.lock(lock_type, *how == "block")?;
                let acquired = guard.is_some();
                held.extend(guard);
                Ok(json!({ "event": "file-lock", "acquired": acquired, "lockPath": lock.lock_path.to_string_lossy() }))
            })
        }
        ["file-release"] => {
            held.clear();
            Ok(json!({ "event": "file-released" }))
        }
        _ => return None,
    })
}
