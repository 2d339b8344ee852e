//! Universal Login branding: `GET|PATCH /api/v2/branding` in Auth0's shape (merge, `null` clears, each refusal a
//! 400 naming the property, scopes), and the login pages carrying it: the logo and the friendly name on every page
//! (error pages too), the colours through `/branding.css` (the CSP untouched but for the logo's origin in
//! `img-src`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::TestApp;
use serde_json::json;

const CALLBACK: &str = "https://app.example/callback";

#[tokio::test]
async fn branding_is_read_and_merged_in_auth0s_shape() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    assert_eq!(t.get(&admin, "/api/v2/branding").await, (200, json!({})), "a new install has none");
    let (s, v) = t
        .patch(
            &admin,
            "/api/v2/branding",
            json!({"colors": {"primary": "#0B1A33", "page_background": "#fff"}, "logo_url": "https://cdn.example/logo.png",
                   "favicon_url": "http://localhost:3000/favicon.ico"}),
        )
        .await;
    let all = json!({"colors": {"primary": "#0B1A33", "page_background": "#fff"}, "logo_url": "https://cdn.example/logo.png",
                     "favicon_url": "http://localhost:3000/favicon.ico"});
    assert_eq!((s, &v), (200, &all));
    assert_eq!(t.get(&admin, "/api/v2/branding").await, (200, all));
    // A PATCH changes only what it names; colours merge field by field.
    let (s, v) = t.patch(&admin, "/api/v2/branding", json!({"colors": {"primary": "#123456"}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["colors"], json!({"primary": "#123456", "page_background": "#fff"}));
    assert_eq!(v["logo_url"], "https://cdn.example/logo.png");
    // null clears.
    let (s, v) = t
        .patch(
            &admin,
            "/api/v2/branding",
            json!({"colors": {"page_background": null}, "favicon_url": null, "font": null}),
        )
        .await;
    assert_eq!((s, v), (200, json!({"colors": {"primary": "#123456"}, "logo_url": "https://cdn.example/logo.png"})));
    let (s, v) = t.patch(&admin, "/api/v2/branding", json!({"colors": null, "logo_url": null})).await;
    assert_eq!((s, v), (200, json!({})));
    assert_eq!(t.patch(&admin, "/api/v2/branding", json!({})).await, (200, json!({})));
    t.stop().await;
}

/// Writes of different properties at once all stand (the document is changed by compare-and-set, re-read and
/// re-applied when another writer got in between).
#[tokio::test]
async fn parallel_writes_of_different_properties_all_stand() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    for round in 0..5 {
        let bodies = [
            json!({"colors": {"primary": format!("#00000{round}")}}),
            json!({"colors": {"page_background": format!("#ffffe{round}")}}),
            json!({"logo_url": format!("https://cdn.example/{round}.png")}),
            json!({"favicon_url": format!("https://cdn.example/{round}.ico")}),
        ];
        let mut set = tokio::task::JoinSet::new();
        for body in bodies {
            let (http, url, token) = (t.http.clone(), t.url("/api/v2/branding"), admin.clone());
            set.spawn(async move { http.patch(url).bearer_auth(token).json(&body).send().await.unwrap().status() });
        }
        while let Some(s) = set.join_next().await {
            assert_eq!(s.unwrap().as_u16(), 200, "round {round}");
        }
        assert_eq!(
            t.get(&admin, "/api/v2/branding").await.1,
            json!({"colors": {"primary": format!("#00000{round}"), "page_background": format!("#ffffe{round}")},
                   "logo_url": format!("https://cdn.example/{round}.png"),
                   "favicon_url": format!("https://cdn.example/{round}.ico")}),
            "round {round}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn each_refusal_is_a_400_naming_the_property_and_changes_nothing() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, _) = t.patch(&admin, "/api/v2/branding", json!({"colors": {"primary": "#000000"}})).await;
    assert_eq!(s, 200);
    let long = format!("https://cdn.example/{}", "a".repeat(1024));
    for (body, property) in [
        (json!({"colors": {"primary": "blue"}}), "colors.primary"),
        (json!({"colors": {"primary": "#12345"}}), "colors.primary"),
        (json!({"colors": {"primary": 255}}), "colors.primary"),
        (
            json!({"colors": {"page_background": {"type": "linear-gradient", "start": "#fff", "end": "#000", "angle_deg": 35}}}),
            "colors.page_background",
        ),
        (json!({"colors": {"link": "#000"}}), "colors.link"),
        (json!({"colors": []}), "colors"),
        (json!({"logo_url": "javascript:alert(1)"}), "logo_url"),
        (json!({"logo_url": "http://cdn.example/logo.png"}), "logo_url"),
        (json!({"logo_url": "https://cdn.example/a logo.png"}), "logo_url"),
        (json!({"logo_url": long}), "logo_url"),
        (json!({"favicon_url": "data:image/png;base64,AAAA"}), "favicon_url"),
        (json!({"font": {"url": "https://fonts.example/a.woff2"}}), "font.url"),
        (json!({"theme": "dark"}), "theme"),
    ] {
        let (s, v) = t.patch(&admin, "/api/v2/branding", body.clone()).await;
        assert_eq!((s, v["errorCode"].as_str()), (400, Some("invalid_body")), "{body}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.ends_with(&format!("on property {property}.")), "{body}: {message}");
    }
    let (s, v) = t.patch(&admin, "/api/v2/branding", json!(["#000"])).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(t.get(&admin, "/api/v2/branding").await.1, json!({"colors": {"primary": "#000000"}}), "nothing changed");
    // The gradient refusal says what to do instead; the font one says why.
    let (_, v) = t.patch(&admin, "/api/v2/branding", json!({"colors": {"page_background": {"type": "x"}}})).await;
    assert!(v["message"].as_str().unwrap().contains("Gradient backgrounds are not supported"), "{v}");
    let (_, v) = t.patch(&admin, "/api/v2/branding", json!({"font": {"url": "https://f.example/a.woff2"}})).await;
    assert!(v["message"].as_str().unwrap().contains("offline"), "{v}");
    t.stop().await;
}

#[tokio::test]
async fn branding_needs_its_scopes() {
    let t = TestApp::spawn().await;
    let reader = t.token_with_scopes(&["read:branding"]).await;
    let writer = t.token_with_scopes(&["update:branding"]).await;
    let other = t.token_with_scopes(&["read:tenant_settings", "update:tenant_settings"]).await;
    assert_eq!(t.get(&reader, "/api/v2/branding").await.0, 200);
    assert_eq!(t.patch(&reader, "/api/v2/branding", json!({"colors": {"primary": "#000"}})).await.0, 403);
    assert_eq!(t.get(&writer, "/api/v2/branding").await.0, 403);
    assert_eq!(t.patch(&writer, "/api/v2/branding", json!({"colors": {"primary": "#000"}})).await.0, 200);
    assert_eq!(t.get(&other, "/api/v2/branding").await.0, 403);
    let r = t.http.get(t.url("/api/v2/branding")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = t.http.patch(t.url("/api/v2/branding")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    t.stop().await;
}

/// GET `path` with `cookie`; (status, CSP, body, the transaction cookie it set).
async fn page(t: &TestApp, path: &str, cookie: &str) -> (u16, String, String, Option<String>) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(t.url(path)).header("cookie", cookie).header("accept", "text/html").send().await.unwrap();
    let status = r.status().as_u16();
    let csp = r.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let set = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, csp, r.text().await.unwrap(), set)
}

async fn login_page(t: &TestApp, admin: &str) -> (u16, String, String, String) {
    let (s, c) = t
        .post(
            admin,
            "/api/v2/clients",
            json!({"name": "Shop", "app_type": "regular_web", "callbacks": [CALLBACK], "grant_types": ["authorization_code"]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", c["client_id"].as_str().unwrap()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
    ])
    .unwrap();
    let (s, _, _, cookie) = page(t, &format!("/authorize?{q}"), "").await;
    assert_eq!(s, 302);
    let cookie = cookie.unwrap();
    let (s, csp, body, _) = page(t, "/u/login", &cookie).await;
    (s, csp, body, cookie)
}

fn stylesheet_link(body: &str) -> Option<String> {
    let at = body.find(r#"<link rel="stylesheet" href="/branding.css?v="#)?;
    let rest = &body[at + r#"<link rel="stylesheet" href=""#.len()..];
    Some(rest[..rest.find('"').unwrap()].to_owned())
}

#[tokio::test]
async fn the_login_pages_carry_the_logo_the_name_and_the_colours() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    // Without branding: Callsign's name, no logo, no extra stylesheet, the CSP as always.
    let (s, csp, body, _) = login_page(&t, &admin).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<body class="branded">"#), "{body}");
    assert!(body.contains(r#"<span class="brand-name">Callsign</span>"#), "{body}");
    assert!(!body.contains("<img") && stylesheet_link(&body).is_none(), "{body}");
    assert_eq!(csp, callsign_server::web::CSP);

    let (s, v) = t.patch(&admin, "/api/v2/tenants/settings", json!({"friendly_name": "Acme <Shop>"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .patch(
            &admin,
            "/api/v2/branding",
            json!({"colors": {"primary": "#ffeb3b", "page_background": "#0b1a33"},
                   "logo_url": "https://cdn.example/logo.png?size=2&x=y",
                   "favicon_url": "https://icons.example:8443/f.ico"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, csp, body, cookie) = login_page(&t, &admin).await;
    assert_eq!(s, 200, "{body}");
    // The logo (escaped), named by the tenant's friendly name; the name itself beside it.
    assert!(
        body.contains(r#"<img class="brand-logo" src="https://cdn.example/logo.png?size=2&amp;x=y" alt="Acme &lt;Shop&gt;" height="52">"#),
        "{body}"
    );
    assert!(body.contains(r#"<span class="brand-name" aria-hidden="true">Acme &lt;Shop&gt;</span>"#), "{body}");
    assert!(body.contains(r#"<link rel="icon" href="https://icons.example:8443/f.ico">"#), "{body}");
    // The CSP lets in those two origins' images, and changes nothing else.
    assert_eq!(
        csp,
        callsign_server::web::CSP
            .replace("img-src 'self' data:", "img-src 'self' data: https://cdn.example https://icons.example:8443")
    );
    assert!(!body.contains("style="), "nothing inline");
    // The colours: a stylesheet of custom properties, its link versioned; yellow buttons get black text.
    let link = stylesheet_link(&body).expect("a branding stylesheet");
    let r = t.http.get(t.url(&link)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    let css = r.text().await.unwrap();
    assert!(css.contains("--button-bg: #ffeb3b; --button-fg: #000000;"), "{css}");
    assert!(css.contains("--page-bg: #0b1a33;"), "{css}");
    let light = css.lines().find(|l| l.starts_with(".branded {")).unwrap();
    assert!(!light.contains("--accent: #ffeb3b"), "yellow links would not read on white: {css}");
    assert!(
        css.contains("(prefers-color-scheme: dark) { .branded { --accent: #ffeb3b;"),
        "they do on the dark card: {css}"
    );
    for old in ["/branding.css?v=old", "/branding.css", "/branding.css?v=a&v=b&%zz"] {
        let r = t.http.get(t.url(old)).send().await.unwrap();
        assert_eq!((r.status().as_u16(), &r.headers()["cache-control"]), (200, &"no-cache".parse().unwrap()), "{old}");
    }

    // Error pages carry it too: an expired step, and a page that does not exist.
    let (s, _, body, _) = page(&t, "/u/mfa/code", "").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains(r#"alt="Acme &lt;Shop&gt;""#) && body.contains(&link), "{body}");
    let (s, _, body, _) = page(&t, "/u/no-such-page", "").await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains(r#"alt="Acme &lt;Shop&gt;""#) && body.contains(&link), "{body}");
    // A new colour is a new link.
    t.patch(&admin, "/api/v2/branding", json!({"colors": {"primary": "#0b1a33"}})).await;
    let (_, _, body, _) = page(&t, "/u/login", &cookie).await;
    assert_ne!(stylesheet_link(&body), Some(link));
    // Cleared: back to Callsign's look.
    t.patch(&admin, "/api/v2/branding", json!({"colors": null, "logo_url": null, "favicon_url": null})).await;
    let (_, csp, body, _) = page(&t, "/u/login", &cookie).await;
    assert!(!body.contains("<img") && stylesheet_link(&body).is_none(), "{body}");
    assert_eq!(csp, callsign_server::web::CSP);
    let r = t.http.get(t.url("/branding.css")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "");
    t.stop().await;
}
