use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

pub async fn jwks(State(app): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=300")], Json(app.signer.jwks().await))
}

/// Discovery: what Callsign implements, nothing more.
pub async fn openid_configuration(State(app): State<AppState>) -> impl IntoResponse {
    let base = &app.config.public_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}authorize"),
        "token_endpoint": format!("{base}oauth/token"),
        "userinfo_endpoint": format!("{base}userinfo"),
        "revocation_endpoint": format!("{base}oauth/revoke"),
        "jwks_uri": format!("{base}.well-known/jwks.json"),
        "end_session_endpoint": format!("{base}oidc/logout"),
        "response_types_supported": ["code", "id_token", "code id_token"],
        "response_modes_supported": ["query", "fragment", "form_post", "web_message"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
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
        "scopes_supported": ["openid", "profile", "email", "phone", "offline_access"],
        "claims_supported": ["aud", "amr", "auth_time", "c_hash", "email", "email_verified", "exp", "iat", "iss", "name", "nickname", "nonce", "phone_number", "phone_number_verified", "picture", "sub", "updated_at"],
        "ui_locales_supported": crate::login::texts::LANGS,
        "request_parameter_supported": false,
    }))
}
