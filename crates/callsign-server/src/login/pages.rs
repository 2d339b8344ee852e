//! The login pages' HTML. Every input has a label, errors are `role=alert` regions tied to their field, every
//! form carries the CSRF field, and nothing is inline (the CSP forbids inline scripts and styles).
use maud::{Markup, html};

use super::countries::Country;
use super::texts::{self, Texts};
use super::{SentCode, Step};
use crate::web::layout;

/// What every page of a transaction needs.
pub struct Ctx<'a> {
    pub lang: &'a str,
    pub t: &'static Texts,
    pub csrf: String,
}

impl Ctx<'_> {
    fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// Every login page: the card, headed by the tenant's logo and name ([`crate::web::brand::current`]).
fn card(lang: &str, title: &str, body: Markup) -> Markup {
    let brand = crate::web::brand::current();
    layout::branded_page(
        lang,
        title,
        &brand,
        html! {
            main class="card" {
                div class="brand" id="brand" {
                    @if let Some(logo) = &brand.logo_url {
                        img class="brand-logo" src=(logo) alt=(brand.name) height="52";
                        // The logo's alt text already names the tenant for screen readers.
                        span class="brand-name" aria-hidden="true" { (brand.name) }
                    } @else {
                        span class="brand-name" { (brand.name) }
                    }
                }
                h1 { (title) }
                (body)
            }
        },
    )
}

/// An information or error page without a form.
pub fn message(lang: &str, title: &str, text: &str, is_error: bool) -> Markup {
    card(
        lang,
        title,
        html! {
            @if is_error {
                (layout::error_box(Some(text)))
            } @else {
                p { (text) }
            }
        },
    )
}

/// A field's error, announced and tied to the field by `aria-describedby`.
fn field_error(id: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class="alert error" id=(id) role="alert" { (m) }
        }
    }
}

pub fn login(c: &Ctx<'_>, app_name: &str, email: &str, error: Option<&str>, signup_open: bool) -> Markup {
    let t = c.t;
    card(
        c.lang,
        t.login_title,
        html! {
            p { (t.login_intro.replace("{app}", app_name)) }
            (field_error("login-error", error))
            form method="post" action=(Step::Login.path()) {
                (c.csrf_field())
                label for="email" { (t.email) }
                input type="email" id="email" name="email" value=(email) autocomplete="username" required
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "login-error")];
                label for="password" { (t.password) }
                input type="password" id="password" name="password" autocomplete="current-password" required
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "login-error")];
                button type="submit" { (t.continue_) }
            }
            @if signup_open {
                p class="switch" { (t.no_account) " " a href=(Step::Signup.path()) id="signup-link" { (t.signup_link) } }
            }
        },
    )
}

/// The sign-up page (the database connection allows public sign-up).
pub fn signup(c: &Ctx<'_>, app_name: &str, email: &str, error: Option<&str>) -> Markup {
    let t = c.t;
    card(
        c.lang,
        t.signup_title,
        html! {
            p { (t.signup_intro.replace("{app}", app_name)) }
            (field_error("signup-error", error))
            form method="post" action=(Step::Signup.path()) {
                (c.csrf_field())
                label for="email" { (t.email) }
                input type="email" id="email" name="email" value=(email) autocomplete="email" required
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "signup-error")];
                label for="password" { (t.password) }
                input type="password" id="password" name="password" autocomplete="new-password" required minlength="8"
                    aria-describedby="password-rules";
                p class="hint" id="password-rules" { (t.password_rules) }
                button type="submit" { (t.signup_button) }
            }
            p class="switch" { (t.have_account) " " a href=(Step::Login.path()) id="login-link" { (t.login_link) } }
        },
    )
}

pub struct EnrollView<'a> {
    pub countries: &'a [Country],
    pub country: &'a str,
    pub phone: &'a str,
    /// The message types the tenant enabled (`sms`, `voice`).
    pub channels: &'a [String],
    pub channel: &'a str,
    pub error: Option<&'a str>,
}

pub fn enroll(c: &Ctx<'_>, v: &EnrollView<'_>) -> Markup {
    let t = c.t;
    let both = v.channels.len() > 1;
    let err = v.error;
    card(
        c.lang,
        t.enroll_title,
        html! {
            p { (t.enroll_intro) }
            (field_error("enroll-error", err))
            form method="post" action=(Step::Enroll.path()) {
                (c.csrf_field())
                label for="country" { (t.country) }
                select id="country" name="country" autocomplete="country" {
                    @for k in v.countries {
                        option value=(k.code) selected[k.code == v.country] { (k.name) " (+" (k.calling_code) ")" }
                    }
                }
                label for="phone" { (t.phone) }
                p class="muted" id="phone-hint" { (t.phone_hint) }
                input type="tel" id="phone" name="phone" value=(v.phone) autocomplete="tel" inputmode="tel" required
                    aria-invalid=[err.map(|_| "true")]
                    aria-describedby=(if err.is_some() { "phone-hint enroll-error" } else { "phone-hint" });
                @if both {
                    fieldset {
                        legend { (t.method) }
                        @for ch in v.channels {
                            label class="choice" {
                                input type="radio" name="channel" value=(ch) checked[ch == v.channel];
                                (if ch == "voice" { t.by_voice } else { t.by_sms })
                            }
                        }
                    }
                } @else {
                    input type="hidden" name="channel" value=(v.channel);
                }
                button type="submit" { (t.continue_) }
            }
        },
    )
}

pub struct CodeView<'a> {
    pub sent: Option<&'a SentCode>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// Seconds before another code on the same channel is accepted.
    pub cooldown: i64,
    /// The channel of the last code (or the phone's preferred one).
    pub channel: &'a str,
    pub can_call: bool,
    pub can_text: bool,
    pub enrolling: bool,
    pub can_recover: bool,
}

fn resend_form(c: &Ctx<'_>, channel: &str, label: &str, cooldown: Option<(i64, &str)>) -> Markup {
    html! {
        form method="post" action="/u/mfa/resend" class="inline" {
            (c.csrf_field())
            input type="hidden" name="channel" value=(channel);
            @if let Some((n, text)) = cooldown.filter(|(n, _)| *n > 0) {
                button type="submit" class="secondary" data-cooldown=(n) aria-describedby="resend-wait" { (label) }
                p class="muted" id="resend-wait" { (text.replace("{n}", &n.to_string())) }
            } @else {
                button type="submit" class="secondary" { (label) }
            }
        }
    }
}

pub fn code(c: &Ctx<'_>, v: &CodeView<'_>) -> Markup {
    let t = c.t;
    let err = v.error;
    card(
        c.lang,
        t.code_title,
        html! {
            @if let Some(s) = v.sent {
                p {
                    (if s.channel == "voice" { t.code_sent_voice } else { t.code_sent_sms }.replace("{phone}", &s.to))
                }
            }
            @if let Some(n) = v.notice {
                p class="alert ok" role="status" { (n) }
            }
            (field_error("code-error", err))
            form method="post" action=(Step::Code.path()) {
                (c.csrf_field())
                label for="code" { (t.code_label) }
                p class="muted" id="code-hint" { (t.code_hint) }
                // Digits, spaces allowed (a pasted `123 456`); the server keeps only the digits.
                input type="text" id="code" name="code" autocomplete="one-time-code" inputmode="numeric"
                    pattern="[0-9 ]*" maxlength="12" required autofocus
                    aria-invalid=[err.map(|_| "true")]
                    aria-describedby=(if err.is_some() { "code-hint code-error" } else { "code-hint" });
                button type="submit" { (t.continue_) }
            }
            section aria-labelledby="other-options" {
                h2 id="other-options" class="small" { (t.didnt_receive) }
                (resend_form(c, v.channel, t.resend, Some((v.cooldown, t.resend_wait))))
                @if v.can_call {
                    (resend_form(c, "voice", t.call_me, None))
                }
                @if v.can_text {
                    (resend_form(c, "sms", t.text_me, None))
                }
                @if v.enrolling {
                    form method="post" action="/u/mfa/change-number" class="inline" {
                        (c.csrf_field())
                        button type="submit" class="secondary" { (t.other_number) }
                    }
                }
                @if v.can_recover {
                    p { a href="/u/mfa/recovery" { (t.use_recovery) } }
                }
            }
        },
    )
}

pub fn recovery(c: &Ctx<'_>, error: Option<&str>) -> Markup {
    let t = c.t;
    card(
        c.lang,
        t.recovery_title,
        html! {
            p { (t.recovery_intro) }
            (field_error("recovery-error", error))
            form method="post" action="/u/mfa/recovery" {
                (c.csrf_field())
                label for="recovery_code" { (t.recovery_label) }
                input type="text" id="recovery_code" name="recovery_code" autocomplete="off" autocapitalize="characters"
                    spellcheck="false" required
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "recovery-error")];
                button type="submit" { (t.continue_) }
            }
            p { a href=(Step::Code.path()) { (t.back_to_code) } }
        },
    )
}

pub fn show_recovery(c: &Ctx<'_>, code: &str) -> Markup {
    let t = c.t;
    card(
        c.lang,
        t.show_recovery_title,
        html! {
            p id="recovery-intro" { (t.show_recovery_intro) }
            h2 class="small" id="recovery-label" { (t.show_recovery_label) }
            // In groups of four, as it is easier to copy by hand; spaces are ignored when the code is typed.
            code class="recovery" id="recovery-code" aria-labelledby="recovery-label" { (grouped(code)) }
            form method="post" action=(Step::ShowRecovery.path()) {
                (c.csrf_field())
                button type="submit" { (t.saved_it) }
            }
        },
    )
}

fn grouped(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

pub fn ticket_intro(c: &Ctx<'_>) -> Markup {
    let t = c.t;
    card(
        c.lang,
        t.ticket_title,
        html! {
            p { (t.ticket_intro) }
            form method="post" action=(Step::TicketStart.path()) {
                (c.csrf_field())
                button type="submit" { (t.continue_) }
            }
        },
    )
}

pub fn done(lang: &str) -> Markup {
    let t = texts::of(lang);
    message(lang, t.done_title, t.done_intro, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx { lang: "en", t: &texts::EN, csrf: "tok".into() }
    }

    #[test]
    fn the_code_page_has_what_phones_and_screen_readers_need() {
        let sent = SentCode { oob_code: "oob".into(), channel: "sms".into(), to: "XXXXXXXX2671".into() };
        let html = code(
            &ctx(),
            &CodeView {
                sent: Some(&sent),
                error: Some("The code you entered is invalid."),
                notice: None,
                cooldown: 25,
                channel: "sms",
                can_call: true,
                can_text: false,
                enrolling: false,
                can_recover: true,
            },
        )
        .into_string();
        for needle in [
            r#"autocomplete="one-time-code""#,
            r#"inputmode="numeric""#,
            r#"pattern="[0-9 ]*""#,
            r#"data-cooldown="25""#,
            "You can ask for a new code in 25 seconds.",
            "Call me instead",
            "Use a recovery code",
            r#"role="alert""#,
            r#"name="csrf" value="tok""#,
            r#"<html lang="en">"#,
            "XXXXXXXX2671",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("style="), "inline styles break the CSP");
        assert!(!html.contains("Send me a text message instead"));
    }

    #[test]
    fn recovery_codes_are_shown_in_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJKLMNOPQRSTUVWX"), "ABCD EFGH IJKL MNOP QRST UVWX");
        assert!(
            show_recovery(&ctx(), "ABCDEFGHIJKLMNOPQRSTUVWX").into_string().contains(">ABCD EFGH IJKL MNOP QRST UVWX<")
        );
    }

    #[test]
    fn enrollment_offers_a_channel_choice_only_when_both_are_enabled() {
        let countries = super::super::countries::list("en");
        let both = vec!["sms".to_owned(), "voice".to_owned()];
        let one = vec!["sms".to_owned()];
        let view = |channels| EnrollView { countries, country: "FR", phone: "", channels, channel: "sms", error: None };
        let html = enroll(&ctx(), &view(&both)).into_string();
        assert!(html.contains(r#"type="radio""#) && html.contains("Voice call"));
        assert!(html.contains(r#"<option value="FR" selected>France (+33)</option>"#));
        assert!(html.contains(r#"autocomplete="tel""#) && html.contains(r#"type="tel""#));
        let html = enroll(&ctx(), &view(&one)).into_string();
        assert!(!html.contains(r#"type="radio""#));
        assert!(html.contains(r#"<input type="hidden" name="channel" value="sms">"#));
    }
}
