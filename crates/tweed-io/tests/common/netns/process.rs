//! [`Process`]: a program spawned for a test (an agent, a server), its output in a log file, stopped on drop.

use std::fmt;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use super::{Error, Result, SIGKILL, SIGTERM, STOP_GRACE, sys, tail, wait_for, wait_timeout};

/// A spawned program (an agent, a server) whose stdout and stderr go to a log file; on drop it gets SIGTERM, then
/// SIGKILL after [`STOP_GRACE`], and if the test is panicking its log is printed.
#[must_use = "the process is stopped when this guard is dropped"]
pub struct Process {
    label: String,
    child: Child,
    log: tempfile::NamedTempFile,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `argv` in the root namespace (use [`NetNs::spawn`] for a namespace).
    pub fn spawn(label: &str, argv: &[&str]) -> Result<Self> {
        let cmd = argv.join(" ");
        let spawn_err = |source| Error::Spawn { cmd: cmd.clone(), source };
        let Some((program, args)) = argv.split_first() else {
            return Err(spawn_err(std::io::Error::other("empty command")));
        };
        let log = tempfile::Builder::new().prefix(&format!("tweed-{label}-")).suffix(".log").tempfile();
        let log = log.map_err(spawn_err)?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.as_file().try_clone().map_err(spawn_err)?)
            .stderr(log.as_file().try_clone().map_err(spawn_err)?)
            .spawn()
            .map_err(spawn_err)?;
        Ok(Self { label: label.to_owned(), child, log, status: None })
    }

    /// Its pid (with `ip netns exec`, the program's own: `ip` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed so far (stdout and stderr, interleaved).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.log.path()).unwrap_or_default()).into_owned()
    }

    /// The log file (deleted when the guard is dropped).
    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    /// Its exit status if it has exited, `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends it a signal (`SIGUSR1` for counters, …); false if it is gone.
    pub fn signal(&mut self, sig: i32) -> bool {
        self.exited().is_none() && sys::kill(self.pid(), sig)
    }

    /// Waits until its log contains `needle` (a "ready" line), for at most `timeout`; fails early if it exits.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let what = format!("{} to print {needle:?}", self.label);
        let mut exited = None;
        let found = wait_for(&what, timeout, || {
            if self.log().contains(needle) {
                return Some(true);
            }
            exited = self.exited();
            exited.map(|_| false)
        });
        match (found, exited) {
            (Ok(true), _) => Ok(()),
            (Ok(false), Some(status)) => {
                Err(Error::Failed { cmd: self.label.clone(), status, stdout: String::new(), stderr: self.log() })
            }
            (Ok(false), None) => unreachable!("false is only returned once the process has exited"),
            (Err(e), _) => Err(match e {
                Error::Timeout { what, after, .. } => Error::Timeout { what, after, detail: self.log() },
                other => other,
            }),
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; its exit status (a clean shutdown is `success()`, a kill has
    /// `signal() == Some(SIGKILL)`).
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        if let Some(status) = self.exited() {
            return status;
        }
        sys::kill(self.pid(), SIGTERM);
        let status = wait_timeout(&mut self.child, grace).unwrap_or_else(|| {
            let _ = self.child.kill();
            self.child.wait().unwrap_or(ExitStatus::from_raw(SIGKILL))
        });
        self.status = Some(status);
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let status = self.stop(STOP_GRACE);
        if thread::panicking() {
            let log = self.log();
            eprintln!("---- log of {} ({status}) ----\n{}\n---- end of log ----", self.label, tail(&log, 16 * 1024));
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Process({} pid {})", self.label, self.pid())
    }
}
