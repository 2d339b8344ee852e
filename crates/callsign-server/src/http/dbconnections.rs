//! `POST /dbconnections/signup` (Auth0's Authentication API) over `callsign_core::connections::signup`.
//!
//! JSON or form body: `client_id`, `connection`, `email`, `password`, and optionally `username`, `given_name`,
//! `family_name`, `name`, `nickname`, `picture`, `user_metadata` (an object of strings; JSON only). Answers 200 with
//! `{_id, email, email_verified, …}`; errors take Auth0's sign-up error shape `{name, code, description,
//! statusCode}` (also what auth0.js and the SDKs read): 400 for a bad field (`invalid_parameter`), an unknown client
//! (`unauthorized_client`) or connection (`connection_not_found`), sign-up turned off (`operation_not_allowed`,
//! "Public signup is disabled"), a taken email (`user_exists`) and a weak password (`invalid_password`, name
//! `PasswordStrengthError`, the policy's rules in `description`); 429 `too_many_attempts` for an IP that suspicious IP
//! throttling blocked; 503 when the password hasher is saturated or the limiter is unavailable.
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callsign_core::connections::{self, Signup, SignupError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::extract::{BodyError, RequestMeta, parse_body};
use crate::app::AppState;

/// The policy in words (Auth0's `policy` text for `fair`).
const POLICY_TEXT: &str = "* At least 8 characters in length\n* Contain at least 3 of the following 4 types of characters:\n * lower case letters (a-z)\n * upper case letters (A-Z)\n * numbers (i.e. 0-9)\n * special characters (e.g. !@#$%^&*)";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SignupBody {
    client_id: Option<String>,
    connection: Option<String>,
    email: Option<String>,
    password: Option<String>,
    username: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    nickname: Option<String>,
    picture: Option<String>,
    user_metadata: Option<Map<String, Value>>,
}

/// The sign-up error body.
fn error(status: StatusCode, name: &str, code: &str, description: Value) -> Response {
    let body = json!({"name": name, "code": code, "description": description, "statusCode": status.as_u16()});
    (status, Json(body)).into_response()
}

fn refusal(e: SignupError) -> Response {
    let code = e.code();
    let message = e.message();
    match e {
        SignupError::WeakPassword(report) => {
            let body = json!({"name": "PasswordStrengthError", "message": message, "code": code,
                "description": report, "policy": POLICY_TEXT, "statusCode": 400});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        SignupError::Blocked => error(StatusCode::TOO_MANY_REQUESTS, "TooManyAttemptsError", code, json!(message)),
        SignupError::Busy | SignupError::Unavailable(_) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError", code, json!(message));
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(callsign_core::identity::passwords::RETRY_AFTER_SECS),
            );
            r
        }
        SignupError::Internal(_) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", code, json!(message))
        }
        _ => error(StatusCode::BAD_REQUEST, "BadRequestError", code, json!(message)),
    }
}

pub async fn signup(State(app): State<AppState>, meta: RequestMeta, req: Request) -> Response {
    let body: SignupBody = match parse_body(req, &()).await {
        Ok(b) => b,
        Err(BodyError::UnsupportedType) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BadRequestError",
                "invalid_parameter",
                json!(super::extract::ACCEPTED_TYPES),
            );
        }
        Err(BodyError::Invalid { detail, .. }) => {
            return error(StatusCode::BAD_REQUEST, "BadRequestError", "invalid_parameter", json!(detail));
        }
    };
    let req = Signup {
        client_id: body.client_id.unwrap_or_default(),
        connection: body.connection.unwrap_or_default(),
        email: body.email.unwrap_or_default(),
        password: body.password.unwrap_or_default(),
        username: body.username,
        given_name: body.given_name,
        family_name: body.family_name,
        name: body.name,
        nickname: body.nickname,
        picture: body.picture,
        user_metadata: body.user_metadata,
    };
    match connections::signup(&app.core, &meta, req).await {
        Ok(user) => Json(connections::signup_view(&user)).into_response(),
        Err(e) => refusal(e),
    }
}
