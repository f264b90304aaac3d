//! The lake's object store, durable where the backend is not.
//!
//! `object_store`'s local filesystem writes through the page cache and
//! never fsyncs: a Delta commit could publish data files a power cut then
//! takes away, and a checkpoint could be "written" before the log history
//! it replaces is deleted. [`DurableStore`] wraps the store every lake
//! table is opened with: on a local lake, every put, completed multipart
//! upload, copy and rename is fsynced (file and directory) before it
//! returns, so whatever a later step publishes or deletes stands on bytes
//! that are on disk. Stores that acknowledge only durable writes (S3 and
//! its kin) pass through unchanged.
//!
//! It is also where [`Faults`] reach the object store in tests.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

use crate::faults::{Fault, Faults};

/// An object store whose acknowledged writes are durable.
#[derive(Debug)]
pub struct DurableStore {
    inner: Arc<dyn ObjectStore>,
    /// Set for the local filesystem, whose writes must be fsynced here.
    local: Option<Arc<LocalFileSystem>>,
    faults: Faults,
}

impl DurableStore {
    /// The local filesystem rooted at `/`, fsynced.
    pub fn local(faults: Faults) -> Self {
        let fs = Arc::new(LocalFileSystem::new());
        Self {
            inner: fs.clone(),
            local: Some(fs),
            faults,
        }
    }

    /// A store that is durable by itself (writes are acknowledged once stored).
    pub fn remote(inner: Arc<dyn ObjectStore>, faults: Faults) -> Self {
        Self {
            inner,
            local: None,
            faults,
        }
    }

    fn injected(fault: Fault, location: &Path) -> object_store::Error {
        object_store::Error::Generic {
            store: "cxlake-durable",
            source: Box::new(std::io::Error::new(
                Faults::error(fault).kind(),
                format!("{} ({location})", Faults::error(fault)),
            )),
        }
    }

    /// Fails with the first of `faults` that is armed.
    fn fail_if(&self, faults: &[Fault], location: &Path) -> object_store::Result<()> {
        match faults.iter().find(|f| self.faults.take(**f)) {
            Some(f) => Err(Self::injected(*f, location)),
            None => Ok(()),
        }
    }

    /// After a write that may publish `location`: durable before it
    /// returns (and, injected, "landed but reported as failed").
    async fn landed(&self, location: &Path) -> object_store::Result<()> {
        self.sync(location).await?;
        if is_commit(location) {
            self.fail_if(&[Fault::StoreCommitLandsThenFails], location)?;
        }
        Ok(())
    }

    /// Makes `location` and its directory entry durable.
    async fn sync(&self, location: &Path) -> object_store::Result<()> {
        let Some(fs) = &self.local else { return Ok(()) };
        let path = fs.path_to_filesystem(location)?;
        sync_file_and_parents(path).await?;
        self.faults.note(|| format!("synced {location}"));
        Ok(())
    }
}

/// fsyncs a file, then each directory from its parent up while that
/// directory may be new (a first write into a partition creates it).
async fn sync_file_and_parents(path: PathBuf) -> object_store::Result<()> {
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::File::open(&path)?.sync_all()?;
        // Directories up to the first one that holds the table's log or
        // partitions; a handful at most, and each sync of an unchanged
        // directory is cheap.
        let mut dir = path.parent();
        for _ in 0..4 {
            let Some(d) = dir else { break };
            std::fs::File::open(d)?.sync_all()?;
            dir = d.parent();
        }
        Ok(())
    })
    .await
    .map_err(|e| object_store::Error::Generic {
        store: "cxlake-durable",
        source: Box::new(e),
    })?
    .map_err(|e| object_store::Error::Generic {
        store: "cxlake-durable",
        source: Box::new(e),
    })
}

/// A Delta log entry (commit): the write that publishes a version.
fn is_commit(location: &Path) -> bool {
    let s = location.as_ref();
    s.contains("_delta_log/") && s.ends_with(".json") && !s.contains("_last_checkpoint")
}

impl fmt::Display for DurableStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Durable({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for DurableStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.fail_if(&[Fault::DiskFull, Fault::StorePut], location)?;
        let put = self.inner.put_opts(location, payload, opts).await?;
        self.landed(location).await?;
        Ok(put)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.fail_if(&[Fault::DiskFull, Fault::StorePut], location)?;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DurableUpload {
            upload,
            location: location.clone(),
            local: self.local.clone(),
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let faults = self.faults.clone();
        Box::pin(self.inner.delete_stream(locations).inspect(move |r| {
            if let Ok(p) = r {
                faults.note(|| format!("deleted {p}"));
            }
        }))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.fail_if(&[Fault::StoreRename], to)?;
        self.inner.copy_opts(from, to, options).await?;
        self.landed(to).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.fail_if(&[Fault::StoreRename], to)?;
        self.inner.rename_opts(from, to, options).await?;
        self.landed(to).await
    }
}

/// A multipart upload whose completion is durable.
#[derive(Debug)]
struct DurableUpload {
    upload: Box<dyn MultipartUpload>,
    location: Path,
    local: Option<Arc<LocalFileSystem>>,
    faults: Faults,
}

#[async_trait]
impl MultipartUpload for DurableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let done = self.upload.complete().await?;
        if let Some(fs) = &self.local {
            sync_file_and_parents(fs.path_to_filesystem(&self.location)?).await?;
            self.faults.note(|| format!("synced {}", self.location));
        }
        Ok(done)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.upload.abort().await
    }
}
