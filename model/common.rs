//! Shared scaffolding of the loom models: one connection on the in-memory pipe, served by the
//! real serving loop on the model's main thread while a client thread acts concurrently.
#![allow(dead_code)]

use std::io::Read;

use hijack::pipe::{PipeEnd, pipe};
use hijack::{ConnProbe, Handler, Handover, ServerConfig};
use loom::sync::{Arc, Mutex};

/// A slot the handler fills and the model reads after the connection is served.
pub type Slot<T> = Arc<Mutex<Option<T>>>;

pub fn slot<T>() -> Slot<T> {
    Arc::new(Mutex::new(None))
}

pub fn put<T>(slot: &Slot<T>, value: T) {
    *slot.lock().unwrap() = Some(value);
}

pub fn take<T>(slot: &Slot<T>) -> T {
    slot.lock()
        .unwrap()
        .take()
        .expect("the handler did not record its result")
}

/// Serves one connection: `head` is sent before serving starts, `client` runs on its own
/// thread with the client end while the server runs. Returns the client end.
pub fn serve<H: Handler<PipeEnd>>(
    head: &[u8],
    handler: H,
    client: impl FnOnce(&PipeEnd) + Send + 'static,
) -> PipeEnd {
    let (client_end, server_end) = pipe();
    client_end.write_all(head).unwrap();
    // A write deadline already on the stream (as a server's write timeout would set): the
    // hijack must clear it.
    let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    hijack::Transport::set_write_deadline(&server_end, Some(later)).unwrap();

    let client_thread = loom::thread::spawn(move || {
        client(&client_end);
        client_end
    });
    hijack::serve_connection(server_end, &handler, &ServerConfig::default(), 1);
    client_thread.join().unwrap()
}

/// Reads the handed-over bytes and then the stream to its end.
pub fn read_all(parts: &mut Handover<PipeEnd>) -> Vec<u8> {
    let mut all = Vec::new();
    parts.read_to_end(&mut all).unwrap();
    all
}

/// What a hijacking handler leaves for the model to check.
pub struct Hijacked {
    pub probe: ConnProbe,
    pub parts: Handover<PipeEnd>,
}
