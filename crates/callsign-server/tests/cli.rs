//! The `callsign` binary as an operator uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn callsign() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callsign"));
    // The developer's own CALLSIGN_* settings must not leak into these runs.
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLSIGN_") {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn default_config_prints_a_config_that_loads() {
    let out = callsign().arg("default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\""));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, &text).unwrap();
    let db = format!("sqlite://{}/m.db", dir.path().display());
    let out = callsign().arg("--config").arg(&f).args(["--database-url", &db, "migrate"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied (sqlite)"));
}

#[test]
fn a_bad_config_key_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "listen = \"127.0.0.1:0\"\nlisten_adress = \"x\"\n").unwrap();
    let out = callsign().arg("--config").arg(&f).arg("migrate").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_adress") && err.contains("c.toml"), "{err}");

    let out = callsign().arg("migrate").env("CALLSIGN_DATABSE_URL", "sqlite://x.db").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CALLSIGN_DATABSE_URL"), "{err}");
}

#[test]
fn an_unknown_database_scheme_fails_clearly() {
    let out = callsign().args(["--database-url", "mysql://root@localhost/db", "serve"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database_url") && err.contains("`mysql`") && err.contains("sqlite://"), "{err}");
}

#[test]
fn serve_on_defaults_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Embedded defaults: ./data/callsign.db relative to the working directory.
    let mut child = callsign()
        .current_dir(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "server did not start");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (health, ready) = rt.block_on(async {
        let h = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap().status();
        let r = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.unwrap().status();
        (h, r)
    });
    assert_eq!((health.as_u16(), ready.as_u16()), (200, 200));
    assert!(dir.path().join("data/callsign.db").exists());
    assert!(dir.path().join("data/encryption.keys").exists());
    let creds = std::fs::read_to_string(dir.path().join("data/bootstrap-credentials.json")).unwrap();
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let log = lines.join().unwrap().join("\n");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("bootstrap-credentials.json"), "{log}");
    // The secret itself never reaches the log.
    let secret: serde_json::Value = serde_json::from_str(&creds).unwrap();
    assert!(!log.contains(secret["client_secret"].as_str().unwrap()), "secret leaked into the log");
}

#[test]
fn the_data_dir_holds_the_database_and_a_new_database_keeps_the_earlier_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    // --data-dir alone moves the embedded database with the other files.
    let out = callsign()
        .current_dir(dir.path())
        .arg("--data-dir")
        .arg(&data)
        .args(["admin", "dashboard-link"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("callsign.db").exists(), "the database is in the data directory");
    assert!(!dir.path().join("data").exists(), "nothing went to ./data");
    let first = std::fs::read_to_string(data.join("bootstrap-credentials.json")).unwrap();
    // Another (empty) database with the same data directory: new credentials, the earlier ones kept aside.
    let other = format!("sqlite://{}/other.db", dir.path().display());
    let out = callsign()
        .arg("--data-dir")
        .arg(&data)
        .args(["--database-url", &other, "admin", "dashboard-link"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = std::fs::read_to_string(data.join("bootstrap-credentials.json")).unwrap();
    assert_ne!(first, second);
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bootstrap-credentials.") && n != "bootstrap-credentials.json")
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(data.join(&kept[0])).unwrap(), first, "the earlier file is kept as it was");
}

#[test]
fn dashboard_link_without_listen_points_at_where_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = callsign()
        .current_dir(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready (not only bound): the server has recorded where it serves.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ready = rt.block_on(async {
        for _ in 0..400 {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(ready, "server did not become ready");
    let out = callsign().current_dir(dir.path()).args(["admin", "dashboard-link"]).output().unwrap();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8_lossy(&out.stdout);
    assert!(link.starts_with(&format!("http://127.0.0.1:{port}/dashboard/")), "{link}");
    // An explicit --listen still wins.
    let out = callsign()
        .current_dir(dir.path())
        .args(["--listen", "127.0.0.1:1", "admin", "dashboard-link"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("http://127.0.0.1:1/"), "{out:?}");
}

#[test]
fn admin_create_client_prints_working_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/a.db", dir.path().display());
    let out = callsign()
        .args(["--database-url", &db, "--data-dir"])
        .arg(dir.path())
        .args(["admin", "create-client", "--name", "ops"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_id"].as_str().unwrap().len(), 32);
    assert!(v["client_secret"].as_str().unwrap().len() >= 32);
    assert!(v["audience"].as_str().unwrap().ends_with("/api/v2/"));
}
