//! Property tests for the parsers at the edge of the system: phone numbers, one-time and recovery codes, scope
//! strings, email and password rules, keyring text, and the id and date formats built from untrusted numbers.
//!
//! Runs are deterministic (a fixed seed unless `PROPTEST_RNG_SEED` is set; `PROPTEST_CASES` overrides the case
//! counts) and write no failure-persistence files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callsign_domain::clock::Timestamp;
use callsign_domain::ids;
use callsign_domain::otp::{self, OtpCode};
use callsign_domain::phone::{self, PhoneError, PhoneNumber};
use callsign_domain::rng::SeededRandom;
use callsign_domain::scopes;
use callsign_domain::seal::Keyring;
use callsign_domain::user::{Email, UserRuleError, check_password_policy};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

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

/// Strings a client might send where a phone number is expected: anything, phone-ish text, very long text,
/// runs of `+` signs, and unicode digits and spaces.
fn phoneish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+0-9 .()-]{0,40}",
        "(00|\\+){0,3}[0-9 ]{0,20}",
        "\\+{0,200}[0-9]{0,20}\\+{0,5}",
        "[+0-9]{0,10}[٠-٩０-９\u{00a0}\u{2007}\u{3000}]{0,10}[0-9]{0,10}",
        proptest::collection::vec("[+0-9 ]", 0..5000).prop_map(|v| v.concat()),
    ]
}

/// Candidate international numbers from a few numbering plans; many are valid.
fn candidate_number() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+1[2-9][0-9]{2}[2-9][0-9]{6}",
        "\\+447[0-9]{9}",
        "\\+4420[0-9]{8}",
        "\\+33[1-9][0-9]{8}",
        "\\+491[5-7][0-9]{8,9}",
        "\\+8190[0-9]{8}",
        "\\+61[2-4][0-9]{8}",
        "\\+55[1-9]{2}9[0-9]{8}",
        "\\+91[6-9][0-9]{9}",
        "\\+[1-9][0-9]{6,14}",
    ]
}

/// A number that parses, with the text it was parsed from.
fn valid_number() -> impl Strategy<Value = (String, PhoneNumber)> {
    candidate_number().prop_filter_map("not a valid number", |s| PhoneNumber::parse(&s).ok().map(|p| (s, p)))
}

/// What a phone number may be typed with between its digits.
const PHONE_SEPARATORS: &[&str] = &["", "", " ", "-", ".", " - ", "  "];
/// What a one-time or recovery code may be typed with.
const CODE_SEPARATORS: &[&str] = &["", "", " ", "-", "\t", " - "];

/// `text` with a separator after each character, picked from `from` by the numbers in `picks`.
fn interleave(text: &str, picks: &[usize], from: &[&str]) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        out.push(c);
        out.push_str(from[picks.get(i).copied().unwrap_or(0) % from.len()]);
    }
    out
}

// Phone numbers: the numbering-plan parser compiles its patterns into a small cache that numbers of many
// countries keep evicting, which is slow in debug builds; hence fewer cases.
proptest! {
    #![proptest_config(config(64))]

    /// `parse` never panics; `Missing` exactly for blank input; the other errors carry the input as given.
    #[test]
    fn phone_parse_never_panics_and_classifies(s in phoneish()) {
        match PhoneNumber::parse(&s) {
            Ok(p) => prop_assert!(p.e164().starts_with('+')),
            Err(PhoneError::Missing) => prop_assert!(s.trim().is_empty()),
            Err(PhoneError::Unparseable(raw) | PhoneError::Invalid(raw)) => {
                prop_assert!(!s.trim().is_empty());
                prop_assert_eq!(raw, s);
            }
        }
    }

    /// `parse_in` never panics, whatever the region text; an international number ignores the region.
    #[test]
    fn phone_parse_in_never_panics(s in phoneish(), region in prop_oneof![any::<String>(), "[a-zA-Z]{0,3}"]) {
        let r = PhoneNumber::parse_in(&s, &region);
        let t = s.trim();
        if t.starts_with('+') || t.starts_with("00") {
            prop_assert_eq!(r, PhoneNumber::parse(t));
        }
        let _ = phone::calling_code(&region);
    }

    /// A parsed number is E.164 (`+` and at most 15 digits, no leading zero), and re-parses to itself, also
    /// written with `00`.
    #[test]
    fn phone_e164_round_trips((_, p) in valid_number()) {
        let e = p.e164();
        let digits = &e[1..];
        prop_assert!(e.starts_with('+'));
        prop_assert!((2..=15).contains(&digits.len()), "{}", e);
        prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        prop_assert!(!digits.starts_with('0'));
        prop_assert_eq!(&PhoneNumber::parse(e).unwrap(), &p);
        prop_assert_eq!(&PhoneNumber::parse(&format!("00{digits}")).unwrap(), &p);
        prop_assert_eq!(&PhoneNumber::parse(&format!("  {e}\t")).unwrap(), &p);
    }

    /// Spaces, dots and dashes between the digits do not change the number (within the 32-character limit).
    #[test]
    fn phone_separators_do_not_matter((_, p) in valid_number(), seps in proptest::collection::vec(0usize..8, 16)) {
        let formatted = format!("+{}", interleave(&p.e164()[1..], &seps, PHONE_SEPARATORS));
        prop_assume!(formatted.len() <= 32);
        prop_assert_eq!(PhoneNumber::parse(&formatted).unwrap(), p);
    }

    /// A number written in its country's national format, with that country picked, is the same number.
    #[test]
    fn phone_national_format_round_trips((_, p) in valid_number()) {
        let region = p.country().unwrap_or("US").to_owned();
        let parsed = phonenumber::parse(None, p.e164()).unwrap();
        let national = parsed.format().mode(phonenumber::Mode::National).to_string();
        prop_assume!(phone::calling_code(&region) == Some(parsed.code().value()));
        prop_assert_eq!(PhoneNumber::parse_in(&national, &region).unwrap(), p.clone());
        prop_assert_eq!(PhoneNumber::parse_in(p.e164(), "ZZ").unwrap(), p);
    }

    /// A number's masked form and its `Debug` output show at most its last four digits: no five consecutive
    /// characters of the number appear in either.
    #[test]
    fn phone_debug_and_masked_hide_the_number((_, p) in valid_number()) {
        let e = p.e164();
        let masked = p.masked();
        let debug = format!("{p:?}");
        prop_assert!(masked.ends_with(&e[e.len() - 4..]));
        prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 4);
        for w in e.as_bytes().windows(5) {
            let w = std::str::from_utf8(w).unwrap();
            prop_assert!(!masked.contains(w) && !debug.contains(w), "{} leaks {}", debug, w);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// `mask`: same length in characters, `X` everywhere but the last four, which are kept as they were.
    #[test]
    fn mask_reveals_only_the_last_four(s in any::<String>()) {
        let m = phone::mask(&s);
        let orig: Vec<char> = s.chars().collect();
        let out: Vec<char> = m.chars().collect();
        prop_assert_eq!(out.len(), orig.len());
        let keep = orig.len().saturating_sub(4);
        prop_assert!(out[..keep].iter().all(|c| *c == 'X'));
        prop_assert_eq!(&out[keep..], &orig[keep..]);
    }

    // --- one-time codes and recovery codes ---------------------------------------------------------------------

    /// A generated code is six ASCII digits, never in its `Debug` output, and verifies against its hash as typed
    /// with spaces and dashes; under another key or binding it does not.
    #[test]
    fn otp_code_verifies_as_typed(seed in any::<u64>(), key in proptest::collection::vec(any::<u8>(), 0..64),
                                  binding in any::<String>(), seps in proptest::collection::vec(0usize..8, 6)) {
        let code = OtpCode::generate(&SeededRandom::new(seed));
        let c = code.expose();
        prop_assert!(c.len() == otp::CODE_DIGITS && c.bytes().all(|b| b.is_ascii_digit()));
        let debug = format!("{code:?}");
        prop_assert!(!debug.contains(c));
        let stored = code.hash(&key, &binding);
        prop_assert!(otp::verify_code(&key, &binding, c, &stored));
        let typed = format!(" {} ", interleave(c, &seps, CODE_SEPARATORS));
        prop_assert!(otp::verify_code(&key, &binding, &typed, &stored));
        let other_binding = format!("{binding}x");
        prop_assert!(!otp::verify_code(&key, &other_binding, c, &stored));
        let mut other_key = key.clone();
        other_key.push(1);
        prop_assert!(!otp::verify_code(&other_key, &binding, c, &stored));
    }

    /// Anything presented that is not the code (once spaces and dashes are dropped) is refused, and nothing panics.
    #[test]
    fn otp_other_input_is_refused(seed in any::<u64>(), presented in prop_oneof![any::<String>(), "[0-9 -]{0,12}", "[0-9٠-٩]{6}"]) {
        let code = OtpCode::generate(&SeededRandom::new(seed));
        let stored = code.hash(b"k", "b");
        let cleaned: String = presented.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        prop_assert_eq!(otp::verify_code(b"k", "b", &presented, &stored), cleaned == code.expose());
        // A stored value that is not a hash at all is never matched.
        prop_assert!(!otp::verify_code(b"k", "b", &presented, &presented));
    }

    /// Recovery-code normalisation is idempotent and leaves no whitespace, dash or ASCII lower case.
    #[test]
    fn recovery_normalisation_is_idempotent(s in any::<String>()) {
        let n = otp::normalize_recovery_code(&s);
        prop_assert_eq!(otp::normalize_recovery_code(&n), n.clone());
        prop_assert!(!n.chars().any(|c| c.is_whitespace() || c == '-' || c.is_ascii_lowercase()));
    }

    /// A generated recovery code is 24 upper-case alphanumerics and survives being typed in lower case with
    /// spaces and dashes.
    #[test]
    fn recovery_code_survives_typing(seed in any::<u64>(), seps in proptest::collection::vec(0usize..8, 24), lower in any::<bool>()) {
        let code = otp::generate_recovery_code(&SeededRandom::new(seed));
        prop_assert!(code.len() == otp::RECOVERY_CODE_LEN && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        prop_assert_eq!(otp::normalize_recovery_code(&code), code.clone());
        let typed = interleave(&code, &seps, CODE_SEPARATORS);
        let typed = if lower { typed.to_lowercase() } else { typed };
        prop_assert_eq!(otp::normalize_recovery_code(&format!("\t{typed} ")), code);
    }

    // --- scopes -----------------------------------------------------------------------------------------------

    /// `split` keeps each whitespace-separated word once, in order of first appearance, and nothing else.
    #[test]
    fn scope_split_dedups_in_order(s in prop_oneof![any::<String>(), "([a-z:_]{1,6}[ \t\n]{1,3}){0,12}"]) {
        let out = scopes::split(&s);
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let mut expected: Vec<&str> = Vec::new();
        for w in &words {
            if !expected.contains(w) {
                expected.push(w);
            }
        }
        prop_assert_eq!(&out, &expected);
        prop_assert!(out.iter().all(|w| !w.is_empty() && !w.bytes().any(|b| b.is_ascii_whitespace())));
        prop_assert_eq!(scopes::split(&out.join(" ")), out);
    }

    /// A scope string made of Management scopes splits back into exactly those scopes.
    #[test]
    fn scope_split_round_trips_management_scopes(picks in proptest::collection::vec(0usize..scopes::ALL_MANAGEMENT.len(), 0..10)) {
        let mut want: Vec<String> = Vec::new();
        for i in picks {
            let s = scopes::ALL_MANAGEMENT[i].to_owned();
            if !want.contains(&s) {
                want.push(s);
            }
        }
        let out = scopes::split(&format!("  {}  ", want.join("   ")));
        prop_assert!(out.iter().all(|s| scopes::is_management_scope(s)));
        prop_assert_eq!(out, want);
    }

    // --- email and password rules -----------------------------------------------------------------------------

    /// `Email::parse` never panics; an accepted email is lower case, has one `@` with a dotted domain, no
    /// whitespace or control characters, fits the length limits, and parses to itself.
    #[test]
    fn email_parse_is_sound_and_idempotent(s in prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9.+_-]{0,70}@[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z]{1,10}){0,3}",
        "[A-Za-zİKÅẞΣ]{1,40}@[a-zİ]{1,10}\\.[a-z]{2,3}",
        "[aİ]{30,60}@example\\.com",
        "[ a-z@.\t\u{0}]{0,20}",
    ]) {
        if let Ok(e) = Email::parse(&s) {
            let t = e.as_str();
            prop_assert_eq!(t.to_lowercase(), t);
            prop_assert_eq!(t.matches('@').count(), 1);
            let (local, domain) = t.split_once('@').unwrap();
            prop_assert!(!local.is_empty() && local.len() <= 64 && t.len() <= 254, "{}", t);
            prop_assert!(domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
            prop_assert!(!t.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert_eq!(Email::parse(t), Ok(e.clone()));
        }
    }

    /// Emails differing only in ASCII case and surrounding whitespace are the same email.
    #[test]
    fn email_is_case_insensitive(local in "[a-zA-Z0-9._+-]{1,30}", domain in "[a-zA-Z0-9-]{1,20}\\.[a-zA-Z]{2,6}") {
        let s = format!("{local}@{domain}");
        let a = Email::parse(&s).unwrap();
        prop_assert_eq!(Email::parse(&format!(" {} ", s.to_ascii_uppercase())).unwrap(), a.clone());
        prop_assert_eq!(a.as_str(), s.to_ascii_lowercase());
    }

    /// Over 72 bytes is always too long; under 8 characters always too weak; 8+ characters with lower case,
    /// upper case and a digit always pass.
    #[test]
    fn password_policy_bounds(p in any::<String>(), strong in "[a-z]{1,20}[A-Z]{1,20}[0-9]{1,20}[a-z]{5,10}") {
        let r = check_password_policy(&p);
        if p.len() > 72 {
            prop_assert_eq!(r, Err(UserRuleError::LongPassword));
        } else if p.chars().count() < 8 {
            prop_assert_eq!(r, Err(UserRuleError::WeakPassword));
        }
        prop_assert_eq!(check_password_policy(&strong), Ok(()));
    }

    /// Adding characters to an accepted password never makes it weak (only, past 72 bytes, too long).
    #[test]
    fn password_policy_is_monotonic(p in "[ -~]{8,40}", extra in "\\PC{0,40}") {
        prop_assume!(check_password_policy(&p).is_ok());
        let longer = format!("{p}{extra}");
        let expected = if longer.len() > 72 { Err(UserRuleError::LongPassword) } else { Ok(()) };
        prop_assert_eq!(check_password_policy(&longer), expected);
    }

    // --- keyring text (the `encryption_keys` setting) ---------------------------------------------------------

    /// `Keyring::parse` never panics, and its errors never repeat the key text.
    #[test]
    fn keyring_parse_never_panics_nor_echoes_keys(lines in proptest::collection::vec(prop_oneof![
        any::<String>(),
        "[a-z0-9_-]{0,70}:[A-Za-z0-9+/=]{12,60}",
        "#.*",
        "[ \t]*",
    ], 0..6)) {
        let text = lines.join("\n");
        if let Err(e) = Keyring::parse(&text) {
            let msg = e.to_string();
            for line in &lines {
                if let Some((_, b64)) = line.split_once(':') {
                    let b64 = b64.trim();
                    prop_assert!(b64.len() < 12 || !msg.contains(b64), "{} contains {}", msg, b64);
                }
            }
        }
    }

    /// Generated key lines, with comments and blank lines between, parse: the first is active, all are known, and
    /// what the ring seals it opens (only under the same context).
    #[test]
    fn keyring_round_trips(seed in any::<u64>(), ids in proptest::collection::btree_set("[A-Za-z0-9_-]{1,64}", 1..5),
                           plaintext in proptest::collection::vec(any::<u8>(), 0..200), context in ".{0,40}") {
        let rng = SeededRandom::new(seed);
        let ids: Vec<String> = ids.into_iter().collect();
        let text: Vec<String> =
            ids.iter().map(|id| format!("# key {id}\n\n  {}  ", Keyring::generate_line(&rng, id))).collect();
        let ring = Keyring::parse(&text.join("\n")).unwrap();
        prop_assert_eq!(ring.active_key_id(), ids[0].as_str());
        let mut known: Vec<&str> = ring.key_ids().collect();
        known.sort_unstable();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort_unstable();
        prop_assert_eq!(known, want);
        let sealed = ring.seal(&rng, &context, &plaintext).unwrap();
        let opened = ring.open(&context, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        let other_context = format!("{context}!");
        prop_assert!(ring.open(&other_context, &sealed).is_err());
    }

    // --- ids and dates from untrusted numbers -----------------------------------------------------------------

    /// Log ids are 56 digits starting `900` for every timestamp, and sort by time for times up to 10^17 ms.
    #[test]
    fn log_ids_are_fixed_width_and_sortable(seed in any::<u64>(), a in any::<i64>(), b in 0i64..100_000_000_000_000_000) {
        let rng = SeededRandom::new(seed);
        let id = ids::log_id(&rng, Timestamp(a));
        prop_assert!(id.len() == 56 && id.starts_with("900") && id.bytes().all(|c| c.is_ascii_digit()), "{}", id);
        let a = a.clamp(0, 99_999_999_999_999_999);
        if a < b {
            prop_assert!(ids::log_id(&rng, Timestamp(a)) < ids::log_id(&rng, Timestamp(b)));
        }
    }

    /// `to_rfc3339` never panics, and within years 1970–9999 reads back (via the `time` crate) as the same instant.
    #[test]
    fn rfc3339_round_trips(ms in prop_oneof![any::<i64>(), 0i64..253_402_300_800_000]) {
        let s = Timestamp(ms).to_rfc3339();
        if (0..253_402_300_800_000).contains(&ms) {
            prop_assert_eq!(s.len(), 24);
            let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(t.unix_timestamp_nanos(), i128::from(ms) * 1_000_000);
        }
    }
}
