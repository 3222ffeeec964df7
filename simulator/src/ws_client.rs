//! The WebSocket client pieces `simulator load` and `simulator live` share: the loopback-only
//! URL check, connecting with a bearer token (once, or with bounded retries and backoff), and
//! reading a frame's `type` and error `code`.

use anyhow::{bail, Context as _};
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};

/// A client socket to the server.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The close code the server uses when a newer connection with the same token replaces this
/// one (docs/protocol.md): somebody else holds this phone now.
pub const CLOSE_REPLACED: u16 = 4000;

/// Refuses anything but a `ws://` URL whose host is a loopback address or `localhost`.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let uri: Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
    if uri.scheme_str() != Some("ws") {
        bail!("{url}: only ws:// URLs are supported");
    }
    let host = uri.host().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{url}: refusing a non-loopback host `{host}` (the simulator targets this machine only)");
    }
    Ok(())
}

/// Opens one WebSocket with `Authorization: Bearer <token>`, with small buffers (thousands of
/// phones live in one process).
pub async fn connect(url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut req = url.into_client_request().context("building the request")?;
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header value")?,
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

/// How hard to try before giving up on a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Attempts in all (at least one).
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `n` (0-based), with `jitter` in 0..1 adding up to half
    /// again (so phones dropped together do not all come back on the same tick).
    pub fn backoff(&self, n: u32, jitter: f64) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << n.min(16))
            .min(self.max_backoff);
        base.mul_f64(1.0 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// Connects with bounded retries. `None` when every attempt failed or `stop` turned true;
/// `on_failure` is told of each failed attempt (for counting).
pub async fn connect_with_retry(
    url: &str,
    token: &str,
    retry: Retry,
    jitter: &mut (dyn FnMut() -> f64 + Send),
    stop: &mut tokio::sync::watch::Receiver<bool>,
    on_failure: &mut (dyn FnMut(&anyhow::Error) + Send),
) -> Option<Socket> {
    for n in 0..retry.attempts.max(1) {
        if *stop.borrow() {
            return None;
        }
        match connect(url, token).await {
            Ok(ws) => return Some(ws),
            Err(e) => on_failure(&e),
        }
        if n + 1 < retry.attempts {
            tokio::select! {
                _ = tokio::time::sleep(retry.backoff(n, jitter())) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }
    None
}

/// A frame's `type` ("" if none).
pub fn frame_type(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// An `error` frame's `code` ("unknown" if none).
pub fn error_code(v: &Value) -> &str {
    v.get("code").and_then(Value::as_str).unwrap_or("unknown")
}

/// Refusals a phone meets in the normal course of things: its reply crossed an expiry or a
/// withdrawal, or the incident closed under it. Counted as races, not errors.
pub fn is_race(code: &str) -> bool {
    matches!(
        code,
        "offer_closed" | "invalid_transition" | "not_assigned" | "incident_closed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(check_loopback("ws://127.0.0.1:8080/v1/ws").is_ok());
        assert!(check_loopback("ws://localhost:1/v1/ws").is_ok());
        assert!(check_loopback("ws://[::1]:9/v1/ws").is_ok());
        assert!(check_loopback("ws://127.8.9.10:9/").is_ok());
        let err = check_loopback("ws://10.0.0.1:8080/v1/ws")
            .unwrap_err()
            .to_string();
        assert!(err.contains("non-loopback"), "{err}");
        assert!(check_loopback("ws://example.com/v1/ws").is_err());
        assert!(check_loopback("wss://127.0.0.1/v1/ws").is_err());
        assert!(check_loopback("not a url").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let r = Retry::default();
        assert_eq!(r.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(r.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(r.backoff(3, 0.0), Duration::from_secs(4));
        assert_eq!(r.backoff(9, 0.0), Duration::from_secs(8));
        assert_eq!(r.backoff(40, 1.0), Duration::from_secs(12));
    }

    #[tokio::test]
    async fn retries_are_bounded_and_counted() {
        // A port nobody listens on: bind, take the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}/v1/ws");
        let (_tx, mut rx) = tokio::sync::watch::channel(false);
        let mut failures = 0;
        let retry = Retry {
            attempts: 3,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        };
        let ws = connect_with_retry(&url, "t", retry, &mut || 0.5, &mut rx, &mut |_| {
            failures += 1
        })
        .await;
        assert!(ws.is_none());
        assert_eq!(failures, 3);
    }
}
