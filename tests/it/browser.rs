//! The console in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver, the W3C protocol spoken with the project's own HTTP client: a dozen JSON
//! calls, no extra crate). It logs in through the form, reads the home counts, searches for a
//! PO and opens its page, presses Retry on a dead letter and Requeue on an error file, sees a
//! page refresh itself when something happens (server-sent events), and checks the layout at a
//! phone's width. Screenshots are kept under `target/console-screenshots/` as the run's
//! artifact. `.ci/run` installs `chromium` and `chromium-driver`; without them this test fails
//! and says how to install them.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use edi_bridge::events::Outcome;
use edi_bridge::sim::Fault;
use serde_json::{json, Value};

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";
const TOKEN: &str = "browser-console-token-42";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        use std::os::unix::process::CommandExt as _;
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, so the browser it starts ends with it.
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // chromedriver says on stdout when it listens: wait for that line, not a timer.
        let stdout = driver.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let ok = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("started successfully"));
            // Keep draining so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            ok
        });
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(30), ready)
                .await
                .expect("chromedriver ready within 30 s")
                .unwrap(),
            "chromedriver did not start"
        );
        let profile = tempfile::tempdir().unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {v}"))
            .to_string();
        let b = Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        };
        // Element lookups wait up to 10 s for the element to appear (WebDriver's implicit wait).
        b.call(
            "POST",
            "timeouts",
            json!({"implicit": 10_000, "pageLoad": 20_000}),
        )
        .await;
        b
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"))
    }

    /// A WebDriver call; `Err` carries its error code and message.
    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let url = url.trim_end_matches('/').to_string();
        let rq = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = rq.send().await.unwrap().json().await.unwrap();
        match v["value"].get("error") {
            Some(e) => Err(format!("{e} {}", v["value"]["message"])),
            None => Ok(v["value"].clone()),
        }
    }

    async fn go(&self, url: &str) {
        self.call("POST", "url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.call("GET", "url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_string()
    }

    async fn find_xpath(&self, xpath: &str) -> String {
        let v = self
            .call("POST", "element", json!({"using": "xpath", "value": xpath}))
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// The text of the element `css` finds (found again if a reload made it stale).
    async fn text(&self, css: &str) -> String {
        for _ in 0..3 {
            let e = self.find(css).await;
            match self
                .try_call("GET", &format!("element/{e}/text"), Value::Null)
                .await
            {
                Ok(v) => return v.as_str().unwrap().to_string(),
                Err(m) if went_stale(&m) => continue,
                Err(m) => panic!("text of {css}: {m}"),
            }
        }
        panic!("text of {css}: the element went stale three times");
    }

    /// Clicks the element `css` finds. The console reloads itself when something happens, so
    /// an element found just before a reload is found again (at most three times).
    async fn click(&self, css: &str) {
        for _ in 0..3 {
            let e = self.find(css).await;
            match self
                .try_call("POST", &format!("element/{e}/click"), json!({}))
                .await
            {
                Ok(_) => return,
                Err(m) if went_stale(&m) => continue,
                Err(m) => panic!("click {css}: {m}"),
            }
        }
        panic!("click {css}: the element went stale three times");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            "POST",
            &format!("element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// Saves a PNG of the viewport under `target/console-screenshots/`.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Browser {
    /// Ends the session (the browser closes), then chromedriver.
    async fn quit(self) {
        self.call("DELETE", "", Value::Null).await;
    }
}

/// The element belonged to a page that has since reloaded itself.
fn went_stale(message: &str) -> bool {
    message.contains("stale element") || message.contains("does not belong to the document")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and every browser process it started (one process group).
        let pid = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_finds_a_po_retries_a_dead_letter_and_requeues_a_file() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    std::fs::write(ws.path("console.token"), TOKEN).unwrap();
    let d = ws
        .start_against(
            &sim,
            &format!(
                "{FAST}[console]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
                ws.path("console.token").display()
            ),
        )
        .await;
    let console = format!("http://{}", d.r().console_addr.unwrap());

    // A day's work: two POs, a dead letter (Ingram refuses the 855's call), a broken file.
    for (ev, po) in [("E-B-1", "IM-PO-1001"), ("E-B-2", "IM-PO-2002")] {
        let (s, _) = post(&d.url(), &sample_with(ev, po), Some(&sign(ev))).await;
        assert_eq!(s, 200);
    }
    d.wait_written(2).await;
    sim.push_faults(vec![Fault::Status(400)]);
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    d.until("the dead letter", || d.r().store.dead_count() == 1)
        .await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "broken.856", b"ISA*00*this file stops here");
    assert!(matches!(
        d.wait_inbox(&mut rx, "broken.856").await,
        Outcome::Rejected { .. }
    ));

    let b = Browser::start().await;

    // Logging in through the form; the session cookie is out of the page's reach (HttpOnly).
    b.go(&format!("{console}/pos")).await;
    assert!(b.url().await.ends_with("/login"), "{}", b.url().await);
    b.type_into("input[name=token]", TOKEN).await;
    b.click("form.login button").await;
    let counts = b.text("#counts").await;
    assert!(counts.contains("dead letters"), "{counts}");
    assert!(counts.contains("files in error/"), "{counts}");
    assert_eq!(
        b.text("a.tile[href='/dead'] .n").await,
        "1",
        "one dead letter"
    );
    assert_eq!(b.text("a.tile[href='/errors'] .n").await, "1");
    assert_eq!(b.js("return document.cookie").await, "");
    let shot = b.screenshot("home").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Search, then the PO's page.
    b.go(&format!("{console}/pos")).await;
    b.type_into("form.search input[name=po]", "IM-PO-2002")
        .await;
    b.click("form.search button").await;
    b.click("table#pos a[href='/pos/IM-PO-2002']").await;
    let h1 = b.text("h1").await;
    assert!(
        h1.contains("IM-PO-2002") && h1.contains("850_written"),
        "{h1}"
    );
    assert!(b.text("#x850").await.contains("BEG*00*"));
    assert!(b.text("#timeline").await.contains("850"));
    b.screenshot("po").await;

    // Retry the dead letter: Ingram accepts it this time.
    b.go(&format!("{console}/dead")).await;
    assert!(b.text("section.dead").await.contains("IM-PO-1001"));
    b.screenshot("dead-letters").await;
    b.click("section.dead form button").await;
    assert!(b.text("p.flash").await.contains("is back in the queue"));
    d.until("the retried call accepted", || {
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

    // Requeue the broken file: it leaves error/ for the inbox (and, still broken, comes back).
    b.go(&format!("{console}/errors")).await;
    assert!(b.text("section.errfile").await.contains("broken.856"));
    b.screenshot("error-files").await;
    b.click("section.errfile form button").await;
    assert!(b.text("p.flash").await.contains("back in the inbox"));
    assert!(matches!(
        d.wait_inbox(&mut rx, "broken.856").await,
        Outcome::Rejected { .. }
    ));

    // An open page refreshes itself when something happens (server-sent events).
    b.go(&format!("{console}/")).await;
    b.js("window.beforeTheEvent = true; return null").await;
    let (s, _) = post(
        &d.url(),
        &sample_with("E-B-3", "IM-PO-3003"),
        Some(&sign("E-B-3")),
    )
    .await;
    assert_eq!(s, 200);
    b.find_xpath("//ul[@id='activity']/li[contains(., 'IM-PO-3003')]")
        .await;
    assert_eq!(
        b.js("return window.beforeTheEvent === undefined").await,
        true
    );

    // At a phone's width nothing scrolls sideways.
    b.resize(390, 844).await;
    b.go(&format!("{console}/pos")).await;
    assert_eq!(
        b.js("return document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    b.screenshot("pos-phone").await;

    // Logging out ends the session.
    b.resize(1280, 900).await;
    b.go(&format!("{console}/")).await;
    b.click("form.logout button").await;
    b.find("form.login").await;
    b.go(&format!("{console}/dead")).await;
    assert!(b.url().await.ends_with("/login"));
    b.quit().await;
    d.stop().await;
}
