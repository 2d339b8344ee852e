//! The architecture's rules (docs/ARCHITECTURE.md, "Crates and arrows"), checked on the sources:
//!
//! 1. each crate depends only on the workspace crates its arrows allow, and no crate below the server depends on an
//!    HTTP-server or page crate (services know nothing of HTTP);
//! 2. no provider is named outside its own module (`crates/callsign-messaging/src/providers/<name>`) and the
//!    registry: core, the server, the jobs, the store and the rest of messaging reach providers through
//!    `callsign_messaging::Registry` and `ProviderKind` only.
//!
//! Unit-test modules (`#[cfg(test)]` to the end of a file) and comments are not checked: tests may pick a provider
//! by name, and prose may give one as an example.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The workspace crates and external crates a crate may depend on (its `[dependencies]`, not dev-dependencies).
const ARROWS: &[(&str, &[&str])] = &[
    ("callsign-domain", &[]),
    ("callsign-store", &["callsign-domain"]),
    ("callsign-store-sqlite", &["callsign-domain", "callsign-store"]),
    ("callsign-store-postgres", &["callsign-domain", "callsign-store"]),
    ("callsign-limiter-redis", &["callsign-domain", "callsign-store"]),
    ("callsign-testkit", &["callsign-domain", "callsign-store"]),
    ("callsign-fakes", &[]),
    ("callsign-jobs", &["callsign-domain"]),
    ("callsign-messaging", &["callsign-domain"]),
    ("callsign-core", &["callsign-domain", "callsign-store", "callsign-jobs", "callsign-messaging"]),
    (
        "callsign-server",
        &[
            "callsign-domain",
            "callsign-store",
            "callsign-store-sqlite",
            "callsign-store-postgres",
            "callsign-limiter-redis",
            "callsign-jobs",
            "callsign-messaging",
            "callsign-core",
        ],
    ),
];

/// Crates that serve HTTP or draw pages: only the server may use them.
const SERVER_ONLY: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "http-body",
    "http-body-util",
    "tower",
    "tower-http",
    "maud",
    "tokio-rustls",
    "rustls-pki-types",
    "clap",
    "prometheus-client",
    "tracing-subscriber",
    "toml",
];

fn dependencies(krate: &str) -> BTreeSet<String> {
    let path = workspace().join("crates").join(krate).join("Cargo.toml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.get("dependencies").and_then(toml::Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn every_crate_keeps_to_its_arrows() {
    let crates: BTreeSet<String> = fs::read_dir(workspace().join("crates"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = ARROWS.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert_eq!(crates, listed, "every crate has its arrows here (and in docs/ARCHITECTURE.md)");
    let mut wrong = Vec::new();
    for (krate, allowed) in ARROWS {
        for dep in dependencies(krate) {
            if dep.starts_with("callsign-") && !allowed.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}, which its arrows do not allow"));
            }
            // Redis is the limiter crate's business: everyone else reaches it through `RateLimiter`.
            if *krate != "callsign-limiter-redis" && dep == "redis" {
                wrong.push(format!("{krate} depends on redis, which only callsign-limiter-redis may use"));
            }
            // The fakes are test-only HTTP servers (the providers' APIs), used as dev-dependencies.
            if !["callsign-server", "callsign-fakes"].contains(krate) && SERVER_ONLY.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}, which only the server may use"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checker sees a dependency it must refuse (so the test above can fail).
#[test]
fn the_arrow_check_reads_real_dependencies() {
    assert!(dependencies("callsign-server").contains("axum"));
    assert!(dependencies("callsign-core").contains("callsign-messaging"));
    assert!(!dependencies("callsign-core").contains("axum"));
}

/// Where provider names may appear.
fn provider_home(path: &Path) -> bool {
    let p = path.to_string_lossy().replace('\\', "/");
    p.contains("crates/callsign-messaging/src/providers/")
        || p.ends_with("crates/callsign-messaging/src/registry.rs")
        || p.contains("crates/callsign-fakes/src/")
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a source file: up to its unit-test module, without comment lines or trailing comments.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = line.find(" //").map_or(line, |at| &line[..at]);
        out.push((i + 1, code.to_owned()));
    }
    out
}

/// Whether `line` names `name` as a word (letters, digits, `_` and `-` around it are part of a word), ignoring
/// case.
fn names(line: &str, name: &str) -> bool {
    let lower = line.to_lowercase();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    lower.match_indices(name).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// What to look for: every provider's Guardian and UPE name, as a word; names that are also ordinary words
/// (`custom`) only as a string literal. `auth0`, the development provider's Guardian name, is also Auth0's name for
/// its database connections and identity provider (`"strategy": "auth0"`), so it is not looked for; the development
/// provider is reached through `Registry::default_provider`.
fn forbidden() -> Vec<(String, bool)> {
    let registry = callsign_messaging::Registry::builtin();
    let ordinary = ["custom"];
    let mut out: Vec<(String, bool)> = registry
        .names()
        .into_iter()
        .chain(registry.upe_names())
        .filter(|n| *n != registry.default_provider().name())
        .map(|n| (n.to_owned(), ordinary.contains(&n)))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for krate in fs::read_dir(root.join("crates")).unwrap().filter_map(|e| e.ok()) {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut files);
        }
    }
    let names_of = forbidden();
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !provider_home(f)) {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in code_lines(&text) {
            for (name, literal_only) in &names_of {
                let hit = if *literal_only { line.contains(&format!("\"{name}\"")) } else { names(&line, name) };
                if hit {
                    found.push(format!("{}:{n}: names the `{name}` provider: {}", file.display(), line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn no_provider_is_named_outside_its_module_and_the_registry() {
    let found = violations(&workspace());
    assert!(found.is_empty(), "provider names outside their module and the registry:\n{}", found.join("\n"));
}

#[test]
fn the_name_check_finds_what_it_looks_for() {
    let looked_for = forbidden();
    assert!(looked_for.contains(&("twilio".to_owned(), false)), "{looked_for:?}");
    assert!(looked_for.contains(&("phone-message-hook".to_owned(), false)), "{looked_for:?}");
    assert!(looked_for.contains(&("custom".to_owned(), true)), "{looked_for:?}");
    assert!(names("let p = providers::twilio::TwilioKind;", "twilio"));
    assert!(names(r#"get("phone-message-hook")"#, "phone-message-hook"));
    assert!(!names("twilio_like", "twilio") && !names("my-phone-message-hook-2", "phone-message-hook"));
    let code = code_lines("a\n// twilio\nb // twilio\n#[cfg(test)]\nmod tests { twilio }\n");
    assert_eq!(code, vec![(1, "a".to_owned()), (3, "b".to_owned())]);
    assert!(provider_home(Path::new("/w/crates/callsign-messaging/src/providers/twilio/mod.rs")));
    assert!(!provider_home(Path::new("/w/crates/callsign-core/src/delivery.rs")));

    // A planted name outside the providers' homes is found.
    let root = std::env::temp_dir().join(format!("callsign-layers-{}", std::process::id()));
    let src = root.join("crates/callsign-core/src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("lib.rs"), "fn f() { let _ = \"twilio\"; }\n").unwrap();
    let found = violations(&root);
    fs::remove_dir_all(&root).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
}
