//! Password hashing with argon2id, always off the async runtime.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified against when the user does not exist, so both paths cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt =
        SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap_or_else(|_| SaltString::generate(&mut rand::rngs::OsRng));
    hasher().hash_password(b"not-a-real-password-0", &salt).map(|h| h.to_string()).unwrap_or_default()
});

pub async fn hash(password: String, salt_bytes: [u8; 16]) -> crate::BoxResult<String> {
    tokio::task::spawn_blocking(move || -> crate::BoxResult<String> {
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        Ok(hasher().hash_password(password.as_bytes(), &salt).map_err(|e| e.to_string())?.to_string())
    })
    .await?
}

/// Verify `password` against `stored`; with `None` (unknown user) verify against a dummy hash and return false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok());
        known && ok
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hash_and_verify() {
        let h = super::hash("Correct-horse-1".into(), [7; 16]).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("Correct-horse-1".into(), Some(h.clone())).await);
        assert!(!super::verify("wrong".into(), Some(h)).await);
        assert!(!super::verify("not-a-real-password-0".into(), None).await);
    }
}
