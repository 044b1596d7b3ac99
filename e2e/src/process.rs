//! A child process that is stopped with SIGTERM (like Kubernetes would) and killed on drop.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::poll::wait_until;

/// A running child whose stderr goes to a log file.
pub struct ChildProcess {
    child: Child,
    /// Where its output goes.
    pub log: std::path::PathBuf,
}

impl ChildProcess {
    /// Starts `program args`, sending stdout and stderr to `log`.
    pub fn spawn(program: &Path, args: &[String], log: &Path) -> anyhow::Result<Self> {
        Self::spawn_with_env(program, args, log, &[])
    }

    /// Like [`ChildProcess::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        program: &Path,
        args: &[String],
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        Ok(ChildProcess {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Sends SIGTERM and waits for a graceful exit.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let child = &mut self.child;
        wait_until("the process to exit after SIGTERM", timeout, || {
            child.try_wait().ok().flatten()
        })
    }

    /// Kills the process at once (a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its output so far, for failure messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
