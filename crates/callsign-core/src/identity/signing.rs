//! RS256 signing keys: generated on first start, stored sealed, published in the JWKS, rotated on command.
//! A retired key stays published until every token it signed has expired.
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callsign_domain::RandomSource;
use callsign_store::{SealedSecret, SigningKey};
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;

use crate::Core;

struct LoadedKey {
    kid: String,
    /// The private key, parsed and checked once when loaded (not once per signature, as `jsonwebtoken` did).
    pair: Arc<RsaKeyPair>,
    /// `base64url({"alg":"RS256","typ":"JWT","kid":…})`, the same for every token this key signs.
    header: Arc<str>,
    dec: DecodingKey,
    jwk: Value,
    retired_at: Option<callsign_domain::Timestamp>,
}

#[derive(Default)]
pub struct Signer {
    keys: RwLock<Vec<LoadedKey>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

/// Adapts the injected randomness to the `rand_core` traits the RSA key generator wants.
struct RngAdapter<'a>(&'a dyn RandomSource);

impl rsa::rand_core::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}
impl rsa::rand_core::CryptoRng for RngAdapter<'_> {}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("Invalid token.")]
    Malformed,
    #[error("Invalid signature received for JSON Web Token validation.")]
    Signature,
    #[error("Expired token received for JSON Web Token validation.")]
    Expired,
    #[error("Bad audience: {0}")]
    Audience(String),
    #[error("Bad issuer.")]
    Issuer,
}

fn secret_name(kid: &str) -> String {
    format!("signing-key/{kid}")
}

impl Signer {
    /// Longest lifetime of anything we sign: how long a retired key must stay published.
    fn max_token_lifetime(app: &Core) -> Duration {
        Duration::from_secs(app.settings.access_token_lifetime_secs.max(app.settings.id_token_lifetime_secs))
    }

    /// Load keys from the store, dropping ones retired long enough that nothing they signed is still valid.
    pub async fn reload(&self, app: &Core) -> crate::BoxResult<()> {
        let now = app.clock.now();
        let keep_for = Self::max_token_lifetime(app);
        let mut loaded = Vec::new();
        for k in app.store.list_signing_keys().await? {
            if let Some(r) = k.retired_at
                && r.plus(keep_for) < now
            {
                app.store.delete_signing_key(&k.kid).await?;
                tracing::info!(kid = %k.kid, "removed an expired signing key");
                continue;
            }
            let Some(secret) = app.store.get_secret(&k.secret_name).await? else {
                tracing::error!(kid = %k.kid, "signing key without its private part; skipped");
                continue;
            };
            let der = app.keyring.open(&secret.name, &secret.sealed)?;
            let n = k.public_jwk.get("n").and_then(Value::as_str).unwrap_or_default();
            let e = k.public_jwk.get("e").and_then(Value::as_str).unwrap_or_default();
            let pair = RsaKeyPair::from_der(&der).map_err(|e| format!("signing key {}: {e}", k.kid))?;
            let header =
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "RS256", "typ": "JWT", "kid": k.kid}))?);
            loaded.push(LoadedKey {
                kid: k.kid.clone(),
                pair: Arc::new(pair),
                header: header.into(),
                dec: DecodingKey::from_rsa_components(n, e)?,
                jwk: k.public_jwk.clone(),
                retired_at: k.retired_at,
            });
        }
        *self.keys.write().await = loaded;
        Ok(())
    }

    /// Reload when the stored keys are not the loaded ones: a key added (rotated) or retired by another node, or one
    /// removed. One small query when nothing changed; true when the keys were reloaded.
    pub async fn refresh(&self, app: &Core) -> crate::BoxResult<bool> {
        let stored = app.store.list_signing_keys().await?;
        let same = {
            let keys = self.keys.read().await;
            stored.len() == keys.len()
                && stored.iter().all(|s| keys.iter().any(|k| k.kid == s.kid && k.retired_at == s.retired_at))
        };
        if same {
            return Ok(false);
        }
        self.reload(app).await?;
        tracing::info!("signing keys changed in the store (another node rotated them); reloaded");
        Ok(true)
    }

    /// Make sure a current (unretired) key exists, generating one on first start.
    pub async fn ensure_current(&self, app: &Core) -> crate::BoxResult<()> {
        self.reload(app).await?;
        if self.keys.read().await.iter().any(|k| k.retired_at.is_none()) {
            return Ok(());
        }
        self.add_new_key(app, false).await?;
        Ok(())
    }

    /// Generate a new key and make it current; the previous ones stay published until their tokens expire.
    pub async fn rotate(&self, app: &Core) -> crate::BoxResult<String> {
        self.add_new_key(app, true).await
    }

    async fn add_new_key(&self, app: &Core, retire_others: bool) -> crate::BoxResult<String> {
        let rng = app.rng.clone();
        let (kid, der, n, e) = tokio::task::spawn_blocking(move || -> crate::BoxResult<_> {
            let key = rsa::RsaPrivateKey::new(&mut RngAdapter(rng.as_ref()), 2048)?;
            let der = key.to_pkcs1_der()?;
            let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
            let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
            Ok((callsign_domain::ids::key_id(rng.as_ref()), der.as_bytes().to_vec(), n, e))
        })
        .await??;
        let now = app.clock.now();
        let name = secret_name(&kid);
        let sealed = app.keyring.seal(app.rng.as_ref(), &name, &der)?;
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        app.store
            .add_signing_key(
                &SigningKey {
                    kid: kid.clone(),
                    public_jwk: jwk,
                    secret_name: name.clone(),
                    created_at: now,
                    retired_at: None,
                },
                &SealedSecret { name, sealed, updated_at: now },
                retire_others,
            )
            .await?;
        tracing::info!(%kid, "new signing key is current");
        self.reload(app).await?;
        Ok(kid)
    }

    /// The published keys (current and recently retired), for `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.read().await.iter().map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// Sign with the current key: `header.payload.signature`, RS256 (RSASSA-PKCS1-v1_5 with SHA-256) by AWS-LC with
    /// the key pair parsed at load. A signature is a few hundred microseconds of CPU, so it runs on the blocking pool
    /// rather than on an async worker thread.
    pub async fn sign(&self, claims: &Map<String, Value>) -> crate::BoxResult<String> {
        let (pair, header) = {
            let keys = self.keys.read().await;
            let key = keys.iter().find(|k| k.retired_at.is_none()).ok_or("no current signing key")?;
            (Arc::clone(&key.pair), Arc::clone(&key.header))
        };
        let payload = serde_json::to_vec(claims)?;
        tokio::task::spawn_blocking(move || sign_jwt(&pair, &header, &payload)).await?
    }

    /// Check signature, issuer, audience and expiry (against the injected clock). Returns the claims.
    pub async fn verify(&self, app: &Core, token: &str, audience: &str) -> Result<Map<String, Value>, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Signature);
        }
        let kid = header.kid.ok_or(VerifyError::Signature)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false; // checked below against the injected clock
        validation.validate_aud = false; // checked below for a precise message
        validation.required_spec_claims.clear();
        let decoded = {
            let keys = self.keys.read().await;
            keys.iter()
                .find(|k| k.kid == kid)
                .map(|k| jsonwebtoken::decode::<Map<String, Value>>(token, &k.dec, &validation))
        };
        let decoded = match decoded {
            Some(d) => d,
            None => {
                // Another node may have rotated: look again once.
                if self.reload(app).await.is_err() {
                    return Err(VerifyError::Signature);
                }
                let keys = self.keys.read().await;
                let k = keys.iter().find(|k| k.kid == kid).ok_or(VerifyError::Signature)?;
                jsonwebtoken::decode::<Map<String, Value>>(token, &k.dec, &validation)
            }
        };
        let claims = decoded
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::Signature,
                _ => VerifyError::Malformed,
            })?
            .claims;
        if claims.get("iss").and_then(Value::as_str) != Some(app.settings.issuer()) {
            return Err(VerifyError::Issuer);
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(VerifyError::Audience(audience.to_owned()));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or(VerifyError::Malformed)?;
        if exp <= app.clock.now().seconds() {
            return Err(VerifyError::Expired);
        }
        Ok(claims)
    }
}

/// `header.payload.signature` of a compact JWS with `pair` (RS256).
fn sign_jwt(pair: &RsaKeyPair, header: &str, payload: &[u8]) -> crate::BoxResult<String> {
    let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + pair.public_modulus_len() * 4 / 3 + 8);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), token.as_bytes(), &mut signature)
        .map_err(|_| "RS256 signing failed")?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// How often a node looks for signing keys another node rotated ([`Signer::refresh`]).
pub const KEY_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Every [`KEY_CHECK_INTERVAL`] (half a second), pick up keys rotated on another node, so that this node signs
/// with the current key and publishes it in its JWKS within a second of the rotation. Stops when `stop` changes.
pub fn spawn_key_watcher(
    app: &std::sync::Arc<Core>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::spawn_every(app, KEY_CHECK_INTERVAL, stop, |app| async move {
        if let Err(e) = app.signer.refresh(&app).await {
            tracing::warn!(error = %e, "could not check the signing keys for a rotation");
        }
    })
}
