//! The configuration `docs/DEPLOYMENT.md` shows (`docs/deploy/callsign.toml`) is one Callsign accepts, and means
//! what the page says: loaded through the same path as `callsign --config FILE serve`, with its secret files
//! written to a temp dir in place of `/etc/callsign/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use callsign_server::config::{Config, LogFormat, RawConfig};

const EXAMPLE: &str = include_str!("../../../docs/deploy/callsign.toml");

#[test]
fn the_deployment_example_loads_and_says_what_the_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("database-url"), "postgres://callsign:pw@10.0.2.5:5432/callsign\n").unwrap();
    std::fs::write(etc.join("redis-url"), "redis://:pw@10.0.2.6:6379/0\n").unwrap();
    std::fs::write(etc.join("encryption.keys"), "2026-12:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let text = EXAMPLE
        .replace("/etc/callsign/", &format!("{}/", etc.display()))
        .replace("/var/lib/callsign", &dir.path().join("state").display().to_string());
    assert_ne!(text, EXAMPLE, "the example names its files under /etc/callsign/");
    let file = dir.path().join("callsign.toml");
    std::fs::write(&file, &text).unwrap();

    let c = Config::load(Some(&file), Vec::new(), RawConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.public_url, "https://login.example.com/");
    assert_eq!(c.listen.to_string(), "10.0.1.11:8080");
    assert!(c.database_url.starts_with("postgres://"), "the database URL comes from its file");
    assert!(c.redis_url.as_deref().is_some_and(|u| u.starts_with("redis://")), "so does Redis's");
    assert_eq!(c.redis_key_prefix, "callsign:");
    assert!(c.encryption_keys.as_deref().is_some_and(|k| k.starts_with("2026-12:")), "shared keys, not a key file");
    assert_eq!(c.trusted_proxies.len(), 1);
    assert!(c.tls.is_none(), "TLS ends at the load balancer");
    assert!(matches!(c.log_format, LogFormat::Json));
    assert_eq!((c.delivery_workers, c.delivery_lease_secs), (2, 15));
    assert_eq!(c.metrics_addr.map(|a| a.to_string()).as_deref(), Some("10.0.1.11:9090"));
}
