//! A directory updated exactly the way the kubelet updates a ConfigMap volume: files are written
//! into a new timestamped directory, `..data` is switched to it by an atomic symlink rename, and
//! each key is a symlink `key -> ..data/key`. Pods cannot run here, so tests and the e2e harness
//! project ConfigMaps into directories with this.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A projected ConfigMap directory.
#[derive(Debug)]
pub struct ProjectedConfigMap {
    dir: PathBuf,
    updates: u32,
}

impl ProjectedConfigMap {
    /// Creates the (empty) volume directory.
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(ProjectedConfigMap {
            dir: dir.to_path_buf(),
            updates: 0,
        })
    }

    /// The directory a router would mount.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publishes a new set of keys atomically.
    pub fn publish(&mut self, files: &[(&str, &[u8])]) -> io::Result<()> {
        self.updates += 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let stamp = format!("..{nanos}.{}", self.updates);
        let target = self.dir.join(&stamp);
        std::fs::create_dir(&target)?;
        for (name, content) in files {
            std::fs::write(target.join(name), content)?;
        }
        let previous = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp_link = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(&stamp, &tmp_link)?;
        std::fs::rename(&tmp_link, self.dir.join("..data"))?;
        for (name, _) in files {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
            }
        }
        if let Some(previous) = previous {
            std::fs::remove_dir_all(self.dir.join(previous))?;
        }
        Ok(())
    }
}
