//! The checks an action passes: a same-origin request carrying the token.

use axum::http::{HeaderMap, StatusCode, header};

/// Refuses a cross-site request (403), any action when no token is
/// configured (403), and a request without the right token (401). The token
/// comes as `Authorization: Bearer TOKEN` or `X-Csdci-Token: TOKEN`.
pub(crate) fn authorize(
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), (StatusCode, &'static str)> {
    if !same_origin(headers) {
        return Err((StatusCode::FORBIDDEN, "cross-site request refused"));
    }
    let Some(token) = token else {
        return Err((
            StatusCode::FORBIDDEN,
            "actions are off: start csdci serve with --token-file FILE",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-csdci-token").and_then(|v| v.to_str().ok()));
    match given {
        None => Err((StatusCode::UNAUTHORIZED, "this action needs the token")),
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err((StatusCode::UNAUTHORIZED, "wrong token")),
    }
}

/// False for a request a browser marks as coming from another site: a
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` whose
/// host is not the request's `Host`.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        match site.to_str() {
            Ok("same-origin") | Ok("none") => {}
            _ => return false,
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let stripped = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        return !host.is_empty() && stripped == Some(host);
    }
    true
}

/// Compares without an early exit: the time taken does not tell how much of
/// a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}
