//! Reading what a peer sends, within bounds. A store, a pre-signed URL's host or a control
//! plane can answer anything: an error body that never ends, or trickles one byte every
//! 20 seconds, must not hold an upload (or a tick) for longer than a bounded time, nor take
//! unbounded memory. Error bodies are only read for a short code or message, so reading
//! stops at [`ERROR_BODY_BYTES`] or after [`ERROR_BODY_WAIT`], whichever comes first, and
//! the rest is never read (the connection is dropped, not reused).

use std::time::Duration;

/// Bytes of an error answer read: an S3, Azure or GCS error document, or the control
/// plane's error JSON, is well under 4 KiB.
pub const ERROR_BODY_BYTES: usize = 16 << 10;

/// Longest time spent reading an error answer's body: its status already says what
/// happened; the body only adds a code.
pub const ERROR_BODY_WAIT: Duration = Duration::from_secs(10);

/// Up to `cap` bytes of `response`'s body, read for at most `wait`: whatever arrived by
/// then. A transport error ends it too; what arrived is kept.
pub async fn body_prefix(mut response: reqwest::Response, cap: usize, wait: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < cap {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let take = (cap - out.len()).min(chunk.len());
                out.extend_from_slice(&chunk[..take]);
            }
            _ => break,
        }
    }
    out
}

/// An error answer's body as text, within [`ERROR_BODY_BYTES`] and [`ERROR_BODY_WAIT`].
pub async fn error_text(response: reqwest::Response) -> String {
    let bytes = body_prefix(response, ERROR_BODY_BYTES, ERROR_BODY_WAIT).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Why a capped read failed.
#[derive(Debug)]
pub enum CappedError {
    /// The body is longer than the cap.
    TooLarge(usize),
    /// The transfer failed (timed out, dropped).
    Transport(reqwest::Error),
}

/// The whole body of `response` if it is at most `cap` bytes; reading stops at the first
/// byte over it. Time is bounded by the request's own timeout.
pub async fn body_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<bytes::Bytes, CappedError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(CappedError::TooLarge(cap));
    }
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedError::Transport)? {
        if out.len() + chunk.len() > cap {
            return Err(CappedError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}
