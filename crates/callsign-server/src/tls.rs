//! Optional HTTPS: the rustls server configuration. Handshakes run in each connection's own task (`http::conn`),
//! so a slow client cannot stall the accept loop.
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

pub fn load_server_config(cert_file: &Path, key_file: &Path) -> crate::BoxResult<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("tls.cert_file `{}`: {e}", cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.cert_file `{}`: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert_file `{}`: no certificate found in the PEM file", cert_file.display()).into());
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("tls.key_file `{}`: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: the certificate and key do not form a usable pair: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
