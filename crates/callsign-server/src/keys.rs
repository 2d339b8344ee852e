//! The encryption keyring: from configuration, or from a key file generated in the data directory on first start.
use std::io::Write;
use std::path::{Path, PathBuf};

use callsign_domain::RandomSource;
use callsign_domain::seal::Keyring;
use callsign_store::{SealedSecret, Store};

use crate::config::Config;

pub const KEY_FILE_NAME: &str = "encryption.keys";

#[derive(Debug)]
pub enum KeySource {
    Config,
    File(PathBuf),
}

pub fn key_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE_NAME)
}

/// Write `contents` to `path` with mode 0600, creating it new (fails if it exists) or replacing it atomically.
pub fn write_private_file(path: &Path, contents: &str, replace: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let target = if replace { path.with_extension("tmp") } else { path.to_path_buf() };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if replace {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(&target)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    if replace {
        std::fs::rename(&target, path)?;
    }
    Ok(())
}

fn new_key_id(rng: &dyn RandomSource, now: callsign_domain::Timestamp) -> String {
    let date = now.to_rfc3339();
    format!("{}-{}", &date[..10], callsign_domain::rng::from_alphabet(rng, callsign_domain::rng::HEX, 6))
}

/// Load the keyring: the configured keys, or the data-dir key file (generated with mode 0600 if missing).
pub fn load_keyring(
    config: &Config,
    rng: &dyn RandomSource,
    now: callsign_domain::Timestamp,
) -> crate::BoxResult<(Keyring, KeySource)> {
    if let Some(text) = &config.encryption_keys {
        return Ok((Keyring::parse(text)?, KeySource::Config));
    }
    let path = key_file_path(&config.data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((Keyring::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?, KeySource::File(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!(
                "# Callsign encryption keys: <id>:<base64>. The first encrypts; the rest only decrypt.\n{}\n",
                Keyring::generate_line(rng, &new_key_id(rng, now))
            );
            match write_private_file(&path, &text, false) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "generated a new encryption key file; back it up, without it stored secrets cannot be read")
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create the key file {}: {e}", path.display()).into()),
            }
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((Keyring::parse(&text)?, KeySource::File(path)))
        }
        Err(e) => Err(format!("cannot read the key file {}: {e}", path.display()).into()),
    }
}

/// Prepend a fresh key to the data-dir key file; returns the new keyring.
pub fn rotate_key_file(
    path: &Path,
    rng: &dyn RandomSource,
    now: callsign_domain::Timestamp,
) -> crate::BoxResult<Keyring> {
    let old = std::fs::read_to_string(path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    Keyring::parse(&old)?;
    let mut lines: Vec<&str> = old.lines().collect();
    let new_line = Keyring::generate_line(rng, &new_key_id(rng, now));
    let at = lines.iter().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).unwrap_or(lines.len());
    lines.insert(at, &new_line);
    let text = format!("{}\n", lines.join("\n"));
    write_private_file(path, &text, true).map_err(|e| format!("cannot write the key file {}: {e}", path.display()))?;
    Ok(Keyring::parse(&text)?)
}

/// Re-encrypt every stored secret that is not under the active key. Returns how many were re-encrypted.
pub async fn reencrypt_stale(
    store: &dyn Store,
    keyring: &Keyring,
    rng: &dyn RandomSource,
    now: callsign_domain::Timestamp,
) -> crate::BoxResult<usize> {
    let mut n = 0;
    for s in store.list_secrets().await? {
        if !keyring.is_stale(&s.sealed) {
            continue;
        }
        let plain = keyring.open(&s.name, &s.sealed).map_err(|e| format!("secret `{}`: {e}", s.name))?;
        let sealed = keyring.seal(rng, &s.name, &plain)?;
        store.put_secret(&SealedSecret { name: s.name.clone(), sealed, updated_at: now }).await?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use callsign_domain::{SeededRandom, Timestamp};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_key_file_with_0600_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::resolve(RawConfig { data_dir: Some(dir.path().join("d")), ..Default::default() }).unwrap();
        let rng = SeededRandom::new(1);
        let (k1, src) = load_keyring(&cfg, &rng, Timestamp(0)).unwrap();
        let KeySource::File(path) = src else { panic!("expected a file") };
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (k2, _) = load_keyring(&cfg, &rng, Timestamp(0)).unwrap();
        assert_eq!(k1.active_key_id(), k2.active_key_id());
        let rotated = rotate_key_file(&path, &rng, Timestamp(86_400_000)).unwrap();
        assert_ne!(rotated.active_key_id(), k1.active_key_id());
        assert_eq!(rotated.key_ids().count(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn configured_keys_win() {
        let rng = SeededRandom::new(2);
        let line = Keyring::generate_line(&rng, "cfg");
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::resolve(RawConfig {
            data_dir: Some(dir.path().to_path_buf()),
            encryption_keys: Some(crate::config::StringList(vec![line])),
            ..Default::default()
        })
        .unwrap();
        let (k, src) = load_keyring(&cfg, &rng, Timestamp(0)).unwrap();
        assert_eq!(k.active_key_id(), "cfg");
        assert!(matches!(src, KeySource::Config));
        assert!(!key_file_path(dir.path()).exists());
    }
}
