//! Everything the exporter logs in one test binary, kept in memory so a test can check it (for
//! onion addresses, or for a message it expects).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// The captured log; clones share one buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Installs the process's tracing subscriber (debug for the exporter, no colours), writing
    /// here. Once per test binary.
    pub fn install() -> LogBuffer {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
