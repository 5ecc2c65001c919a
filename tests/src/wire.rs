//! HTTP/1.1 written byte by byte, for requests no well-behaved client would send: bodies
//! without a length, lying `Content-Length`s, invalid UTF-8, broken framing. Every request asks
//! for `Connection: close`, so a response ends when the server closes the connection.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Chunks of this size are written one at a time, so a server may answer (and close) before
/// the whole body is sent, as a real client would see it.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// A response larger than this is a bug in itself; stop reading there.
const RESPONSE_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// How the body travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` with the body's true length.
    Length,
    /// `Transfer-Encoding: chunked`, no `Content-Length`.
    Chunked,
    /// `Content-Length: n` whatever the body's real length (a lie, or a promise never kept).
    DeclaredLength(u64),
    /// Exactly these bytes after the headers' blank line, with no framing header at all.
    Unframed,
}

/// One request, as bytes on the wire.
#[derive(Debug, Clone)]
pub struct WireRequest {
    pub method: &'static str,
    /// Path and query, sent as is (may hold anything the request line can).
    pub target: String,
    /// Sent in order, values as raw bytes (may hold obs-text).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub framing: Framing,
}

impl WireRequest {
    pub fn new(method: &'static str, target: impl Into<String>) -> WireRequest {
        WireRequest { method, target: target.into(), headers: Vec::new(), body: Vec::new(), framing: Framing::Length }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> WireRequest {
        self.headers.push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Replaces every header called `name` (any case) with this one.
    pub fn replace_header(mut self, name: &str, value: impl AsRef<[u8]>) -> WireRequest {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> WireRequest {
        self.body = body.into();
        self
    }

    pub fn framing(mut self, framing: Framing) -> WireRequest {
        self.framing = framing;
        self
    }

    /// The request line and headers, then the body in its framing.
    fn head(&self, host: &str) -> Vec<u8> {
        let mut head =
            format!("{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        match &self.framing {
            Framing::Length => head.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes()),
            Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::DeclaredLength(length) => {
                head.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
            }
            Framing::Unframed => {}
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    fn framed_body(&self) -> Vec<u8> {
        if self.framing != Framing::Chunked {
            return self.body.clone();
        }
        let mut framed = Vec::with_capacity(self.body.len() + self.body.len() / WRITE_CHUNK_BYTES * 16 + 16);
        for chunk in self.body.chunks(WRITE_CHUNK_BYTES) {
            framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            framed.extend_from_slice(chunk);
            framed.extend_from_slice(b"\r\n");
        }
        framed.extend_from_slice(b"0\r\n\r\n");
        framed
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct WireResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl WireResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Nothing complete within the patience given: the server is stuck on it.
    NoAnswer(Duration),
    /// The connection failed or the bytes back were not an HTTP response.
    Broken(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::NoAnswer(patience) => write!(f, "no complete answer within {} ms", patience.as_millis()),
            WireError::Broken(why) => f.write_str(why),
        }
    }
}

/// Aborts the writing task when the exchange ends, however it ends (a timeout drops it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `request` to `address` (`http://host:port`) and reads the response, giving up after
/// `patience`. The body is written while the response is read: a server may refuse early.
pub async fn send(address: &str, request: &WireRequest, patience: Duration) -> Result<WireResponse, WireError> {
    let host = address.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let started = Instant::now();
    let exchange = async {
        let stream = TcpStream::connect(&host).await.map_err(|e| format!("connect {host}: {e}"))?;
        let (mut reader, mut writer) = stream.into_split();
        let head = request.head(&host);
        let body = request.framed_body();
        let _writing = AbortOnDrop(tokio::spawn(async move {
            // A server that answers early may close while we write; its answer is what counts.
            if writer.write_all(&head).await.is_err() {
                return;
            }
            for chunk in body.chunks(WRITE_CHUNK_BYTES) {
                if writer.write_all(chunk).await.is_err() {
                    return;
                }
            }
            let _ = writer.flush().await;
            // Keep the write side open: shutting it could make a server drop the exchange.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(writer);
        }));
        let mut received = Vec::new();
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            if let Some(response) = parse_response(&received)? {
                break Ok(response);
            }
            match reader.read(&mut buffer).await {
                Ok(0) => {
                    break parse_response(&received)?
                        .or_else(|| until_closed(&received))
                        .ok_or_else(|| incomplete(&received));
                }
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error) => {
                    break parse_response(&received)?.ok_or_else(|| format!("{error} after {}", incomplete(&received)));
                }
            }
            if received.len() > RESPONSE_LIMIT_BYTES {
                break Err(format!("a response over {RESPONSE_LIMIT_BYTES} bytes"));
            }
        }
    };
    let (status, headers, body) = tokio::time::timeout(patience, exchange)
        .await
        .map_err(|_| WireError::NoAnswer(patience))?
        .map_err(WireError::Broken)?;
    Ok(WireResponse { status, headers, body, elapsed: started.elapsed() })
}

fn incomplete(received: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&received[..received.len().min(200)]).into_owned();
    format!("the connection ended before a complete response ({} bytes: {shown:?})", received.len())
}

type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

/// A complete response in `received`, `None` while more bytes are needed.
fn parse_response(received: &[u8]) -> Result<Option<Parsed>, String> {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(&received[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &received[end + 4..];
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Ok(dechunk(rest).map(|body| (status, headers.clone(), body)));
    }
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return Ok((rest.len() >= length).then(|| (status, headers.clone(), rest[..length].to_vec())));
    }
    // Neither: the body runs to the end of the connection, which the caller detects.
    Ok(None)
}

/// A response whose body ran to the end of the connection (no length, not chunked).
fn until_closed(received: &[u8]) -> Option<Parsed> {
    let end = received.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&received[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse::<u16>().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some((status, headers, received[end + 4..].to_vec()))
}

/// The body of a complete chunked message, `None` while the last chunk has not arrived.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
