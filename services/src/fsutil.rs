//! Durable small-file writes for the stores the server keeps in its data
//! directory (keys, settings, experiment registries).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that a crash leaves either the old or
/// the new content, never a mix: write a temp file beside it, fsync it,
/// rename it over `path`, fsync the directory. Creates the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Deletes the temp files [`write_atomic`] left in `dir` when the process
/// died between writing one and renaming it (they may hold what the file
/// held, personal data included). Call it before any writer of `dir`
/// starts; the data directory is one process's at a time.
pub fn remove_leftover_temps(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub").join("x.json");
        super::write_atomic(&path, b"one").unwrap_or_else(|e| panic!("{e}"));
        super::write_atomic(&path, b"two").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn leftover_temp_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let keep = dir.path().join("job.json");
        super::write_atomic(&keep, b"kept").unwrap_or_else(|e| panic!("{e}"));
        let left = dir.path().join(".job.json.tmp-4242-7");
        std::fs::write(&left, b"what a crash left").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join(".hidden"), b"not ours").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(super::remove_leftover_temps(dir.path()).ok(), Some(1));
        assert!(!left.exists());
        assert_eq!(std::fs::read(&keep).ok().as_deref(), Some(&b"kept"[..]));
        assert!(dir.path().join(".hidden").exists());
    }
}
