//! Notices every change of the mounted config directory.
//!
//! The kubelet updates a ConfigMap volume by writing a new timestamped directory and atomically
//! renaming the `..data` symlink; the visible file names never change. inotify on the directory
//! sees that rename; a content poll catches anything an event missed. Runs on its own thread so
//! parsing and compiling never touch the routing path.

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::Reloader;

/// Quiet time after an event before loading, so a burst of events causes one reload.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often a config directory that does not exist yet (a ConfigMap volume the kubelet has not
/// projected, a bundle the operator has not published) is looked for: it cannot be watched.
const MISSING_DIR_POLL: Duration = Duration::from_millis(250);

/// Starts the watch thread.
pub fn spawn(
    mut reloader: Reloader,
    poll_interval: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let (events_tx, events) = channel();
            let mut watcher =
                match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok() {
                        let _ = events_tx.send(());
                    }
                }) {
                    Ok(watcher) => Some(watcher),
                    Err(error) => {
                        tracing::warn!(%error, "file events unavailable; relying on polling");
                        None
                    }
                };
            let mut watching = false;
            loop {
                if !watching {
                    watching = arm(watcher.as_mut(), reloader.config_dir());
                    if watching {
                        // The directory may have appeared with its bundle already in it.
                        reloader.check();
                    }
                }
                let missing = !watching && !reloader.config_dir().exists();
                let timeout = if missing {
                    poll_interval.min(MISSING_DIR_POLL)
                } else {
                    poll_interval
                };
                match events.recv_timeout(timeout) {
                    Ok(()) => {
                        while events.recv_timeout(DEBOUNCE).is_ok() {}
                        reloader.check();
                    }
                    Err(RecvTimeoutError::Timeout) => reloader.check(),
                    Err(RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(poll_interval);
                        reloader.check();
                    }
                }
            }
        })
}

fn arm(watcher: Option<&mut notify::RecommendedWatcher>, dir: &Path) -> bool {
    let Some(watcher) = watcher else {
        return false;
    };
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(dir = %dir.display(), %error, "cannot watch the config directory yet");
            false
        }
    }
}
