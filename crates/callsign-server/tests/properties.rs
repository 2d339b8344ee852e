//! Property tests for the server's edge: Liquid templates, configuration (TOML, environment, resolution,
//! redaction), request bodies (JSON and form), small parsers (ids, languages, cookies, PKCE, Twilio signatures,
//! webhook URLs, path segments), and the whole router fed arbitrary requests.
//!
//! Runs are deterministic (a fixed seed unless `PROPTEST_RNG_SEED` is set; `PROPTEST_CASES` overrides the case
//! counts) and write no failure-persistence files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, Request, header};
use base64::Engine;
use callsign_core::guardian::GuardianConfig;
use callsign_core::mfa::{AssociateRequest, ChallengeRequest, split_authenticator_id};
use callsign_core::templates::{self, Vars};
use callsign_domain::{ManualClock, OsRandom, Timestamp};
use callsign_messaging::providers::{twilio, webhook};
use callsign_server::config::{self, Config, Num, RawConfig, RawProvider, RawTls, StringList};
use callsign_server::http::oauth::TokenRequest;
use callsign_server::web::{cookies, i18n};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{RngSeed, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

/// `cases` cases (unless `PROPTEST_CASES` says otherwise), a fixed seed (unless `PROPTEST_RNG_SEED` says
/// otherwise), no persistence files.
fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { base.cases } else { cases },
        failure_persistence: None,
        rng_seed: match base.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x0ca1_151e),
            fixed => fixed,
        },
        ..base
    }
}

/// Arbitrary JSON: scalars (any string, any finite number), nested arrays and objects, keys often from `keys`.
fn arb_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::from),
        "[a-z0-9|:+ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        let key = prop_oneof![select(keys).prop_map(str::to_owned), any::<String>()];
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Urlencoded text: well-formed pairs, broken escapes, stray `=`/`&`, arbitrary text.
fn arb_form(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    let key = prop_oneof![select(keys).prop_map(str::to_owned), "[a-z_\\[\\]%+=&]{0,8}", any::<String>()];
    let value =
        prop_oneof!["[a-zA-Z0-9%+=&|:._~ -]{0,16}", any::<String>(), Just("%".to_owned()), Just("%zz".to_owned())];
    prop_oneof![
        vec((key, value), 0..8).prop_map(|pairs| pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")),
        any::<String>(),
        "[&=%a-z0-9]{0,30}",
    ]
}

const TOKEN_FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "audience",
    "scope",
    "username",
    "password",
    "realm",
    "mfa_token",
    "oob_code",
    "binding_code",
    "recovery_code",
    "otp",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
];
const MFA_FIELDS: &[&str] = &[
    "client_id",
    "client_secret",
    "authenticator_types",
    "oob_channels",
    "phone_number",
    "mfa_token",
    "challenge_type",
    "authenticator_id",
];

fn token_field<'a>(r: &'a TokenRequest, name: &str) -> &'a Option<String> {
    match name {
        "grant_type" => &r.grant_type,
        "client_id" => &r.client_id,
        "client_secret" => &r.client_secret,
        "audience" => &r.audience,
        "scope" => &r.scope,
        "username" => &r.username,
        "password" => &r.password,
        "realm" => &r.realm,
        "mfa_token" => &r.mfa_token,
        "oob_code" => &r.oob_code,
        "binding_code" => &r.binding_code,
        "recovery_code" => &r.recovery_code,
        "otp" => &r.otp,
        "code" => &r.code,
        "redirect_uri" => &r.redirect_uri,
        "code_verifier" => &r.code_verifier,
        "refresh_token" => &r.refresh_token,
        other => panic!("no field {other}"),
    }
}

// --- Liquid templates -------------------------------------------------------------------------------------------

/// Template text assembled from Liquid's pieces (tags, filters, operators, our variable names) and plain text.
fn liquidish() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{%",
        "%}",
        "{{-",
        "-}}",
        "{%-",
        "-%}",
        " code ",
        " tenant.friendly_name ",
        " tenant.friendlyName ",
        " friendly_name ",
        " message_type ",
        " locale ",
        " pause ",
        " support_email ",
        " support_url ",
        " unknown_var ",
        " tenant.nope ",
        " | ",
        "escape",
        "upcase",
        "downcase",
        "size",
        "append: \"x\"",
        "truncate: 3",
        "split: \"\"",
        "replace: \"1\", \"2\"",
        "default: \"d\"",
        "nosuchfilter",
        " if ",
        " elsif ",
        " else ",
        " endif ",
        " unless ",
        " endunless ",
        " for c in code ",
        " for i in (1..3) ",
        " endfor ",
        " break ",
        " case code ",
        " when \"1\" ",
        " endcase ",
        " assign x = code ",
        " capture y ",
        " endcapture ",
        " raw ",
        " endraw ",
        " comment ",
        " endcomment ",
        " include 'x' ",
        " == ",
        " != ",
        " > ",
        " and ",
        " or ",
        " contains ",
        "\"voice\"",
        "'sms'",
        ".",
        "[",
        "]",
        "[0]",
        "nil",
        "true",
        "empty",
        "\"",
        "'",
        "\n",
    ];
    vec(
        prop_oneof![3 => select(PIECES).prop_map(str::to_owned), 1 => "[a-zA-Z0-9 .,:!]{0,6}", 1 => any::<String>()],
        0..24,
    )
    .prop_map(|v| v.concat())
}

/// Mostly well-formed Liquid: outputs of known and unknown variables through filters with good and bad
/// arguments, `assign`, `capture`, `raw`, `include`, small loops, plain text, and (with `branches`)
/// `if`/`unless`/`case` blocks.
fn liquid_structured(branches: bool) -> impl Strategy<Value = String> {
    const EXPRS: &[&str] = &[
        "code",
        "code",
        "friendly_name",
        "tenant.friendly_name",
        "tenant.friendlyName",
        "message_type",
        "locale",
        "pause",
        "support_email",
        "support_url",
        "user.source_ip",
        "user.phone_number",
        "user.city",
        "x",
        "nope",
        "tenant.nope",
        "code[0]",
        "code.size",
        "'text'",
        "\"voice\"",
        "1",
        "2.5",
        "nil",
        "empty",
        "true",
    ];
    const FILTERS: &[&str] = &[
        " | escape",
        " | upcase",
        " | downcase",
        " | size",
        " | strip",
        " | append: code",
        " | append: nope",
        " | prepend: 'a'",
        " | truncate: 3",
        " | truncate: 'a'",
        " | plus: 1",
        " | plus: 'x'",
        " | minus: code",
        " | divided_by: 2",
        " | divided_by: 0",
        " | modulo: 0",
        " | default: 'd'",
        " | split: '' | first",
        " | slice: 1, 2",
        " | replace: '1', '2'",
        " | date: '%Y'",
        " | url_encode",
        " | escape_once",
        " | first",
    ];
    let expr = select(EXPRS);
    let output = (expr.clone(), vec(select(FILTERS), 0..3)).prop_map(|(e, f)| format!("{{{{ {e}{} }}}}", f.concat()));
    let cond = (expr.clone(), select(&["", " == ", " != ", " contains ", " > ", " and ", " or "][..]), expr.clone())
        .prop_map(|(a, op, b)| if op.is_empty() { a.to_owned() } else { format!("{a}{op}{b}") });
    let leaf = prop_oneof![
        3 => "[a-zA-Z0-9 .,:!]{0,12}",
        4 => output,
        1 => (select(&["x", "y"][..]), expr.clone()).prop_map(|(n, e)| format!("{{% assign {n} = {e} %}}")),
        1 => Just("{% raw %}{{ nope }}{% endraw %}".to_owned()),
        1 => Just("{% comment %}{{ nope }}{% endcomment %}".to_owned()),
        1 => Just("{% include 'x' %}".to_owned()),
        1 => Just("{% for i in (1..2) %}{{ i }}{% endfor %}".to_owned()),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        let body = vec(inner, 0..4).prop_map(|v| v.concat());
        if !branches {
            return prop_oneof![
                body.clone().prop_map(|a| format!("{{% capture y %}}{a}{{% endcapture %}}{{{{ y }}}}")),
                body,
            ]
            .boxed();
        }
        prop_oneof![
            (cond.clone(), body.clone(), proptest::option::of(body.clone())).prop_map(|(c, a, b)| match b {
                Some(b) => format!("{{% if {c} %}}{a}{{% else %}}{b}{{% endif %}}"),
                None => format!("{{% if {c} %}}{a}{{% endif %}}"),
            }),
            (cond.clone(), body.clone()).prop_map(|(c, a)| format!("{{% unless {c} %}}{a}{{% endunless %}}")),
            (expr.clone(), body.clone(), body.clone())
                .prop_map(|(e, a, b)| format!("{{% case {e} %}}{{% when 'sms' %}}{a}{{% else %}}{b}{{% endcase %}}")),
            body.clone().prop_map(|a| format!("{{% capture y %}}{a}{{% endcapture %}}{{{{ y }}}}")),
            body,
        ]
        .boxed()
    })
}

/// Plain text with no Liquid markup (no `{{` or `{%`).
fn plain_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-zA-Z0-9 .,:!{}%-]{0,60}", "\\PC{0,200}"]
        .prop_filter("contains markup", |s| !s.contains("{{") && !s.contains("{%"))
}

#[derive(Debug, Clone)]
struct OwnedVars {
    code: String,
    message_type: String,
    locale: String,
    friendly_name: String,
    support_email: String,
    support_url: String,
}

impl OwnedVars {
    fn vars(&self) -> Vars<'_> {
        Vars {
            code: &self.code,
            message_type: &self.message_type,
            locale: &self.locale,
            friendly_name: &self.friendly_name,
            support_email: &self.support_email,
            support_url: &self.support_url,
        }
    }
}

fn arb_vars() -> impl Strategy<Value = OwnedVars> {
    let text = || prop_oneof!["[a-zA-Z0-9 .@:/]{0,20}", any::<String>(), Just("{{ code }}{% if %}".to_owned())];
    (
        prop_oneof!["[0-9]{6}", any::<String>()],
        prop_oneof![Just("sms".to_owned()), Just("voice".to_owned()), any::<String>()],
        prop_oneof![Just("en".to_owned()), "[a-z]{2}(-[A-Z]{2})?", any::<String>()],
        text(),
        text(),
        text(),
    )
        .prop_map(|(code, message_type, locale, friendly_name, support_email, support_url)| OwnedVars {
            code,
            message_type,
            locale,
            friendly_name,
            support_email,
            support_url,
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// `validate` and `render` never panic on any text with any variable values; whatever renders also validates.
    #[test]
    fn templates_never_panic(t in prop_oneof![liquidish(), liquid_structured(true), any::<String>()], v in arb_vars()) {
        let valid = templates::validate(&t);
        let rendered = templates::render(&t, &v.vars());
        if rendered.is_ok() {
            prop_assert!(valid.is_ok(), "renders but does not validate: {:?}", valid);
        }
        if let Err(e) = valid {
            prop_assert!(!e.is_empty() && !e.contains('\n'));
        }
    }

    /// A template without Liquid markup renders as itself (less surrounding whitespace), on both channels.
    #[test]
    fn plain_templates_render_unchanged(t in plain_text(), v in arb_vars()) {
        prop_assert!(templates::validate(&t).is_ok());
        prop_assert_eq!(templates::render(&t, &v.vars()).unwrap(), t.trim());
    }

    /// `{{ code }}` renders the code as given for SMS and digit by digit for voice, wherever it sits in text.
    #[test]
    fn code_renders(code in prop_oneof!["[0-9]{6}", "[A-Za-z0-9]{1,12}"], before in "[a-zA-Z0-9 .,:!]{0,20}",
                    after in "[a-zA-Z0-9 .,:!]{0,20}", v in arb_vars(), spaced in any::<bool>()) {
        let t = if spaced { format!("{before}{{{{ code }}}}{after}") } else { format!("{before}{{{{code}}}}{after}") };
        let sms = OwnedVars { code: code.clone(), message_type: "sms".into(), ..v.clone() };
        let expected_sms = format!("{before}{code}{after}");
        prop_assert_eq!(templates::render(&t, &sms.vars()).unwrap(), expected_sms.trim());
        let voice = OwnedVars { code: code.clone(), message_type: "voice".into(), ..v };
        let spoken = code.chars().map(String::from).collect::<Vec<_>>().join(".");
        let expected_voice = format!("{before}{spoken}{after}");
        prop_assert_eq!(templates::render(&t, &voice.vars()).unwrap(), expected_voice.trim());
    }

    /// Variable values are text, never evaluated as Liquid: the tenant name comes out as given under all three
    /// spellings, and `escape` HTML-escapes it.
    #[test]
    fn variable_values_are_not_templates(v in arb_vars()) {
        for t in ["{{ friendly_name }}", "{{ tenant.friendly_name }}", "{{tenant.friendlyName}}"] {
            prop_assert_eq!(templates::render(t, &v.vars()).unwrap(), v.friendly_name.trim());
        }
        let escaped = templates::render("{{ friendly_name | escape }}", &v.vars()).unwrap();
        prop_assert!(!escaped.contains('<') && !escaped.contains('>') && !escaped.contains('"'));
    }

    /// Every built-in default renders for any variable values (the UPE ones with the `user` object they use).
    #[test]
    fn defaults_render(v in arb_vars()) {
        prop_assert!(templates::render(templates::DEFAULT_ENROLLMENT, &v.vars()).unwrap().contains(v.friendly_name.trim()));
        prop_assert!(templates::render(templates::DEFAULT_VERIFICATION, &v.vars()).is_ok());
        let mut user = liquid::model::Object::new();
        for k in ["source_ip", "city", "country"] {
            user.insert(k.into(), liquid::model::Value::scalar(v.locale.clone()));
        }
        let mut extra = liquid::model::Object::new();
        extra.insert("user".into(), liquid::model::Value::Object(user));
        for kind in templates::UPE_TYPES {
            let (text, voice) = templates::upe_default(kind).unwrap();
            prop_assert!(templates::validate(text).is_ok());
            prop_assert!(templates::render_with(text, &v.vars(), extra.clone()).is_ok(), "{}", kind);
            if let Some(voice) = voice {
                prop_assert!(templates::render_with(voice, &v.vars(), extra.clone()).is_ok(), "{}", kind);
            }
        }
    }
}

/// Variable values as the server supplies them: a 6-digit code, one of the two channels, a tenant's texts.
fn real_vars() -> impl Strategy<Value = OwnedVars> {
    (
        "[0-9]{6}",
        select(&["sms", "voice"][..]),
        select(&["en", "fr", "es", "pt-BR"][..]),
        "[A-Z][a-zA-Z0-9 &'-]{0,20}",
        prop_oneof![Just(String::new()), "[a-z]{1,8}@[a-z]{1,8}\\.com"],
        prop_oneof![Just(String::new()), "https://[a-z]{1,8}\\.com/[a-z]{0,8}"],
    )
        .prop_map(|(code, message_type, locale, friendly_name, support_email, support_url)| OwnedVars {
            code,
            message_type: message_type.to_owned(),
            locale: locale.to_owned(),
            friendly_name,
            support_email,
            support_url,
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// What `validate` accepts renders when a message is sent: the Management API never stores a template that
    /// fails at every challenge (found: unknown variables, bad filter arguments and `include` used to pass).
    /// Templates without branches: a branch taken only for some values (`{% if user.source_ip contains "1" %}`)
    /// can still hide an error from the trial rendering.
    #[test]
    fn validated_templates_render(t in liquid_structured(false), v in real_vars()) {
        if templates::validate(&t).is_ok() {
            let r = templates::render(&t, &v.vars());
            prop_assert!(r.is_ok(), "{:?} validates but {:?}", t, r);
        }
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// The size limit: at most 20000 characters (not bytes), whatever the characters.
    #[test]
    fn template_size_limit_counts_characters(n in 19_990usize..20_010, c in prop_oneof![Just('a'), Just('é'), Just('€'), Just('😀')]) {
        let t: String = std::iter::repeat_n(c, n).collect();
        let r = templates::validate(&t);
        if n <= 20_000 {
            prop_assert!(r.is_ok(), "{:?}", r);
        } else {
            prop_assert!(r.unwrap_err().contains("20000"));
        }
    }
}

// --- configuration ------------------------------------------------------------------------------------------------

/// Every setting, as its TOML key.
const SETTINGS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "database_url_file",
    "redis_url",
    "redis_url_file",
    "redis_key_prefix",
    "data_dir",
    "metrics_addr",
    "log_format",
    "log_level",
    "encryption_keys",
    "encryption_keys_file",
    "access_token_lifetime_secs",
    "id_token_lifetime_secs",
    "dev_provider_cap",
    "delivery_workers",
    "twilio_base_url",
    "providers",
    "tls",
];

/// TOML-ish documents: known and unknown keys with values of every type, `[tls]` and other sections, garbage.
fn tomlish() -> impl Strategy<Value = String> {
    let key = prop_oneof![4 => select(SETTINGS).prop_map(str::to_owned), 1 => "[a-z_.\"]{0,12}", 1 => Just("tls.cert_file".to_owned())];
    let value = prop_oneof![
        "\"[a-zA-Z0-9:/.@\\[\\] -]{0,30}\"",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("[\"a\", \"b\"]".to_owned()),
        Just("[1, \"x\"]".to_owned()),
        Just("{ cert_file = \"c\", key_file = 2 }".to_owned()),
        Just("\"\"\"multi\nline\"\"\"".to_owned()),
        any::<String>(),
    ];
    let line = prop_oneof![
        6 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just("[tls]".to_owned()),
        1 => Just("[tls.inner]".to_owned()),
        1 => Just("[[tls]]".to_owned()),
        1 => Just("[other]".to_owned()),
        1 => Just("# comment".to_owned()),
        1 => any::<String>(),
    ];
    vec(line, 0..8).prop_map(|l| l.join("\n"))
}

/// Environment variables: every setting's name, sections, unknown and test-suite names, other programs' names.
fn env_vars() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        4 => select(SETTINGS).prop_map(|s| format!("CALLSIGN_{}", s.to_ascii_uppercase())),
        1 => Just("CALLSIGN_TLS__CERT_FILE".to_owned()),
        1 => Just("CALLSIGN_TLS__KEY_FILE".to_owned()),
        1 => Just("CALLSIGN_TLS__NOPE".to_owned()),
        1 => Just("CALLSIGN_LISTEN__X".to_owned()),
        1 => Just("CALLSIGN_TEST_POSTGRES_URL".to_owned()),
        1 => "CALLSIGN_[A-Z_]{0,12}",
        1 => "[A-Z_]{1,12}",
        1 => any::<String>(),
    ];
    let value = prop_oneof!["[0-9]{1,6}", " [0-9]{1,3} ", "[a-z0-9:/.,#\n -]{0,30}", any::<String>()];
    vec((name, value), 0..6)
}

/// Settings the generators above do not write as keys, but whose errors [`names_a_setting`] must still accept.
const MORE_SETTINGS: &[&str] = &[
    "delivery_lease_secs",
    "password_hash_concurrency",
    "password_hash_queue_ms",
    "dev_provider_log_messages",
    "trusted_proxies",
    "http.header_read_timeout_secs",
    "http.idle_timeout_secs",
    "http.body_timeout_secs",
    "http.max_connections",
    "http.max_body_bytes",
];

/// The message of a configuration error must start by naming a setting (or two, for an exclusive pair).
fn names_a_setting(msg: &str) -> bool {
    SETTINGS
        .iter()
        .chain(MORE_SETTINGS)
        .any(|s| msg.starts_with(&format!("{s}:")) || msg.starts_with(&format!("{s} and ")))
}

fn opt<S: Strategy<Value = String>>(s: S) -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.6, s)
}

fn arb_num() -> impl Strategy<Value = Option<Num>> {
    proptest::option::weighted(0.5, prop_oneof![0u64..100, 2_591_990u64..2_592_010, any::<u64>()].prop_map(Num))
}

/// Raw settings of every shape; file settings point at files that do not exist.
fn arb_raw_config() -> impl Strategy<Value = RawConfig> {
    let addr =
        || prop_oneof!["127\\.0\\.0\\.1:[0-9]{1,5}", "\\[::1?\\]:[0-9]{1,5}", "[a-z0-9.:]{0,12}", any::<String>()];
    let url = || {
        prop_oneof![
            "https?://[a-z.]{1,10}(:[0-9]{1,5})?/?[a-z/]{0,6}",
            "(sqlite|postgres|postgresql|mysql|http|ftp)://[a-z0-9:@./?#]{0,20}",
            "sqlite::memory:",
            "[a-z:/]{0,12}",
            any::<String>(),
        ]
    };
    let missing = || Just(Some(std::path::PathBuf::from("/nonexistent/callsign-properties/file")));
    (
        (opt(addr()), opt(url()), opt(url()), prop_oneof![Just(None), missing()], opt(addr())),
        (opt(prop_oneof![Just("human".to_owned()), Just("json".to_owned()), any::<String>()]), opt(any::<String>())),
        (
            proptest::option::weighted(
                0.3,
                vec(prop_oneof!["[a-z0-9-]{1,8}:[A-Za-z0-9+/=]{0,50}", any::<String>()], 0..3).prop_map(StringList),
            ),
            prop_oneof![4 => Just(None), 1 => missing()],
        ),
        (arb_num(), arb_num(), arb_num(), arb_num()),
        opt(url()),
        proptest::option::weighted(0.3, (any::<bool>(), any::<bool>())),
        (arb_num(), arb_num(), arb_num(), proptest::option::of(any::<bool>())),
        proptest::option::weighted(0.5, (arb_num(), arb_num(), arb_num(), arb_num(), arb_num())),
        (
            opt(prop_oneof![
                "rediss?://(:[a-z0-9]{0,8}@)?[a-z0-9.]{1,10}(:[0-9]{1,6})?(/[0-9a-z]{0,3})?",
                "(redis\\+unix|unix|http)://[a-z0-9:@./?#]{0,20}",
                "",
                any::<String>(),
            ]),
            prop_oneof![4 => Just(None), 1 => missing()],
            opt(any::<String>()),
        ),
    )
        .prop_map(
            |(
                (listen, public_url, database_url, database_url_file, metrics_addr),
                (log_format, log_level),
                (encryption_keys, encryption_keys_file),
                (a, i, cap, workers),
                twilio,
                tls,
                (lease, hash_concurrency, hash_queue, log_messages),
                http,
                (redis_url, redis_url_file, redis_key_prefix),
            )| RawConfig {
                redis_url,
                redis_url_file,
                redis_key_prefix,
                delivery_lease_secs: lease,
                password_hash_concurrency: hash_concurrency,
                password_hash_queue_ms: hash_queue,
                dev_provider_log_messages: log_messages.map(callsign_server::config::Flag),
                http: http.map(|(h, idle, body, conns, bytes)| callsign_server::config::RawHttp {
                    header_read_timeout_secs: h,
                    idle_timeout_secs: idle,
                    body_timeout_secs: body,
                    max_connections: conns,
                    max_body_bytes: bytes,
                }),
                listen,
                public_url,
                database_url,
                database_url_file,
                data_dir: None,
                metrics_addr,
                log_format,
                log_level,
                encryption_keys,
                encryption_keys_file,
                access_token_lifetime_secs: a,
                id_token_lifetime_secs: i,
                dev_provider_cap: cap,
                delivery_workers: workers,
                twilio_base_url: twilio,
                providers: None,
                trusted_proxies: None,
                log_streams: None,
                tls: tls.map(|(c, k)| RawTls {
                    cert_file: c.then(|| "/c.pem".into()),
                    key_file: k.then(|| "/k.pem".into()),
                }),
            },
        )
}

/// A password of a `scheme://user:password@host` URL, long enough not to appear in the rest by chance.
fn password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!$%^&*()_+=,;~:?#\\[\\]-]{6,24}"
}

proptest! {
    #![proptest_config(config(256))]

    /// `from_toml` never panics; its errors say where the text came from.
    #[test]
    fn toml_never_panics(text in prop_oneof![tomlish(), any::<String>()]) {
        if let Err(e) = RawConfig::from_toml(&text, "config file `c.toml`") {
            prop_assert!(e.0.starts_with("config file `c.toml`: ") && e.0.len() > "config file `c.toml`: ".len(), "{}", e.0);
        }
    }

    /// Deeply nested values are refused, not a stack overflow.
    #[test]
    fn toml_deep_nesting(n in 1usize..20_000, array in any::<bool>()) {
        let text = if array { format!("listen = {}", "[".repeat(n)) } else { format!("listen = {}", "{ a = ".repeat(n)) };
        prop_assert!(RawConfig::from_toml(&text, "f").is_err());
    }

    /// An unknown key is refused with its name.
    #[test]
    fn toml_unknown_keys_are_named(key in "[a-z][a-z_]{0,15}") {
        prop_assume!(!SETTINGS.contains(&key.as_str()));
        let e = RawConfig::from_toml(&format!("{key} = \"x\""), "f").unwrap_err().0;
        prop_assert!(e.contains(&format!("`{key}`")), "{}", e);
    }

    /// `from_env` never panics; its errors name a `CALLSIGN_*` variable it was given, or say `environment`.
    #[test]
    fn env_never_panics(vars in env_vars()) {
        if let Err(e) = RawConfig::from_env(vars.clone()) {
            let named = vars.iter().any(|(k, _)| k.starts_with("CALLSIGN_") && e.0.contains(k.as_str()));
            prop_assert!(named || e.0.starts_with("environment: "), "{}", e.0);
        }
    }

    /// String settings from the environment arrive as given; numbers are read with surrounding spaces; lists
    /// split on commas and newlines, dropping blanks and `#` comments.
    #[test]
    fn env_values_arrive(s in any::<String>(), n in any::<u64>(), pad in "[ \t]{0,2}", items in vec("[a-z0-9:#+/= -]{0,12}", 0..5)) {
        let raw = RawConfig::from_env([("CALLSIGN_LOG_LEVEL".to_owned(), s.clone()), ("CALLSIGN_TLS__CERT_FILE".to_owned(), s.clone())]).unwrap();
        prop_assert_eq!(raw.log_level.as_deref(), Some(s.as_str()));
        prop_assert_eq!(raw.tls.and_then(|t| t.cert_file), Some(std::path::PathBuf::from(&s)));
        let raw = RawConfig::from_env([("CALLSIGN_DEV_PROVIDER_CAP".to_owned(), format!("{pad}{n}{pad}"))]).unwrap();
        prop_assert_eq!(raw.dev_provider_cap.map(|n| n.0), Some(n));
        if s.trim().parse::<u64>().is_err() {
            let e = RawConfig::from_env([("CALLSIGN_DELIVERY_WORKERS".to_owned(), s.clone())]).unwrap_err().0;
            prop_assert!(e.starts_with("environment variable CALLSIGN_DELIVERY_WORKERS: "), "{}", e);
        }
        let list = items.join(if n % 2 == 0 { "," } else { "\n" });
        let raw = RawConfig::from_env([("CALLSIGN_ENCRYPTION_KEYS".to_owned(), list)]).unwrap();
        let want: Vec<String> = items.iter().map(|i| i.trim().to_owned()).filter(|i| !i.is_empty() && !i.starts_with('#')).collect();
        prop_assert_eq!(raw.encryption_keys.unwrap().0, want);
    }

    /// `Config::resolve` never panics; its errors start with the setting at fault; what it accepts is in range.
    #[test]
    fn resolve_never_panics(raw in arb_raw_config()) {
        match Config::resolve(raw) {
            Err(e) => prop_assert!(names_a_setting(&e.0), "{}", e.0),
            Ok(c) => {
                prop_assert!(c.public_url.ends_with('/'));
                prop_assert!(c.public_url.starts_with("http://") || c.public_url.starts_with("https://"));
                prop_assert!(c.provider_base_urls.values().all(|u| !u.ends_with('/')));
                prop_assert!((1..=2_592_000).contains(&c.access_token_lifetime_secs));
                prop_assert!((1..=2_592_000).contains(&c.id_token_lifetime_secs));
                prop_assert!((1..=64).contains(&c.delivery_workers));
            }
        }
    }

    /// The password of a database URL appears neither in a configuration error nor in the `Debug` of a config.
    #[test]
    fn database_password_stays_hidden(scheme in prop_oneof![Just("postgres"), Just("postgresql"), Just("mysql"), Just("sqlite")],
                                      user in "[a-z0-9_]{1,8}", pw in password(), rest in "[a-z0-9.:/]{1,20}") {
        let url = format!("{scheme}://{user}:{pw}@{rest}");
        prop_assume!(!format!("{scheme}://{user}:@{rest}").contains(&pw));
        match Config::resolve(RawConfig { database_url: Some(url), ..Default::default() }) {
            Ok(c) => {
                let debug = format!("{c:?}");
                prop_assert!(!debug.contains(&pw), "{}", debug);
            }
            Err(e) => prop_assert!(!e.0.contains(&pw), "{}", e.0),
        }
    }

    /// The password of a Redis URL appears neither in a configuration error nor in the `Debug` of a config.
    #[test]
    fn redis_password_stays_hidden(scheme in prop_oneof![Just("redis"), Just("rediss"), Just("http"), Just("redis+unix")],
                                   user in "[a-z0-9_]{0,8}", pw in password(), rest in "[a-z0-9.:/]{1,20}") {
        let url = format!("{scheme}://{user}:{pw}@{rest}");
        prop_assume!(!format!("{scheme}://{user}:@{rest}").contains(&pw));
        match Config::resolve(RawConfig { redis_url: Some(url), ..Default::default() }) {
            Ok(c) => {
                let debug = format!("{c:?}");
                prop_assert!(!debug.contains(&pw), "{}", debug);
            }
            Err(e) => {
                prop_assert!(e.0.starts_with("redis_url: "), "{}", e.0);
                prop_assert!(!e.0.contains(&pw), "{}", e.0);
            }
        }
    }

    /// `redact_url` never panics, is idempotent, changes nothing without `://`, and hides the password of a
    /// `scheme://user:password@host…` URL while keeping the rest.
    #[test]
    fn redact_url_hides_passwords(any_text in any::<String>(), scheme in "[a-z][a-z0-9+.-]{0,10}", user in "[a-zA-Z0-9_.-]{0,10}",
                                  pw in password(), host in "[a-z0-9.-]{1,15}(:[0-9]{1,5})?", path in "(/[a-z0-9._?=&-]{0,15})?") {
        let r = config::redact_url(&any_text);
        prop_assert_eq!(config::redact_url(&r), r.clone());
        if !any_text.contains("://") {
            prop_assert_eq!(r, any_text);
        }
        let url = format!("{scheme}://{user}:{pw}@{host}{path}");
        prop_assume!(!format!("{scheme}://{user}:@{host}{path}").contains(&pw));
        let redacted = config::redact_url(&url);
        prop_assert!(!redacted.contains(&pw), "{}", redacted);
        prop_assert_eq!(redacted, format!("{scheme}://{user}:***@{host}{path}"));
    }

    /// `Num` and `StringList` never panic on any JSON; a number, or a string holding one with spaces around, is read.
    #[test]
    fn num_and_string_list_deserializers(v in arb_json(&["x"]), n in any::<u64>(), items in vec(any::<String>(), 0..4)) {
        let _ = serde_json::from_value::<Num>(v.clone());
        let _ = serde_json::from_value::<StringList>(v);
        prop_assert_eq!(serde_json::from_value::<Num>(json!(n)).unwrap().0, n);
        prop_assert_eq!(serde_json::from_value::<Num>(json!(format!(" {n}\t"))).unwrap().0, n);
        let bad = format!("{n}x");
        prop_assert!(serde_json::from_value::<Num>(json!(bad)).is_err());
        prop_assert_eq!(serde_json::from_value::<StringList>(json!(items.clone())).unwrap().0, items);
    }
}

// Known failures in `config.rs`, reported rather than fixed here (that file is being changed elsewhere). Run them
// with `cargo test -p callsign-server --test properties -- --ignored`.
proptest! {
    #![proptest_config(config(64))]

    /// A password with an `@` in it (as a URL parser takes it: the last `@` ends the user information) is hidden
    /// too: `postgres://u:p@ss@host/db` → `postgres://u:***@host/db`.
    #[test]
    fn redact_url_hides_passwords_with_at_signs(user in "[a-z]{1,8}", a in "[A-Za-z0-9]{3,10}", b in "[A-Za-z0-9]{6,10}", host in "[a-z]{1,10}") {
        let url = format!("postgres://{user}:{a}@{b}@{host}/db");
        let parsed = reqwest::Url::parse(&url).unwrap();
        let as_parsed = format!("{a}%40{b}");
        prop_assert_eq!(parsed.password(), Some(as_parsed.as_str()));
        let redacted = config::redact_url(&url);
        prop_assert!(!redacted.contains(&a) && !redacted.contains(&b), "{}", redacted);
    }

    /// A password given as the `password` query parameter (which sqlx's PostgreSQL URL accepts) is hidden too.
    #[test]
    fn redact_url_hides_password_parameters(pw in "[A-Za-z0-9]{8,16}") {
        let redacted = config::redact_url(&format!("postgres://u@host/db?sslmode=disable&password={pw}"));
        prop_assert!(!redacted.contains(&pw), "{}", redacted);
    }

    /// A value of the wrong type for a known setting is refused naming the setting (`listen = 5` →
    /// `config file `c.toml`: listen: invalid type: integer `5`, expected a string`).
    #[test]
    fn toml_type_errors_name_the_setting(key in select(&["listen", "public_url", "log_level", "delivery_workers", "tls"][..]), value in select(&["5", "true", "[1]", "1.5"][..])) {
        // A number is the right type for `delivery_workers`.
        prop_assume!(!(key == "delivery_workers" && value == "5"));
        let e = RawConfig::from_toml(&format!("{key} = {value}"), "config file `c.toml`").unwrap_err().0;
        prop_assert!(e.contains(key), "{}", e);
    }
}

// --- request bodies ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// The token and MFA request types never panic on any JSON value, any bytes, or any urlencoded text.
    #[test]
    fn bodies_never_panic(v in arb_json(TOKEN_FIELDS), m in arb_json(MFA_FIELDS), bytes in vec(any::<u8>(), 0..64), form in arb_form(TOKEN_FIELDS), mform in arb_form(MFA_FIELDS)) {
        let _ = serde_json::from_value::<TokenRequest>(v.clone());
        let _ = serde_json::from_value::<AssociateRequest>(m.clone());
        let _ = serde_json::from_value::<ChallengeRequest>(m);
        let _ = serde_json::from_slice::<TokenRequest>(&bytes);
        let _ = serde_json::from_slice::<AssociateRequest>(&bytes);
        let _ = serde_urlencoded::from_str::<TokenRequest>(&form);
        let _ = serde_urlencoded::from_str::<AssociateRequest>(&mform);
        let _ = serde_urlencoded::from_str::<ChallengeRequest>(&mform);
        // An object whose token fields are strings or null is accepted (other members ignored) and read field by
        // field.
        if let Value::Object(o) = &v
            && TOKEN_FIELDS.iter().all(|f| o.get(*f).is_none_or(|x| x.is_string() || x.is_null()))
        {
            let r = serde_json::from_value::<TokenRequest>(v.clone());
            prop_assert!(r.is_ok(), "{:?}", r);
            let r = r.unwrap();
            for f in TOKEN_FIELDS {
                prop_assert_eq!(token_field(&r, f).as_deref(), o.get(*f).and_then(Value::as_str));
            }
        }
    }

    /// A token request written as a form (any values, any subset of fields) reads back the same, field by field;
    /// likewise as JSON.
    #[test]
    fn token_request_form_round_trip(fields in btree_map(select(TOKEN_FIELDS), any::<String>(), 0..TOKEN_FIELDS.len())) {
        let form = serde_urlencoded::to_string(&fields).unwrap();
        let parsed: TokenRequest = serde_urlencoded::from_str(&form).unwrap();
        let json: TokenRequest = serde_json::from_value(serde_json::to_value(&fields).unwrap()).unwrap();
        for f in TOKEN_FIELDS {
            let want = fields.get(f).map(String::as_str);
            prop_assert_eq!(token_field(&parsed, f).as_deref(), want, "{}", f);
            prop_assert_eq!(token_field(&json, f).as_deref(), want, "{}", f);
        }
    }

    /// MFA request fields arrive from JSON as given.
    #[test]
    fn mfa_requests_read_fields(types in vec(any::<String>(), 0..3), channels in vec(any::<String>(), 0..3), phone in any::<String>(), id in any::<String>()) {
        let a: AssociateRequest = serde_json::from_value(json!({"authenticator_types": types, "oob_channels": channels, "phone_number": phone})).unwrap();
        prop_assert_eq!(&a.authenticator_types, &types);
        prop_assert_eq!(&a.oob_channels, &channels);
        prop_assert_eq!(a.phone_number.as_deref(), Some(phone.as_str()));
        let c: ChallengeRequest = serde_urlencoded::from_str(&serde_urlencoded::to_string([("authenticator_id", &id), ("challenge_type", &phone)]).unwrap()).unwrap();
        prop_assert_eq!(c.authenticator_id.as_deref(), Some(id.as_str()));
        prop_assert_eq!(c.challenge_type.as_deref(), Some(phone.as_str()));
    }

    /// `split_authenticator_id` splits at the first `|`: the type has none, and joining gives the id back.
    #[test]
    fn authenticator_ids_split(id in prop_oneof![any::<String>(), "(sms|voice|phone|recovery-code)?\\|?dev_[a-zA-Z0-9|]{0,16}"]) {
        match split_authenticator_id(&id) {
            (Some(t), rest) => {
                prop_assert!(!t.contains('|'));
                prop_assert_eq!(format!("{t}|{rest}"), id);
            }
            (None, rest) => {
                prop_assert!(!id.contains('|'));
                prop_assert_eq!(rest, id.as_str());
            }
        }
    }
}

// --- other small parsers at the edge ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Language negotiation returns a supported language; a supported tag in `ui_locales` wins.
    #[test]
    fn languages_negotiate(ui in proptest::option::of(prop_oneof!["([a-zA-Z_-]{0,6} ?){0,4}", any::<String>()]),
                           accept in proptest::option::of(prop_oneof!["([a-zA-Z*-]{0,6}(;q=[0-9.a-zNI]{0,5})?, ?){0,4}", any::<String>()]),
                           pick in select(&["en", "fr", "es"][..])) {
        const S: &[&str] = &["en", "fr", "es"];
        let got = i18n::negotiate(ui.as_deref(), accept.as_deref(), S);
        prop_assert!(S.contains(&got));
        let ui_with = format!("xx {}-CA {}", pick.to_ascii_uppercase(), ui.unwrap_or_default());
        prop_assert_eq!(i18n::negotiate(Some(&ui_with), accept.as_deref(), S), pick);
        prop_assert!(callsign_server::login::countries::known(callsign_server::login::countries::default_region(accept.as_deref(), got)));
    }

    /// The cookie reader finds the first value of the named cookie among several headers, and never panics.
    #[test]
    fn cookies_read(pairs in vec(("[a-z_]{1,6}", "[A-Za-z0-9_-]{0,12}"), 0..6), name in "[a-z_]{1,6}", junk in vec(any::<u8>(), 0..40)) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&junk) {
            let _ = cookies::get(&HeaderMap::from_iter([(header::COOKIE, v)]), &name);
        }
        for chunk in pairs.chunks(2) {
            let text = chunk.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            h.append(header::COOKIE, HeaderValue::from_str(&text).unwrap());
        }
        let want = pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        prop_assert_eq!(cookies::get(&h, &name), want);
    }

    /// PKCE: the S256 challenge of a verifier matches it and no other; verifiers of the right shape are accepted.
    #[test]
    fn pkce(verifier in "[A-Za-z0-9._~-]{43,128}", other in any::<String>()) {
        use sha2::Digest;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        prop_assert!(callsign_server::login::authorize::is_pkce_string(&verifier));
        prop_assert!(callsign_server::login::authorize::is_pkce_string(&challenge));
        prop_assert!(callsign_server::login::token::pkce_matches(&verifier, &challenge));
        prop_assert_eq!(callsign_server::login::token::pkce_matches(&other, &challenge), other == verifier);
        let spaced = format!("{verifier} ");
        prop_assert!(!callsign_server::login::authorize::is_pkce_string(&spaced));
    }

    /// A Twilio signature verifies for its URL written with or without the default port, and not under another
    /// token or for other parameters; `verify` never panics on any URL.
    #[test]
    fn twilio_signatures(token in "[a-f0-9]{32}", host in "[a-z]{1,10}\\.example", path in "(/[a-zA-Z0-9_]{0,8}){0,3}",
                         params in vec(("[A-Za-z]{1,8}", any::<String>()), 0..6), any_url in any::<String>(), given in any::<String>()) {
        let url = format!("https://{host}{path}");
        let sig = twilio::signature(&token, &url, &params);
        prop_assert!(twilio::verify(&token, &url, &params, &sig));
        let padded = format!(" {sig}\n");
        prop_assert!(twilio::verify(&token, &url, &params, &padded));
        let with_port = format!("https://{host}:443{path}");
        prop_assert!(twilio::verify(&token, &with_port, &params, &sig));
        let other_token = format!("{token}0");
        prop_assert!(!twilio::verify(&other_token, &url, &params, &sig));
        let mut more = params.clone();
        more.push(("Zz".into(), "extra".into()));
        prop_assert!(!twilio::verify(&token, &url, &more, &sig));
        let _ = twilio::verify(&token, &any_url, &params, &given);
    }

    /// Twilio error bodies of any shape give `{code, message, status}`; a non-JSON body is quoted, 200 characters
    /// at most.
    #[test]
    fn twilio_error_bodies(status in any::<u16>(), body in prop_oneof![any::<String>(), arb_json(&["code", "message", "detail", "title", "status"]).prop_map(|v| v.to_string())]) {
        let v = twilio::parse_error(status, &body);
        let o = v.as_object().unwrap();
        prop_assert_eq!(o.len(), 3);
        prop_assert!(o["status"].is_u64());
        if let Some(m) = o["message"].as_str() {
            prop_assert!(!m.is_empty());
            if serde_json::from_str::<Value>(&body).is_err() {
                prop_assert!(m.chars().count() <= 200);
            }
        }
    }

    /// TwiML escapes the text: no markup from the message survives, nor characters XML forbids.
    #[test]
    fn twiml_escapes(text in any::<String>(), locale in any::<String>()) {
        let e = twilio::xml_escape(&text);
        prop_assert!(!e.contains(['<', '>', '"', '\'']));
        prop_assert!(!e.chars().any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')));
        let t = twilio::twiml(&text, &locale);
        prop_assert_eq!(t.matches("<Say").count(), 2);
        prop_assert_eq!(t.matches(e.as_str()).count() >= 2, true);
    }

    /// Webhook URLs: never a panic; what is accepted is https with a host, or plain http to the loopback, and
    /// carries no credentials.
    #[test]
    fn webhook_urls(raw in prop_oneof![any::<String>(), "(https?|ftp|file)://([a-z]{0,4}(:[a-z]{0,4})?@)?[a-z0-9.:\\[\\]]{0,20}(/[a-z]{0,5})?"]) {
        if let Ok(u) = webhook::check_url(&raw) {
            prop_assert!(u.username().is_empty() && u.password().is_none());
            let host = u.host_str().unwrap_or_default();
            prop_assert!((u.scheme() == "https" && !host.is_empty())
                || (u.scheme() == "http" && matches!(host, "127.0.0.1" | "localhost" | "[::1]")), "{}", u);
        }
    }

    /// A dashboard path segment is unreserved characters and `%XX` only, and decodes back to the input.
    #[test]
    fn path_segments(s in any::<String>()) {
        let e = callsign_server::dashboard::api::seg(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        let mut out = Vec::new();
        let b = e.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        prop_assert_eq!(out, s.as_bytes());
    }
}

// --- the router with arbitrary requests ---------------------------------------------------------------------------

const PW: &str = "Str0ng-Passw0rd";

/// Values the fuzzer can put in bodies by name, resolved against the running app.
struct Known {
    cid: String,
    secret: String,
    admin: String,
    mfa: String,
    user_id: String,
}

impl Known {
    fn resolve(&self, s: &str) -> String {
        match s {
            "$CID" => self.cid.clone(),
            "$SECRET" => self.secret.clone(),
            "$ADMIN" => self.admin.clone(),
            "$MFA" => self.mfa.clone(),
            "$USER" => self.user_id.clone(),
            "$EMAIL" => "ann@example.com".into(),
            "$PW" => PW.into(),
            other => other.replace("$USER", &self.user_id),
        }
    }
    fn resolve_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.resolve(s),
            Value::Array(a) => a.iter_mut().for_each(|v| self.resolve_json(v)),
            Value::Object(o) => o.values_mut().for_each(|v| self.resolve_json(v)),
            _ => {}
        }
    }
}

/// Routes of the public surfaces and the Management API, each with its method and the credential it expects
/// (0 none, 1 the Management token, 2 the mfa_token). Left out: anything that could make the server call out
/// (the webhook provider, provider selection and `try` endpoints).
const ROUTES: &[(&str, &str, usize)] = &[
    ("POST", "/oauth/token", 0),
    ("POST", "/oauth/token", 3),
    ("POST", "/mfa/associate", 2),
    ("POST", "/mfa/challenge", 0),
    ("GET", "/mfa/authenticators", 2),
    ("DELETE", "/mfa/authenticators/sms|dev_x", 2),
    ("DELETE", "/mfa/authenticators/recovery-code|$USER", 2),
    ("GET", "/authorize?client_id=$CID&response_type=code&redirect_uri=http://x", 0),
    ("POST", "/u/login", 0),
    ("POST", "/u/mfa/code", 0),
    ("POST", "/u/mfa/enroll", 0),
    ("GET", "/userinfo", 1),
    ("POST", "/dashboard/login", 0),
    ("POST", "/dashboard/setup/abc", 0),
    ("POST", "/callbacks/twilio/status/job1", 0),
    ("POST", "/api/v2/users", 1),
    ("GET", "/api/v2/users", 1),
    ("GET", "/api/v2/users/$USER", 1),
    ("PATCH", "/api/v2/users/$USER", 1),
    ("GET", "/api/v2/users/%ZZ", 1),
    ("GET", "/api/v2/users-by-email?email=ann@example.com", 1),
    ("GET", "/api/v2/users/$USER/enrollments", 1),
    ("DELETE", "/api/v2/users/$USER/authenticators", 1),
    ("GET", "/api/v2/users/$USER/logs?page=-1&per_page=x", 1),
    ("GET", "/api/v2/logs?q=type:s&page=1&per_page=2&include_totals=maybe", 1),
    ("POST", "/api/v2/clients", 1),
    ("PATCH", "/api/v2/clients/$CID", 1),
    ("POST", "/api/v2/client-grants", 1),
    ("PATCH", "/api/v2/tenants/settings", 1),
    ("PUT", "/api/v2/guardian/factors/sms", 1),
    ("PUT", "/api/v2/guardian/factors/recovery-code", 1),
    ("PUT", "/api/v2/guardian/factors/phone/message-types", 1),
    ("PUT", "/api/v2/guardian/factors/sms/templates", 1),
    ("PUT", "/api/v2/guardian/factors/phone/templates", 1),
    ("PUT", "/api/v2/guardian/policies", 1),
    ("POST", "/api/v2/guardian/enrollments/ticket", 1),
    ("POST", "/api/v2/branding/phone/templates", 1),
    ("PATCH", "/api/v2/branding/phone/templates/x", 1),
    ("GET", "/api/v2/dev-inbox", 1),
];

const FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "audience",
    "scope",
    "username",
    "password",
    "realm",
    "mfa_token",
    "oob_code",
    "binding_code",
    "recovery_code",
    "authenticator_types",
    "oob_channels",
    "phone_number",
    "challenge_type",
    "authenticator_id",
    "email",
    "connection",
    "enabled",
    "message_types",
    "enrollment_message",
    "verification_message",
    "policies",
    "name",
    "grant_types",
    "app_type",
    "user_id",
    "friendly_name",
    "content",
    "type",
    "body",
    "text",
    "csrf",
    "code",
    "state",
];

/// A value for a body member: a known value by name, a likely one, or anything.
fn field_value() -> impl Strategy<Value = Value> {
    const LIKELY: &[&str] = &[
        "$CID",
        "$SECRET",
        "$MFA",
        "$EMAIL",
        "$PW",
        "$USER",
        "$ADMIN",
        "client_credentials",
        "password",
        "http://auth0.com/oauth/grant-type/password-realm",
        "http://auth0.com/oauth/grant-type/mfa-oob",
        "http://auth0.com/oauth/grant-type/mfa-recovery-code",
        "http://auth0.com/oauth/grant-type/mfa-otp",
        "authorization_code",
        "refresh_token",
        "oob",
        "sms",
        "voice",
        "+14155552671",
        "+1415-555-2671",
        "+44 20 7183",
        "Username-Password-Authentication",
        "{{ code }}",
        "{% if %}",
        "{{ nope }}",
        "all-applications",
        "sms|dev_x",
    ];
    prop_oneof![
        4 => select(LIKELY).prop_map(Value::from),
        1 => select(LIKELY).prop_map(|s| json!([s])),
        1 => vec(select(LIKELY), 0..3).prop_map(|v| json!(v)),
        2 => arb_json(FIELDS),
    ]
}

#[derive(Debug, Clone)]
enum BodyGen {
    Json(BTreeMap<&'static str, Value>),
    Form(Vec<(&'static str, String)>),
    Raw(Vec<u8>),
    AnyJson(Value),
}

/// The members that get a request past its first checks: a grant, the client's credentials, the mfa_token.
fn core_members() -> impl Strategy<Value = BTreeMap<&'static str, Value>> {
    const GRANTS: &[&str] = &[
        "password",
        "http://auth0.com/oauth/grant-type/mfa-oob",
        "http://auth0.com/oauth/grant-type/mfa-recovery-code",
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ];
    let some = |p| proptest::option::weighted(p, Just(()));
    (proptest::option::weighted(0.5, select(GRANTS)), some(0.7), some(0.6), some(0.5), some(0.3)).prop_map(
        |(grant, cid, secret, mfa, user)| {
            let mut m = BTreeMap::new();
            if let Some(g) = grant {
                m.insert("grant_type", json!(g));
            }
            for (on, k, v) in
                [(cid, "client_id", "$CID"), (secret, "client_secret", "$SECRET"), (mfa, "mfa_token", "$MFA")]
            {
                if on.is_some() {
                    m.insert(k, json!(v));
                }
            }
            if user.is_some() {
                m.insert("username", json!("$EMAIL"));
                m.insert("password", json!("$PW"));
            }
            m
        },
    )
}

fn body_gen() -> impl Strategy<Value = BodyGen> {
    prop_oneof![
        3 => btree_map(select(FIELDS), field_value(), 0..7).prop_map(BodyGen::Json),
        4 => (core_members(), btree_map(select(FIELDS), field_value(), 0..4)).prop_map(|(mut core, more)| {
            core.extend(more);
            BodyGen::Json(core)
        }),
        2 => vec((select(FIELDS), prop_oneof![field_value().prop_map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())), any::<String>()]), 0..7).prop_map(BodyGen::Form),
        1 => vec(any::<u8>(), 0..80).prop_map(BodyGen::Raw),
        1 => arb_json(FIELDS).prop_map(BodyGen::AnyJson),
    ]
}

#[derive(Debug, Clone)]
struct ReqGen {
    method: &'static str,
    path: &'static str,
    suffix: String,
    content_type: Option<&'static str>,
    auth: usize,
    body: BodyGen,
}

/// A route with its own method and credential most of the time, another method or credential sometimes.
fn req_gen() -> impl Strategy<Value = ReqGen> {
    (
        select(ROUTES),
        proptest::option::weighted(0.1, select(&["GET", "POST", "PUT", "PATCH", "DELETE"][..])),
        proptest::option::weighted(0.15, 0usize..5),
        prop_oneof![6 => Just(String::new()), 1 => "[?&=a-z0-9%|.+]{0,12}"],
        select(
            &[
                Some("application/json"),
                Some("application/json"),
                Some("application/x-www-form-urlencoded"),
                Some("text/plain"),
                Some("application/json; charset=utf-8"),
                None,
            ][..],
        ),
        body_gen(),
    )
        .prop_map(|((method, path, auth), other_method, other_auth, suffix, content_type, body)| ReqGen {
            method: other_method.unwrap_or(method),
            path,
            suffix,
            content_type,
            auth: other_auth.unwrap_or(auth),
            body,
        })
}

async fn call(router: &axum::Router, req: Request<axum::body::Body>) -> (u16, Value) {
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn json_req(method: Method, path: &str, bearer: Option<&str>, body: &Value) -> Request<axum::body::Body> {
    let mut b = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(axum::body::Body::from(body.to_string())).unwrap()
}

/// An app with the phone factor on, a user with a password and an application that may use the MFA grants, and an
/// `mfa_token` for that user.
async fn fuzz_app(dir: &std::path::Path) -> (axum::Router, Known) {
    let raw = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.join("data")),
        database_url: Some(format!("sqlite://{}/callsign.db", dir.display())),
        // Nothing the fuzzer does may reach the internet.
        providers: Some(
            [("twilio".to_owned(), RawProvider { base_url: Some("http://127.0.0.1:9".to_owned()) })].into(),
        ),
        ..Default::default()
    };
    let config = Config::resolve(raw).unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let (app, report) =
        callsign_server::app::AppState::start(config, Arc::new(clock), Arc::new(OsRandom)).await.unwrap();
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(report.bootstrap_file.unwrap()).unwrap()).unwrap();
    let router = callsign_server::http::router(app.clone());
    let (s, t) = call(&router, json_req(Method::POST, "/oauth/token", None, &json!({
        "grant_type": "client_credentials", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "audience": app.config.management_audience(),
    }))).await;
    assert_eq!(s, 200, "{t}");
    let admin = t["access_token"].as_str().unwrap().to_owned();
    let (s, u) = call(
        &router,
        json_req(
            Method::POST,
            "/api/v2/users",
            Some(&admin),
            &json!({
                "connection": "Username-Password-Authentication", "email": "ann@example.com", "password": PW,
            }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let (s, c) = call(&router, json_req(Method::POST, "/api/v2/clients", Some(&admin), &json!({
        "name": "app", "app_type": "regular_web",
        "grant_types": ["password", "http://auth0.com/oauth/grant-type/mfa-oob", "http://auth0.com/oauth/grant-type/mfa-recovery-code"],
    }))).await;
    assert_eq!(s, 201, "{c}");
    let mut g = GuardianConfig::load_for_update(&app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.factors.insert("recovery-code".into(), true);
    g.policies = vec!["all-applications".into()];
    g.message_types = vec!["sms".into(), "voice".into()];
    g.save(&app).await.unwrap();
    let (cid, secret) = (c["client_id"].as_str().unwrap().to_owned(), c["client_secret"].as_str().unwrap().to_owned());
    let (s, m) = call(&router, json_req(Method::POST, "/oauth/token", None, &json!({
        "grant_type": "password", "client_id": cid, "client_secret": secret, "username": "ann@example.com", "password": PW,
    }))).await;
    assert_eq!(s, 403, "{m}");
    let mfa = m["mfa_token"].as_str().unwrap().to_owned();
    (router, Known { cid, secret, admin, mfa, user_id: u["user_id"].as_str().unwrap().to_owned() })
}

fn build(k: &Known, g: &ReqGen) -> Request<axum::body::Body> {
    let uri = format!("{}{}", k.resolve(g.path), g.suffix);
    let mut b = Request::builder().method(g.method).uri(uri.replace('|', "%7C"));
    if let Some(ct) = g.content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", k.cid, k.secret));
    match g.auth {
        1 => b = b.header(header::AUTHORIZATION, format!("Bearer {}", k.admin)),
        2 => b = b.header(header::AUTHORIZATION, format!("Bearer {}", k.mfa)),
        3 => b = b.header(header::AUTHORIZATION, format!("Basic {basic}")),
        4 => b = b.header(header::AUTHORIZATION, "Bearer a.b.c"),
        _ => {}
    }
    let body = match &g.body {
        BodyGen::Json(m) => {
            let mut v = json!(m);
            k.resolve_json(&mut v);
            if g.content_type == Some("application/x-www-form-urlencoded") {
                let pairs: Vec<(String, String)> = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                    .collect();
                serde_urlencoded::to_string(pairs).unwrap().into_bytes()
            } else {
                v.to_string().into_bytes()
            }
        }
        BodyGen::Form(pairs) => {
            let pairs: Vec<(&str, String)> = pairs.iter().map(|(n, v)| (*n, k.resolve(v))).collect();
            serde_urlencoded::to_string(pairs).unwrap().into_bytes()
        }
        BodyGen::Raw(bytes) => bytes.clone(),
        BodyGen::AnyJson(v) => v.to_string().into_bytes(),
    };
    b.body(axum::body::Body::from(body)).unwrap()
}

/// The whole router, fed arbitrary requests (bodies made of the real names and values, and of anything), never
/// answers with a server error. One app serves every case, so state built by earlier cases (enrollments,
/// templates, clients) shapes later ones.
#[test]
fn router_never_answers_5xx() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, known) = rt.block_on(fuzz_app(dir.path()));
    let mut runner = TestRunner::new(config(64));
    runner
        .run(&req_gen(), |g| {
            let req = build(&known, &g);
            let (status, body) = rt.block_on(call(&router, req));
            prop_assert!(status < 500, "{} {}{} -> {} {}", g.method, g.path, g.suffix, status, body);
            Ok(())
        })
        .unwrap();
}

/// The Management API keeps templates to 1–20000 characters that compile, on both the Guardian and the Unified
/// Phone Experience endpoints.
#[test]
fn management_api_template_limits() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, k) = rt.block_on(fuzz_app(dir.path()));
    rt.block_on(async {
        let put = |msg: String| {
            json_req(
                Method::PUT,
                "/api/v2/guardian/factors/sms/templates",
                Some(&k.admin),
                &json!({
                    "enrollment_message": msg, "verification_message": "{{code}}",
                }),
            )
        };
        // A code message must carry the code: the longest one is the code and 19 992 more characters.
        assert_eq!(call(&router, put(format!("{{{{code}}}}{}", "é".repeat(19_992)))).await.0, 200);
        let (s, e) = call(&router, put("é".repeat(20_000))).await;
        assert_eq!(s, 400, "no code");
        assert!(e["message"].as_str().unwrap().contains("has no code"), "{e}");
        let (s, e) = call(&router, put("é".repeat(20_001))).await;
        assert_eq!(s, 400, "{e}");
        assert!(e["message"].as_str().unwrap().contains("20000"), "{e}");
        assert_eq!(call(&router, put("{% if %}".into())).await.0, 400);
        let create = |kind: &str, text: String| {
            json_req(
                Method::POST,
                "/api/v2/branding/phone/templates",
                Some(&k.admin),
                &json!({
                    "type": kind, "content": {"body": {"text": text}},
                }),
            )
        };
        assert_eq!(call(&router, create("blocked_account", "€".repeat(20_001))).await.0, 400);
        let (s, t) = call(&router, create("change_password", format!("{{{{code}}}}{}", "€".repeat(19_992)))).await;
        assert_eq!(s, 201, "{t}");
        let id = t["id"].as_str().unwrap().to_owned();
        let patch = |text: String| {
            json_req(
                Method::PATCH,
                &format!("/api/v2/branding/phone/templates/{id}"),
                Some(&k.admin),
                &json!({
                    "content": {"body": {"text": text}},
                }),
            )
        };
        assert_eq!(call(&router, patch(format!("{{{{code}}}}{}", "€".repeat(19_992)))).await.0, 200);
        assert_eq!(call(&router, patch("€".repeat(20_000))).await.0, 400, "no code");
        assert_eq!(call(&router, patch("€".repeat(20_001))).await.0, 400);
        assert_eq!(call(&router, patch(String::new())).await.0, 400);
    });
}
