//! Progress of long transfers (downloads, unpacking), for progress bars.

use std::io::{self, Read};

use crate::digest::Digest;

/// Told how work on each blob goes. Every method has a silent default.
pub trait Progress: Send + Sync {
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    fn blob_advanced(&self, _digest: &Digest, _bytes: u64) {}
    fn blob_finished(&self, _digest: &Digest) {}
}

pub struct Quiet;
impl Progress for Quiet {}

/// Reports the bytes read through it.
pub(crate) struct ProgressReader<'a, R> {
    pub inner: R,
    pub digest: &'a Digest,
    pub progress: &'a dyn Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.blob_advanced(self.digest, n as u64);
        Ok(n)
    }
}
