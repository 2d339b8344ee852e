//! CSRF tokens bound to a session: `HMAC-SHA256(key, purpose || session token)`, where the key is derived from the
//! installation's OTP key with its own label. A form posts it back in the `csrf` field; a token from another
//! session, another purpose or no token at all is refused.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use maud::{Markup, html};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::app::AppState;

type HmacSha256 = Hmac<Sha256>;

fn mac(app: &AppState, purpose: &str, session_token: &str) -> Vec<u8> {
    // Key separation: the CSRF key is HMAC(otp_key, label), never the OTP key itself.
    let key = match HmacSha256::new_from_slice(&app.otp_key) {
        Ok(mut m) => {
            m.update(b"callsign/web/csrf/v1");
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    match HmacSha256::new_from_slice(&key) {
        Ok(mut m) => {
            m.update(purpose.as_bytes());
            m.update(&[0]);
            m.update(session_token.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The token to embed in forms of this session.
pub fn token(app: &AppState, purpose: &str, session_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(app, purpose, session_token))
}

/// Whether `given` is this session's token, compared in constant time.
pub fn verify(app: &AppState, purpose: &str, session_token: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let Ok(given) = URL_SAFE_NO_PAD.decode(given) else { return false };
    let want = mac(app, purpose, session_token);
    !want.is_empty() && bool::from(want.as_slice().ct_eq(given.as_slice()))
}

/// The hidden form field.
pub fn field(app: &AppState, purpose: &str, session_token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token(app, purpose, session_token)); }
}
