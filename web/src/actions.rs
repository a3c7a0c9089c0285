//! The actions: start a run, start a bisection, cancel a bisection or a
//! job's night (re-running a night is in the crate root). Each is a POST of
//! JSON that passes [`security::authorize`] (same origin, the token) before
//! its body is even read, so a refused request starts nothing; a field the
//! dashboard rejects comes back as 400 with the message naming it. The
//! actions page (`/actions`) holds their forms.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::model::*;
use crate::{Api, App, Page, WebError, api, call, pages, parse_id, security};

/// Longest action body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// An action's answer: `{ok, message, url}` with its status code.
fn answer(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        axum::Json(ActionResult {
            ok: false,
            message: message.into(),
            url: None,
        }),
    )
        .into_response()
}

fn failed(e: WebError) -> Response {
    let code = match &e {
        WebError::NotFound(_) => StatusCode::NOT_FOUND,
        WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
        WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    answer(code, e.to_string())
}

/// The token and same-origin checks every action passes first: the
/// refusal, if any.
fn refused(app: &App, headers: &HeaderMap) -> Option<Response> {
    security::authorize(headers, app.token.as_deref())
        .err()
        .map(|(code, msg)| answer(code, msg))
}

/// The JSON body of an action, bounded; a malformed one is a 400 naming the
/// problem (an unknown field, a wrong type).
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WebError> {
    if bytes.len() > MAX_BODY {
        return Err(WebError::BadRequest(format!(
            "the request is larger than {MAX_BODY} bytes"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| WebError::BadRequest(format!("the request: {e}")))
}

/// Runs an action that passed [`refused`]: 202 and its answer, or the error.
async fn run(
    app: App,
    f: impl FnOnce(&dyn crate::Dashboard) -> Result<ActionResult, WebError> + Send + 'static,
) -> Response {
    match call(&app, f).await {
        Ok(r) => (StatusCode::ACCEPTED, axum::Json(r)).into_response(),
        Err(e) => failed(e),
    }
}

/// `POST /api/v1/runs` ([`StartRun`]).
pub(crate) async fn start_run(State(app): State<App>, headers: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let req: StartRun = match body(&b) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    run(app, move |d| d.start_run(&req)).await
}

/// `POST /api/v1/bisections` ([`StartBisection`]).
pub(crate) async fn start_bisection(
    State(app): State<App>,
    headers: HeaderMap,
    b: Bytes,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let req: StartBisection = match body(&b) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    run(app, move |d| d.start_bisection(&req)).await
}

/// `POST /api/v1/bisections/ID/cancel`.
pub(crate) async fn cancel_bisection(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return failed(e),
    };
    run(app, move |d| d.cancel_bisection(id)).await
}

/// `POST /api/v1/jobs/NAME/cancel`.
pub(crate) async fn cancel_night(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&app, &headers) {
        return r;
    }
    run(app, move |d| d.cancel_night(&name)).await
}

async fn actions(app: &App) -> Result<ActionsPage, WebError> {
    let enabled = app.token.is_some();
    let mut p = call(app, |d| d.actions()).await?;
    p.enabled = enabled;
    Ok(p)
}

/// `GET /actions`: the forms.
pub(crate) async fn page(State(app): State<App>) -> Page {
    Ok(pages::actions(&actions(&app).await?))
}

/// `GET /api/v1/actions`.
pub(crate) async fn page_json(State(app): State<App>) -> Api<ActionsPage> {
    api(actions(&app).await)
}
