//! The local fallback copy: the last bundle that loaded, kept on the router's own volume so a
//! router whose ConfigMap is missing or corrupt at start-up still routes.

use std::io::Write;
use std::path::{Path, PathBuf};

use streamsplit_rules::BUNDLE_FILE_NAME;

/// Writes `bytes` to `path` so that readers see the old or the new content, never a mix:
/// temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Where the fallback copy lives.
#[derive(Clone, Debug)]
pub struct FallbackStore {
    path: PathBuf,
}

impl FallbackStore {
    /// A store in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        FallbackStore {
            path: state_dir.join(BUNDLE_FILE_NAME),
        }
    }

    /// The fallback file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the fallback copy.
    pub fn save(&self, bundle_json: &[u8]) -> std::io::Result<()> {
        write_atomically(&self.path, bundle_json)
    }

    /// Reads the fallback copy.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FallbackStore::new(&dir.path().join("state"));
        store.save(b"one").unwrap();
        store.save(b"two").unwrap();
        assert_eq!(store.read().unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [BUNDLE_FILE_NAME]);
    }
}
