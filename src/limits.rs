//! The sizes SPEC.md fixes for every connection (SPEC.md#parts, SPEC.md#serving-loop): what
//! one read of the stream asks for, when the write buffer goes out, and how many body bytes
//! wait for the response head. Public, so that models and checkers take them from here
//! instead of copying them; nothing else lives here.

/// Bytes one read of the stream asks for, every time; also the read buffer's first capacity.
pub const READ_SIZE: usize = 4096;

/// The connection's write buffer: its wire bytes are written to the stream once it holds this
/// many; also the capacity of the buffer a hijack hands over.
pub const WRITE_BUFFER: usize = 4096;

/// Body bytes held back before the response head is committed, so that a short response gets
/// a Content-Length (Go's `bufferBeforeChunkingSize`).
pub const BODY_HOLD: usize = 2048;
