//! The one tapping and splitting wrapper of the pipe's server end: it counts the bytes the
//! server's foreground reads take (so a test knows when a background read caught its byte:
//! whatever left the pipe otherwise), and can cut every foreground read at given points of the
//! stream, or to one byte, so that a property controls how the server sees the bytes arrive.
//! Everything else goes to the pipe unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hijack::pipe::PipeEnd;
use hijack::transport::{BackgroundRead, Transport};

/// How foreground reads are cut.
#[derive(Clone, Debug, Default)]
pub enum Cuts {
    /// Not at all: a read returns what the pipe has, up to the buffer.
    #[default]
    None,
    /// One byte per read.
    OneByte,
    /// Never across one of `points` (stream offsets, ascending) of a stream of `total` bytes.
    At {
        /// The offsets.
        points: Vec<usize>,
        /// The stream's length.
        total: usize,
    },
}

/// The pipe's server end, tapped (see the module).
pub struct TappedPipe {
    inner: PipeEnd,
    cuts: Cuts,
    foreground: Arc<AtomicUsize>,
}

impl TappedPipe {
    /// Wraps `inner`, cutting its foreground reads as `cuts` says.
    pub fn new(inner: PipeEnd, cuts: Cuts) -> TappedPipe {
        TappedPipe {
            inner,
            cuts,
            foreground: Arc::default(),
        }
    }

    /// The count of bytes foreground reads took, shared with the wrapper.
    pub fn foreground(&self) -> Arc<AtomicUsize> {
        self.foreground.clone()
    }

    /// How many bytes the next foreground read may take.
    fn limit(&self) -> usize {
        match &self.cuts {
            Cuts::None => usize::MAX,
            Cuts::OneByte => 1,
            Cuts::At { points, total } => {
                let at = total - self.inner.unread_len();
                let next = points.iter().copied().find(|&p| p > at).unwrap_or(*total);
                (next - at).max(1)
            }
        }
    }
}

impl Transport for TappedPipe {
    type Stream = PipeEnd;

    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.limit());
        let n = Transport::read(&self.inner, &mut buf[..n])?;
        self.foreground.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        Transport::write(&self.inner, buf)
    }
    fn set_read_deadline(&self, deadline: Option<Instant>) -> std::io::Result<()> {
        self.inner.set_read_deadline(deadline)
    }
    fn set_write_deadline(&self, deadline: Option<Instant>) -> std::io::Result<()> {
        self.inner.set_write_deadline(deadline)
    }
    fn start_background_read(&self, done: BackgroundRead) {
        self.inner.start_background_read(done)
    }
    fn interrupt_background_read(&self) {
        self.inner.interrupt_background_read()
    }
    fn close(&self) {
        self.inner.close()
    }
    fn shutdown(&self) {
        self.inner.shutdown()
    }
    fn into_stream(self) -> std::io::Result<PipeEnd> {
        Ok(self.inner)
    }
}
