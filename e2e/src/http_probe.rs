//! A minimal HTTP/1.0 GET, enough to read `/metrics` and `/readyz` without another dependency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Returns `(status code, body)` of `GET path` on `addr` (host:port).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP response from {addr}{path}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in response from {addr}{path}"))?;
    Ok((status, body.to_string()))
}
