//! Guest stdout/stderr, captured line by line into one buffer every instance shares.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
    /// A message from the host itself, e.g. an outbound call it denied (Spin logs those).
    Host,
}

/// One line a guest wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The incoming request (see [`crate::RequestStats::request_id`]) whose instance wrote it.
    pub request_id: u64,
    /// stdout or stderr.
    pub stream: Stream,
    /// The text, without its line ending (invalid UTF-8 replaced).
    pub text: String,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Mutex<Vec<LogLine>>,
    echo: bool,
}

/// The shared log buffer. Cloning gives another handle on the same buffer.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer {
    inner: Arc<Inner>,
}

impl LogBuffer {
    /// A buffer that also prints each line to the test's stderr when `echo` is set.
    pub fn new(echo: bool) -> Self {
        Self { inner: Arc::new(Inner { lines: Mutex::default(), echo }) }
    }

    pub(crate) fn push(&self, line: LogLine) {
        if self.inner.echo {
            eprintln!("[guest #{} {:?}] {}", line.request_id, line.stream, line.text);
        }
        self.inner.lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    /// Every line so far, in the order written.
    pub fn entries(&self) -> Vec<LogLine> {
        self.inner.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The text of every line the guests wrote (stdout and stderr, not host messages).
    pub fn lines(&self) -> Vec<String> {
        self.entries().into_iter().filter(|l| l.stream != Stream::Host).map(|l| l.text).collect()
    }

    /// The text of the lines one request's instance wrote.
    pub fn lines_for(&self, request_id: u64) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|l| l.request_id == request_id && l.stream != Stream::Host)
            .map(|l| l.text)
            .collect()
    }

    /// Removes and returns every line so far, in the order written. A long-running server
    /// (`apc-serve`) prints what it drains, so the buffer does not grow without bound.
    pub fn drain(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.inner.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Forgets every line so far.
    pub fn clear(&self) {
        self.inner.lines.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A WASI stdout/stderr for one instance.
    pub(crate) fn stream(&self, request_id: u64, stream: Stream) -> GuestOutput {
        GuestOutput { buffer: self.clone(), request_id, stream }
    }
}

/// The `StdoutStream` given to an instance.
pub(crate) struct GuestOutput {
    buffer: LogBuffer,
    request_id: u64,
    stream: Stream,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            buffer: self.buffer.clone(),
            request_id: self.request_id,
            stream: self.stream,
            partial: Vec::new(),
        })
    }
}

/// Splits what the guest writes into lines; a last line without newline is kept on drop.
struct LineWriter {
    buffer: LogBuffer,
    request_id: u64,
    stream: Stream,
    partial: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        self.buffer.push(LogLine {
            request_id: self.request_id,
            stream: self.stream,
            text: String::from_utf8_lossy(bytes).into_owned(),
        });
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let partial = std::mem::take(&mut self.partial);
            self.emit(&partial);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.partial.extend_from_slice(buf);
        while let Some(nl) = this.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = this.partial.drain(..=nl).collect();
            this.emit(&line[..line.len() - 1]);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_partial();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(request_id: u64, text: &str) -> LogLine {
        LogLine { request_id, stream: Stream::Stdout, text: text.to_string() }
    }

    #[test]
    fn drain_returns_lines_in_order_once() {
        let buffer = LogBuffer::new(false);
        buffer.push(line(0, "a"));
        buffer.push(line(1, "b"));
        assert_eq!(buffer.drain(), vec![line(0, "a"), line(1, "b")]);
        assert!(buffer.drain().is_empty());
        buffer.push(line(2, "c"));
        assert_eq!(buffer.entries(), vec![line(2, "c")]);
    }
}
