use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

pub async fn jwks(State(app): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=300")], Json(app.signer.jwks().await))
}

/// Discovery. Only what exists is advertised: the authorization endpoint and userinfo arrive with the login pages.
pub async fn openid_configuration(State(app): State<AppState>) -> impl IntoResponse {
    let base = &app.config.public_url;
    Json(json!({
        "issuer": base,
        "token_endpoint": format!("{base}oauth/token"),
        "jwks_uri": format!("{base}.well-known/jwks.json"),
        "grant_types_supported": [
            "client_credentials",
            "password",
            "http://auth0.com/oauth/grant-type/password-realm",
            "http://auth0.com/oauth/grant-type/mfa-oob",
            "http://auth0.com/oauth/grant-type/mfa-recovery-code"
        ],
        "mfa_challenge_endpoint": format!("{base}mfa/challenge"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "nickname", "picture", "sub", "updated_at"],
    }))
}
