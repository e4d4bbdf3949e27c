//! The web console over real HTTP (the browser-driven tests are in `tests/browser.rs`): a token
//! login that sets an HttpOnly, SameSite=Strict cookie; forms refused without their CSRF token
//! or from another origin; a dead letter retried and an error file requeued through the pages,
//! with the pipeline finishing the work; a requeue that names a symlink or a path refused; a
//! console without a token served only on loopback names; the config refusing a public console
//! without a token.

use edi_bridge::config::Config;
use edi_bridge::events::Outcome;
use edi_bridge::sim::Fault;

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";
const TOKEN: &str = "console-token-0123456789abcdef";

fn no_redirects() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn base(d: &TestDaemon) -> String {
    format!("http://{}", d.r().console_addr.expect("console listening"))
}

fn with_token(ws: &Workspace) -> String {
    std::fs::write(ws.path("console.token"), format!("{TOKEN}\n")).unwrap();
    format!(
        "{FAST}[console]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        ws.path("console.token").display()
    )
}

/// The value of the first hidden `csrf` field in a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn login(c: &reqwest::Client, base: &str) -> String {
    let r = c
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    cookie.split(';').next().unwrap().to_string()
}

async fn page(c: &reqwest::Client, url: &str, cookie: &str) -> (u16, String) {
    let r = c.get(url).header("cookie", cookie).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_token_login_sets_a_strict_cookie_and_forms_need_their_csrf_token() {
    let ws = Workspace::new();
    let d = ws.start_with(&with_token(&ws)).await;
    let base = base(&d);
    assert_ne!(d.r().console_addr.unwrap().port(), d.r().addr.port());
    let c = no_redirects();

    // Not logged in: pages send to the login form, posts and the event stream are refused.
    let r = c.get(format!("{base}/pos")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(r.text().await.unwrap().contains("name=\"token\""));
    let r = c
        .post(format!("{base}/dead/retry"))
        .form(&[("csrf", "x"), ("job", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A wrong token: refused, no cookie.
    let r = c
        .post(format!("{base}/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());

    // The right token: an HttpOnly, SameSite=Strict session cookie.
    let r = c
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("edi_console="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains(TOKEN),
        "the cookie never carries the token: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();

    let (s, home) = page(&c, &format!("{base}/"), &cookie).await;
    assert_eq!(s, 200);
    assert!(
        home.contains("id=\"counts\"") && home.contains("Log out"),
        "{home}"
    );
    let csrf = csrf_of(&home);

    // Forms without the token, with a stale one, or from another origin are refused.
    for (form_csrf, origin, want) in [
        ("", None, 403),
        ("0000", None, 403),
        (csrf.as_str(), Some("http://evil.example"), 403),
        (csrf.as_str(), None, 404),
    ] {
        let mut rq = c
            .post(format!("{base}/dead/retry"))
            .header("cookie", &cookie)
            .form(&[("csrf", form_csrf), ("job", "77")]);
        if let Some(o) = origin {
            rq = rq.header("origin", o);
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status(), want, "csrf {form_csrf:?} origin {origin:?}");
    }

    // Log out: the cookie is cleared.
    let r = c
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    d.stop().await;
}

#[tokio::test]
async fn a_dead_letter_is_retried_and_an_error_file_requeued_from_the_console() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, &with_token(&ws)).await;
    let base = base(&d);
    let c = no_redirects();
    let cookie = login(&c, &base).await;

    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;

    // Ingram refuses the 855's call for good: a dead letter, shown with Ingram's message.
    sim.push_faults(vec![Fault::Status(400)]);
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    d.until("the dead letter", || d.r().store.dead_count() == 1)
        .await;
    let (s, html) = page(&c, &format!("{base}/dead"), &cookie).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("IM-PO-1001") && html.contains("Retry"),
        "{html}"
    );
    let job = d.r().store.dead_letters().next().unwrap().unwrap().job.id;

    // The state filter (the state index; `errors` adds the dead letters).
    let (s, errs) = page(&c, &format!("{base}/pos?state=errors"), &cookie).await;
    assert_eq!(s, 200);
    assert!(errs.contains("href=\"/pos/IM-PO-1001\""), "{errs}");
    let (_, sent) = page(&c, &format!("{base}/pos?state=855_sent"), &cookie).await;
    assert!(sent.contains("No purchase order matches"), "{sent}");
    let (s, bad) = page(&c, &format!("{base}/pos?state=%3Cb%3E"), &cookie).await;
    assert_eq!(s, 400);
    assert!(bad.contains("unknown state"), "{bad}");

    // Search finds the PO; its page shows the timeline and the 850 as written.
    let (s, list) = page(&c, &format!("{base}/pos?po=IM-PO-1001"), &cookie).await;
    assert_eq!(s, 200);
    assert!(list.contains("href=\"/pos/IM-PO-1001\""), "{list}");
    let (s, po) = page(&c, &format!("{base}/pos/IM-PO-1001"), &cookie).await;
    assert_eq!(s, 200);
    assert!(
        po.contains("id=\"timeline\"") && po.contains("dead-lettered"),
        "{po}"
    );
    assert!(po.contains("id=\"x850\"") && po.contains("BEG*00*"), "{po}");

    // Retry: the job goes back in the queue and Ingram now accepts it.
    let csrf = csrf_of(&html);
    let r = c
        .post(format!("{base}/dead/retry"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.clone()), ("job", job.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/dead?done=retried&job={job}").as_str()
    );
    d.until("the retried 855 accepted", || {
        d.r()
            .store
            .order("IM-PO-1001")
            .unwrap()
            .unwrap()
            .inbound
            .response_sent_at
            .is_some()
    })
    .await;
    assert_eq!(d.r().store.dead_count(), 0);
    // The PO's page now shows the 855 as the ERP sent it and Ingram's answer.
    let (_, po) = page(&c, &format!("{base}/pos/IM-PO-1001"), &cookie).await;
    assert!(
        po.contains("accepted by Ingram") && po.contains("BAK*"),
        "{po}"
    );

    // A file moved to error/ is listed with its reason, and Requeue moves it back to the inbox
    // (where it is read again and, still broken, goes back to error/).
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "junk.856", b"this is not X12 at all");
    assert!(matches!(
        d.wait_inbox(&mut rx, "junk.856").await,
        Outcome::Rejected { .. }
    ));
    let (s, html) = page(&c, &format!("{base}/errors"), &cookie).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("junk.856") && html.contains("reason:"),
        "{html}"
    );
    let r = c
        .post(format!("{base}/errors/requeue"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("file", "junk.856")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(!ws.path("error/junk.856.reason.txt").exists());
    assert!(matches!(
        d.wait_inbox(&mut rx, "junk.856").await,
        Outcome::Rejected { .. }
    ));
    assert!(ws.path("error/junk.856").exists());

    // What the error page does not list is never moved: a path, a reason file, a symlink.
    std::os::unix::fs::symlink("/etc/passwd", ws.path("error/link.856")).unwrap();
    for (name, want) in [
        ("../inbox/x", "not a file the error page lists"),
        ("junk.856.reason.txt", "not a file the error page lists"),
        ("link.856", "is a symlink, not a regular file"),
        ("gone.856", "no file named gone.856"),
    ] {
        let r = c
            .post(format!("{base}/errors/requeue"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("file", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409, "{name}");
        let body = r.text().await.unwrap();
        assert!(body.contains(want), "{name}: {body}");
    }
    assert!(std::fs::symlink_metadata(ws.path("error/link.856"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!ws.path("inbox/link.856").exists());
    d.stop().await;
}

#[tokio::test]
async fn hostile_po_numbers_are_escaped_on_every_page() {
    let ws = Workspace::new();
    let d = ws.start_with(&with_token(&ws)).await;
    let base = base(&d);
    let c = no_redirects();
    let cookie = login(&c, &base).await;
    // As long as an 850's BEG03 allows, and without '>' (the mapping's component separator):
    // an HTML parser would still open a tag at '<svg'.
    let hostile = "<svg onload=alert(1)//";
    let body = sample_with("E-HOSTILE-1", hostile);
    let (s, answer) = post(&d.url(), &body, Some(&sign("E-HOSTILE-1"))).await;
    assert_eq!(s, 200, "{answer}");
    d.wait_written(1).await;
    let encoded = "%3Csvg%20onload%3Dalert%281%29%2F%2F";
    for path in [
        "/".to_string(),
        "/pos".to_string(),
        format!("/pos?po={encoded}"),
        format!("/pos/{encoded}"),
    ] {
        let (s, html) = page(&c, &format!("{base}{path}"), &cookie).await;
        assert_eq!(s, 200, "{path}");
        assert!(!html.contains("<svg"), "{path}: {html}");
    }
    let (_, html) = page(&c, &format!("{base}/pos/{encoded}"), &cookie).await;
    assert!(html.contains("&lt;svg onload=alert(1)//"), "{html}");
    let (_, list) = page(&c, &format!("{base}/pos"), &cookie).await;
    assert!(
        list.contains(&format!("href=\"/pos/{}\"", encoded)),
        "{list}"
    );
    d.stop().await;
}

#[tokio::test]
async fn without_a_token_the_console_answers_only_to_loopback_names() {
    let ws = Workspace::new();
    let d = ws
        .start_with(&format!("{FAST}[console]\nlisten = \"127.0.0.1:0\"\n"))
        .await;
    let base = base(&d);
    let c = no_redirects();
    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap().contains("Log out"));
    // A page elsewhere reaching 127.0.0.1 through its own DNS name (rebinding) is refused.
    let r = c
        .get(format!("{base}/dead"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // The login form is not needed.
    let r = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    d.stop().await;
}

#[test]
fn a_console_off_loopback_without_a_token_is_a_config_error() {
    let ws = Workspace::new();
    let text = ws.config_text("[console]\nlisten = \"0.0.0.0:8081\"\n");
    let e = Config::load_str(&text, &ws.path("edi-bridge.toml")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("console.token_file") && msg.contains("not a loopback address"),
        "{msg}"
    );
    let text = ws.config_text(&format!(
        "[console]\nlisten = \"0.0.0.0:8081\"\ntoken_file = \"{}\"\n",
        ws.path("missing.token").display()
    ));
    let msg = Config::load_str(&text, &ws.path("edi-bridge.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("console.token_file") && msg.contains("cannot read"),
        "{msg}"
    );
    std::fs::write(ws.path("console.token"), TOKEN).unwrap();
    let text = ws.config_text(&format!(
        "[console]\nlisten = \"0.0.0.0:8081\"\ntoken_file = \"{}\"\n",
        ws.path("console.token").display()
    ));
    let loaded = Config::load_str(&text, &ws.path("edi-bridge.toml")).unwrap();
    assert_eq!(loaded.secrets.console_token.unwrap().expose(), TOKEN);
    // The webhook's own address is never the console's.
    let text = ws
        .config_text("[console]\nlisten = \"127.0.0.1:8080\"\n")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:8080\"");
    let msg = Config::load_str(&text, &ws.path("edi-bridge.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("console.listen") && msg.contains("must differ"),
        "{msg}"
    );
    // Also when one of them listens on every address.
    let text = ws
        .config_text("[console]\nlisten = \"0.0.0.0:8080\"\n")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:8080\"");
    let msg = Config::load_str(&text, &ws.path("edi-bridge.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("must differ"), "{msg}");
}

/// Waits (on the console's own signal that it wrote activity to the store, or on daemon
/// events) until `cond` holds.
async fn until_recorded(d: &TestDaemon, what: &str, cond: impl Fn() -> bool) {
    let mut recorded = d.r().console_recorded.clone().expect("console on");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        if !matches!(
            tokio::time::timeout_at(deadline, recorded.changed()).await,
            Ok(Ok(()))
        ) {
            panic!("timed out waiting for {what}");
        }
    }
}

/// The console's home page, its recent activity read from the store.
async fn home(c: &reqwest::Client, base: &str, cookie: &str) -> String {
    let (s, html) = page(c, &format!("{base}/"), cookie).await;
    assert_eq!(s, 200, "{html}");
    html
}

#[tokio::test]
async fn recent_activity_survives_a_restart_and_the_home_page_has_rejections_and_health() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, &with_token(&ws)).await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    sim.wait_for_calls(1, std::time::Duration::from_secs(20))
        .await;
    until_recorded(&d, "the activity recorded", || {
        d.r().store.recent_activity(10).is_ok_and(|a| {
            a.iter()
                .any(|e| e.text.contains("PO Response accepted by Ingram"))
        })
    })
    .await;
    let c = no_redirects();
    let cookie = login(&c, &base(&d)).await;
    let html = home(&c, &base(&d), &cookie).await;
    for want in [
        "850 written as",
        "ack.855 processed",
        "PO Response accepted by Ingram",
        "Ingram: last answered",
        "Access token: valid, renewed by",
        "Last inbound file: ack.855 (archived)",
        concat!("edi-bridge ", env!("CARGO_PKG_VERSION")),
        "850s the ERP rejected (997 or TA1)",
    ] {
        assert!(html.contains(want), "{want}: {html}");
    }
    d.stop().await;

    // After a restart the activity is still there (read from the store), with the login. And
    // the ERP refuses the 850 (a TA1): its tile counts it, marked as an alarm.
    let d = ws.start_against(&sim, &with_token(&ws)).await;
    let c = no_redirects();
    let cookie = login(&c, &base(&d)).await;
    let isa13 = match d.r().store.order("IM-PO-1001").unwrap().unwrap().outbound {
        edi_bridge::store::records::Outbound850::Written { envelope, .. } => envelope.isa13,
        other => panic!("{other:?}"),
    };
    let isa = include_str!("../../samples/ingram-po-855.edi")
        .lines()
        .next()
        .unwrap()
        .replace("000000501", "000000778");
    let ta1 = format!("{isa}\nTA1*{isa13:09}*261121*0900*R*024~\nIEA*0*000000778~\n");
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ta1.edi", ta1.as_bytes());
    d.wait_inbox(&mut rx, "ta1.edi").await;
    until_recorded(&d, "the rejection counted and recorded", || {
        d.r().store.erp_rejected_count() == 1
            && d.r()
                .store
                .last_inbound()
                .is_ok_and(|l| l.is_some_and(|l| l.file == "ta1.edi"))
    })
    .await;
    let html = home(&c, &base(&d), &cookie).await;
    for want in [
        "850 written as",
        "PO Response accepted by Ingram",
        "Console login (from 127.0.0.1:",
        "Last inbound file: ta1.edi (archived)",
        "<a class=\"tile alarm\" href=\"/pos?state=errors\"><span class=\"n\">1</span><span class=\"label\">850s the ERP rejected (997 or TA1)</span>",
    ] {
        assert!(html.contains(want), "after a restart, {want}: {html}");
    }
    d.stop().await;
}

#[tokio::test]
async fn an_error_file_is_viewed_escaped_and_dismissed_into_the_archive_with_a_reason() {
    let ws = Workspace::new();
    let d = ws.start_with(&with_token(&ws)).await;
    let base = base(&d);
    let c = no_redirects();
    let cookie = login(&c, &base).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "junk.855",
        b"<script>alert(1)</script>\x1b[31m red\nsecond line\n",
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "junk.855").await,
        Outcome::Rejected { .. }
    ));
    let (s, list) = page(&c, &format!("{base}/errors"), &cookie).await;
    assert_eq!(s, 200);
    assert!(
        list.contains("href=\"/errors/view?file=junk.855\""),
        "{list}"
    );
    let (s, view) = page(&c, &format!("{base}/errors/view?file=junk.855"), &cookie).await;
    assert_eq!(s, 200, "{view}");
    assert!(!view.contains("<script>alert"), "{view}");
    assert!(
        view.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m red\nsecond line"),
        "{view}"
    );
    assert!(view.contains("Why it is here"), "{view}");
    // Bounded: a big file shows its first part only.
    std::fs::write(ws.path("error/big.855"), vec![b'A'; 200 * 1024]).unwrap();
    let (s, big) = page(&c, &format!("{base}/errors/view?file=big.855"), &cookie).await;
    assert_eq!(s, 200);
    assert!(big.contains("only the first 64 KiB are shown"), "bounded");
    assert!(big.len() < 100 * 1024, "{}", big.len());
    // Never through a symlink, never a path.
    std::os::unix::fs::symlink("/etc/passwd", ws.path("error/link.855")).unwrap();
    for name in ["link.855", "..%2Fedi-bridge.toml", "junk.855.reason.txt"] {
        let (s, html) = page(&c, &format!("{base}/errors/view?file={name}"), &cookie).await;
        assert_eq!(s, 404, "{name}: {html}");
        assert!(!html.contains("root:"), "{html}");
    }

    let csrf = csrf_of(&list);
    // Dismiss needs a reason.
    let r = c
        .post(format!("{base}/errors/dismiss"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("file", "junk.855"),
            ("reason", " "),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(ws.path("error/junk.855").exists());
    let r = c
        .post(format!("{base}/errors/dismiss"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("file", "junk.855"),
            ("reason", "test file from the ERP vendor"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(!ws.path("error/junk.855").exists());
    assert!(!ws.path("error/junk.855.reason.txt").exists());
    let dismissed: Vec<String> = walk(&ws.path("archive/dismissed"), false)
        .iter()
        .map(|p| name_of(p))
        .collect();
    assert_eq!(
        {
            let mut v = dismissed.clone();
            v.sort();
            v
        },
        ["junk.855", "junk.855.reason.txt"],
        "{dismissed:?}"
    );
    // A symlink is never dismissed either.
    let r = c
        .post(format!("{base}/errors/dismiss"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("file", "link.855"),
            ("reason", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(std::fs::symlink_metadata(ws.path("error/link.855")).is_ok());

    // The action is logged with its time, client address and reason.
    let log = d.r().store.recent_activity(5).unwrap();
    let entry = log
        .iter()
        .find(|e| e.text.starts_with("Dismiss: error/junk.855"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        entry.text.contains("reason: test file from the ERP vendor")
            && entry.text.contains("archive/dismissed/"),
        "{entry:?}"
    );
    assert!(
        entry
            .client
            .as_deref()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{entry:?}"
    );
    assert!(entry.at.ends_with('Z'), "{entry:?}");
    d.stop().await;
}

#[tokio::test]
async fn the_right_token_logs_in_whatever_was_guessed_before_from_the_same_address() {
    let ws = Workspace::new();
    let d = ws.start_with(&with_token(&ws)).await;
    let base = base(&d);
    let c = no_redirects();
    // Wrong guesses from loopback (the operator's own address here) are throttled.
    let mut throttled = 0;
    for i in 0..15 {
        let r = c
            .post(format!("{base}/login"))
            .form(&[("token", format!("guess-{i}"))])
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("set-cookie").is_none());
        match r.status().as_u16() {
            401 => {}
            429 => throttled += 1,
            s => panic!("a wrong guess answered {s}"),
        }
    }
    assert!(throttled >= 1, "15 wrong guesses in a minute are throttled");
    // The right token from that same address logs in at once, and its session works.
    let cookie = login(&c, &base).await;
    let (s, home) = page(&c, &format!("{base}/"), &cookie).await;
    assert_eq!(s, 200);
    assert!(home.contains("Log out"), "{home}");
    // Wrong guesses after it are still throttled.
    let r = c
        .post(format!("{base}/login"))
        .form(&[("token", "guess-again")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    d.stop().await;
}

#[tokio::test]
async fn idle_and_slow_sockets_cannot_hold_the_console_slots() {
    use tokio::io::AsyncWriteExt as _;
    let ws = Workspace::new();
    let d = ws.start_with(&with_token(&ws)).await;
    let base = base(&d);
    let addr = d.r().console_addr.unwrap();
    // 200 sockets that never send a byte, 20 that stop in the middle of a request head, and 70
    // (more than the console's 64 connections) that stop in the middle of a login form's body.
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    for i in 0..90 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head: &[u8] = if i < 20 {
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        } else {
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\ntoken=abc"
        };
        s.write_all(head).await.unwrap();
        held.push(s);
    }
    // The bound the issue states: the operator's login and page answer within 5 s.
    let c = no_redirects();
    let (s, home) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let cookie = login(&c, &base).await;
        page(&c, &format!("{base}/"), &cookie).await
    })
    .await
    .expect("the operator's login and page answer within 5 s with 290 idle or slow sockets open");
    assert_eq!(s, 200);
    assert!(home.contains("Log out"), "{home}");
    drop(held);
    d.stop().await;
}

#[tokio::test]
async fn a_call_held_behind_a_dead_letter_says_so_on_the_po_page_and_the_home_page() {
    let (sim, _t) = sim(|c| c.faults = vec![Fault::Status(400)]).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, &with_token(&ws)).await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    d.wait_inbox(&mut rx, "ack.855").await;
    d.until("the 855's call refused", || d.r().store.dead_count() == 1)
        .await;
    drop_inbox(
        &ws,
        "asn.856",
        include_bytes!("../../samples/ingram-po-856.edi"),
    );
    d.wait_inbox(&mut rx, "asn.856").await;
    let c = no_redirects();
    let cookie = login(&c, &base(&d)).await;
    let (s, html) = page(&c, &format!("{}/pos/IM-PO-1001", base(&d)), &cookie).await;
    assert_eq!(s, 200, "{html}");
    assert!(
        html.contains("Blocked: waits for the refused PO Response (855) (job "),
        "{html}"
    );
    assert!(html.contains("<dt>Open</dt><dd>waits: "), "{html}");
    let (_, home) = page(&c, &format!("{}/", base(&d)), &cookie).await;
    assert!(
        home.contains("calls held behind a dead letter of their PO"),
        "{home}"
    );
    d.stop().await;
    assert_eq!(sim.calls().len(), 1, "the 856's call was never sent");
}
