//! The dashboard in a real browser: a store holding real runs (a console
//! recorded from a real guest with a CSD-lock regression, the same console
//! behind 100,000 lines of boot noise, and a console made of XSS attempts)
//! and real bisections (`csdci bisect --run` on a git repository), served by
//! the real `csdci serve --listen … --no-scheduler`, driven through Debian's
//! chromedriver and headless Chromium. Every page loads without a JavaScript
//! error and is saved as a screenshot under `target/web-screenshots/`; the
//! console viewer jumps to a finding; a bisection page updates live; the XSS
//! console renders as text; the action without the token is refused; the
//! live console of a running run appends the lines written to it and
//! highlights the CSD-lock line as it appears.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::repo::{CSDCI, DETERMINISTIC, Repo};
use csdci::store::Store;
use csdci::store::findings::StoredFinding;
use csdci::store::runs::{Finish, NewRun};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "test-token-0123456789abcdef";
const XSS_SCRIPT: &str = "<script>alert('xss-1')</script>";
const XSS_IMG: &str = "\"><img src=x onerror=alert('xss-2')>";

/// A child process killed on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn recorded_console() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/console/tests/fixtures/real/csd-regression-tcg-8cpu.log");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Writes a finished run with `console` through the store API, its findings
/// from the console analyzer.
fn add_run(store: &Store, data: &Path, commit: &str, console: &[u8], title: Option<&str>) -> i64 {
    let id = store
        .insert_run(&NewRun {
            repo: "/srv/linux".into(),
            commit: commit.into(),
            vcpus: 8,
            memory_mb: 2048,
            accel_requested: "tcg".into(),
            scftorture: "nthreads=8 weight_resched=0".into(),
            duration_s: 60,
            build_seconds: Some(312.5),
            build_cached: Some(false),
            artifacts: Some(data.join("artifact").display().to_string()),
            ..Default::default()
        })
        .unwrap();
    let run_dir = data.join("runs").join(id.to_string());
    std::fs::create_dir_all(&run_dir).unwrap();
    let log = run_dir.join("console.log");
    std::fs::write(&log, console).unwrap();
    store
        .set_run_paths(
            id,
            &run_dir.display().to_string(),
            &log.display().to_string(),
        )
        .unwrap();
    let a = csdci_console::analyze(console);
    let verdict = if a.findings.is_empty() {
        "clean"
    } else {
        "failed"
    };
    store
        .finish_run(
            id,
            &Finish {
                accel: Some("tcg".into()),
                boot_seconds: Some(4.2),
                test_seconds: Some(60.3),
                verdict: verdict.into(),
                title: title.map(str::to_string).or(a.title.clone()),
                console_findings: StoredFinding::from_console(&a.findings),
                ..Default::default()
            },
        )
        .unwrap();
    id
}

/// Fills the store: three runs, a job night with a regression.
fn fill(data: &Path) -> (i64, i64, i64) {
    let store = Store::open(data).unwrap();
    std::fs::create_dir_all(data.join("artifact")).unwrap();
    std::fs::write(
        data.join("artifact/config"),
        "CONFIG_CSD_LOCK_WAIT_DEBUG=y\n",
    )
    .unwrap();
    let real = recorded_console();
    let csd = add_run(&store, data, &"c5d1".repeat(10), &real, None);
    let mut big = Vec::with_capacity(8 << 20);
    for i in 0..100_000 {
        big.extend_from_slice(
            format!("[ {:>5}.{:06}] boot noise line {i}\n", i / 100, i % 100).as_bytes(),
        );
    }
    big.extend_from_slice(&real);
    let big = add_run(&store, data, &"b16b".repeat(10), &big, None);
    let mut xss = String::new();
    for i in 0..50 {
        xss.push_str(&format!("[    0.{i:06}] harmless line {i}\n"));
    }
    xss.push_str(&format!(
        "[    1.000000] {XSS_SCRIPT}\n[    1.000001] {XSS_IMG}\n"
    ));
    xss.push_str("[    1.000002] <b>bold?</b> &amp; </pre></html>\n");
    let xss = add_run(
        &store,
        data,
        &"0bad".repeat(10),
        xss.as_bytes(),
        Some(&format!("BUG: {XSS_SCRIPT}{XSS_IMG}")),
    );
    let night = store
        .night_start(
            "nightly",
            "master",
            "/srv/linux",
            Some(&"c5d1".repeat(10)),
            None,
        )
        .unwrap();
    let mut cell = store.cell_start(night, "vcpus=8", "{}").unwrap();
    cell.status = "failed".into();
    cell.runs = 3;
    cell.fails = 2;
    cell.run_ids = vec![csd, big, xss];
    cell.titles = vec![csdci::store::nights::TitleCount {
        title: format!("csd: {XSS_IMG}"),
        runs: 2,
    }];
    store.cell_update(&cell).unwrap();
    store.night_finish(night, "tested", None).unwrap();
    store
        .regression_insert(&csdci::store::regressions::NewRegression {
            job: "nightly",
            branch: "master",
            cell: "vcpus=8",
            title: &format!("csd: CSD lock {XSS_SCRIPT}"),
            kind: "test",
            good: None,
            bad: &"c5d1".repeat(10),
            night,
            runs: 3,
            fails: 2,
            detail: None,
        })
        .unwrap();
    (csd, big, xss)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Puts a tested series in the store the way the bot does (`cycle`:
/// `series_add`, `series_set` testing, each patch's row, `series_set` done
/// with the report, then the dry-run reply): a 2-patch series whose patch 2
/// introduces a failure, its cover letter's subject and the reply carrying
/// the XSS strings. Returns its id.
fn add_series(data: &Path) -> i64 {
    use csdci::bot::test::{Outcome, PatchResult};
    use csdci::store::series::{NewSeries, PatchRow, Reply};
    let store = Store::open(data).unwrap();
    let title = format!("smp: tidy {XSS_SCRIPT}");
    let id = store
        .series_add(&NewSeries {
            job: "smp-bot",
            series_key: "cover.1@example.org#v2",
            topic: "alice: smp tidy",
            version: 2,
            total: 2,
            title: &title,
            author: "Alice Dev <alice@example.org>",
            head_mid: "cover.1@example.org",
        })
        .unwrap();
    store
        .series_set(id, "testing", None, None, None, None)
        .unwrap();
    let base = "ba5e".repeat(10);
    let patches: Vec<PatchResult> = (1..=2)
        .map(|i| PatchResult {
            idx: i,
            commit: format!("{i}a7c").repeat(10),
            build: "ok".into(),
            errors: Vec::new(),
            runs: i,
            fails: if i == 2 { 2 } else { 0 },
        })
        .collect();
    for (p, t) in patches.iter().zip([
        format!("smp: rename {XSS_IMG}"),
        "smp: drop the wait".to_string(),
    ]) {
        store
            .series_patch_put(&PatchRow {
                series_id: id,
                idx: p.idx,
                message_id: format!("patch.{}@example.org", p.idx),
                title: t,
                commit_sha: Some(p.commit.clone()),
                build: Some(p.build.clone()),
                build_error: None,
                runs: p.runs,
                fails: p.fails,
            })
            .unwrap();
    }
    let facts = csdci::bot::Facts {
        base: base.clone(),
        from_trailer: true,
        branch: "master".into(),
        outcome: Outcome::Regression {
            guilty: 2,
            tip_fails: 2,
            base_fails: 0,
            runs: 2,
            excerpt: format!("BUG: {XSS_SCRIPT}"),
        },
        patches,
    };
    store
        .series_set(
            id,
            "done",
            Some(&base),
            Some("regression"),
            Some("patch 2/2 introduces a failure (tip failed 2/2)"),
            Some(&serde_json::to_string(&facts).unwrap()),
        )
        .unwrap();
    store
        .series_reply_add(&Reply {
            id: 0,
            series_id: id,
            message_id: "reply.1@example.org".into(),
            in_reply_to: "cover.1@example.org".into(),
            refs: "cover.1@example.org".into(),
            sender: "csdci bot <bot@example.org>".into(),
            recipients: vec!["alice@example.org".into()],
            subject: format!("Re: [PATCH v2 0/2] {title}"),
            body: format!("Hi Alice,\n\nRESULT: regression\npatch 2/2 {XSS_IMG}\n"),
            status: "dry_run".into(),
            last_error: None,
            created_at: String::new(),
            sent_at: None,
        })
        .unwrap();
    id
}

/// Starts `csdci serve --listen 127.0.0.1:0` with `--jobs DIR` (and its
/// scheduler) or `--no-scheduler`, and returns it with the address it
/// reports.
fn serve(data: &Path, token_file: &Path, jobs: Option<&Path>) -> (Owned, String) {
    let mut cmd = Command::new(CSDCI);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(token_file);
    match jobs {
        Some(dir) => cmd.arg("--jobs").arg(dir),
        None => cmd.arg("--no-scheduler"),
    };
    let mut child = cmd
        .env("NO_COLOR", "1")
        .current_dir(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            if let Some(i) = line.find("http://") {
                let addr: String = line[i + 7..].chars().take_while(|c| *c != '/').collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("csdci serve names its address");
    (Owned(child), addr)
}

fn chromedriver() -> (Owned, u16) {
    for (p, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: run .ci/deps (as root) to install Debian's {what}"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Owned(child), port)
}

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Opens `path`, checks it rendered a csdci page with our script running and
/// no JavaScript error, saves a screenshot as `name`.png.
async fn page(c: &Client, base: &str, path: &str, name: &str) {
    c.goto(&format!("{base}{path}")).await.unwrap();
    let title = c.title().await.unwrap();
    assert!(title.ends_with("· csdci"), "{path}: title {title:?}");
    assert!(
        !title.starts_with("4") && !title.starts_with("5"),
        "{path}: error page {title:?}"
    );
    // The script ran (its error hook exists) and nothing failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c
            .execute(
                "return window.__csdciErrors === undefined ? null : window.__csdciErrors",
                vec![],
            )
            .await
            .unwrap();
        if let Value::Array(errs) = &v {
            assert!(errs.is_empty(), "{path}: JavaScript errors: {errs:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{path}: csdci.js did not run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn js_errors(c: &Client) -> Vec<Value> {
    match c
        .execute("return window.__csdciErrors || []", vec![])
        .await
        .unwrap()
    {
        Value::Array(a) => a,
        v => panic!("errors: {v}"),
    }
}

async fn no_alert(c: &Client, path: &str) {
    if let Ok(text) = c.get_alert_text().await {
        panic!("{path}: an alert opened: {text:?}");
    }
}

/// A bisection whose every run takes `sleep` seconds, started in the
/// background on `repo`.
fn slow_bisection(repo: &Repo, good: &str, bad: &str, sleep: f64) -> Owned {
    let tree = repo.path.to_string_lossy().to_string();
    let run = format!("sleep {sleep}; {DETERMINISTIC}");
    Owned(
        Command::new(CSDCI)
            .arg("--data-dir")
            .arg(&repo.data)
            .args(["bisect", good, bad, "--tree", &tree, "--run", &run])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn dashboard_in_a_real_browser() {
    let (repo, shas) = Repo::linear(12, 7, |_| false);
    // A finished bisection, the real way.
    let (code, report) = repo.bisect_json("base", &shas[11], DETERMINISTIC, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["culprit"]["sha"], json!(shas[6]));
    let (csd, big, xss) = fill(&repo.data);
    let series = add_series(&repo.data);
    let token_file = repo.data.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (_serve, addr) = serve(&repo.data, &token_file, None);
    let base = format!("http://{addr}");
    let (_driver, port) = chromedriver();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromedriver session");

        // Every page loads.
        page(&c, &base, "/", "overview").await;
        let text = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(text.contains("nightly"), "{text}");
        assert!(text.contains(&format!("csd: CSD lock {XSS_SCRIPT}")), "{text}");
        page(&c, &base, "/jobs/nightly", "job-history").await;
        assert_eq!(
            c.find_all(Locator::Css("#history-chart rect.fails")).await.unwrap().len(),
            1
        );
        page(&c, &base, &format!("/runs/{csd}"), "run").await;
        let csd_rows = c.find_all(Locator::Css("table.csd tbody tr")).await.unwrap();
        assert!(!csd_rows.is_empty(), "the recorded console has CSD groups");
        page(&c, &base, "/bisections/1", "bisection").await;
        let text = c.find(Locator::Css("#report")).await.unwrap().text().await.unwrap();
        assert!(text.contains(&shas[6]), "the report names the culprit: {text}");
        assert!(text.contains("Fixes:"), "{text}");
        // The posterior heatmap: a row per leading candidate, the culprit's
        // row first (most likely at its best), a cell per step and candidate.
        let v = c
            .execute(
                "return {labels: Array.from(document.querySelectorAll('#posterior-heatmap text.label')).map(t => t.textContent),
                         cells: document.querySelectorAll('#posterior-heatmap rect.heat').length,
                         steps: document.querySelectorAll('#steps td:nth-child(11)').length,
                         leading: Array.from(document.querySelectorAll('#steps td:nth-child(10)')).map(t => t.textContent).filter(t => t)};",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v["labels"][0], json!(shas[6][..12]), "{v}");
        assert!(v["cells"].as_u64().unwrap() >= 2, "{v}");
        assert!(
            v["leading"].as_array().unwrap().iter().all(|t| t.as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit())),
            "the leading column shows commits: {v}"
        );
        page(&c, &base, "/search?q=c5d1c5d1", "search").await;
        assert!(c.find(Locator::Css(&format!("tr#run-{csd}"))).await.is_ok());
        page(&c, &base, &format!("/runs/{csd}/console"), "console").await;

        // The console viewer jumps to a finding: from the run page of the
        // 100,000-line console, the link opens a window around the finding
        // with its line highlighted and in view.
        page(&c, &base, &format!("/runs/{big}"), "run-big").await;
        let link = c.find(Locator::Css("a.finding-link")).await.unwrap();
        let href = link.attr("href").await.unwrap().unwrap();
        let line: u64 = href.rsplit("#L").next().unwrap().parse().unwrap();
        assert!(line > 100_000, "the finding is past the boot noise: {href}");
        link.click().await.unwrap();
        c.wait()
            .for_element(Locator::Css(&format!("#L{line}")))
            .await
            .unwrap();
        let v = c
            .execute(
                "const e = document.getElementById(location.hash.slice(1));
                 const r = e.getBoundingClientRect();
                 return {hit: e.classList.contains('hit'), top: r.top, bottom: r.bottom,
                         height: window.innerHeight, lines: document.querySelectorAll('pre.console .line').length};",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v["hit"], json!(true), "{v}");
        let (top, bottom, h) = (
            v["top"].as_f64().unwrap(),
            v["bottom"].as_f64().unwrap(),
            v["height"].as_f64().unwrap(),
        );
        assert!(top >= 0.0 && bottom <= h, "line {line} is in view: {v}");
        assert!(v["lines"].as_u64().unwrap() <= 2000, "a window, not the whole log: {v}");
        assert!(js_errors(&c).await.is_empty());
        std::fs::write(
            screenshots().join("console-finding.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();

        // A multi-line finding is highlighted first..last (its end marked),
        // as the store has its positions; its stored byte offset opens the
        // same window (the server finds the line without reading the log).
        let stored = Store::open_read_only(&repo.data).unwrap().run_findings(big).unwrap();
        let f = stored.iter().find(|f| f.first_line == line).expect("the linked finding");
        let last = f.last_line.expect("its last line is stored");
        assert!(last > line, "a multi-line finding: {f:?}");
        let v = c
            .execute(
                "const [a, b] = arguments;
                 const at = n => { const e = document.getElementById('L' + n);
                                   return e ? {cls: e.className, f: e.getAttribute('data-finding')} : null; };
                 const all = [];
                 for (let n = a; n <= b; n++) all.push(at(n));
                 return {first: at(a), last: at(b), after: at(b + 1), all: all};",
                vec![json!(line), json!(last)],
            )
            .await
            .unwrap();
        let ord = json!(f.ordinal.to_string());
        assert!(v["last"]["cls"].as_str().unwrap().contains("hit-last"), "{v}");
        assert_eq!(v["last"]["f"], ord, "{v}");
        assert!(v["first"]["cls"].as_str().unwrap().contains("hit-first"), "{v}");
        assert!(
            v["all"].as_array().unwrap().iter().all(|l| l["cls"].as_str().unwrap().contains("hit") && l["f"] == ord),
            "every line of the finding is highlighted: {v}"
        );
        assert_ne!(v["after"]["f"], ord, "the line after is not the finding's: {v}");
        c.goto(&format!("{base}/runs/{big}/console?byte={}", f.start_byte.unwrap()))
            .await
            .unwrap();
        c.wait().for_element(Locator::Css(&format!("#L{line}.hit-first"))).await.unwrap();
        let hash: String = c.execute("return location.hash", vec![]).await.unwrap().as_str().unwrap().into();
        assert_eq!(hash, format!("#L{line}"));
        assert!(js_errors(&c).await.is_empty());

        // The XSS console and title render as text.
        for (path, name) in [
            (format!("/runs/{xss}"), "xss-run"),
            (format!("/runs/{xss}/console"), "xss-console"),
            (format!("/series/{series}"), "series"),
            ("/".to_string(), "overview-again"),
        ] {
            page(&c, &base, &path, name).await;
            no_alert(&c, &path).await;
            let v = c
                .execute(
                    "return {imgs: document.querySelectorAll('img').length,
                             scripts: Array.from(document.scripts).map(s => s.src),
                             bold: document.querySelectorAll('main b').length,
                             text: document.body.innerText};",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(v["imgs"], json!(0), "{path}: {v}");
            assert_eq!(v["bold"], json!(0), "{path}: {v}");
            assert_eq!(v["scripts"], json!([format!("{base}/static/csdci.js")]), "{path}");
            let text = v["text"].as_str().unwrap();
            assert!(text.contains(XSS_SCRIPT), "{path}: the literal text is shown");
        }
        let text = c.find(Locator::Css("pre.console")).await;
        assert!(text.is_err(), "overview has no console");
        // The overview lists the series; its page shows the patches, the
        // guilty one marked, and the reply, all as text.
        let row = c
            .find(Locator::Css(&format!("#series a[href='/series/{series}']")))
            .await
            .expect("the overview links the series");
        let tr = row.find(Locator::XPath("./ancestor::tr")).await.unwrap();
        let text = tr.text().await.unwrap();
        assert!(text.contains("v2") && text.contains("Alice Dev"), "{text}");
        assert!(text.contains("patch 2/2 introduces a failure"), "{text}");
        row.click().await.unwrap();
        c.wait()
            .for_element(Locator::Css("tr#patch-2.guilty"))
            .await
            .unwrap();
        assert!(js_errors(&c).await.is_empty());
        no_alert(&c, "/series").await;
        let v = c
            .execute(
                "return {rows: document.querySelectorAll('table.patches tbody tr[id]').length,
                         guilty: document.querySelector('.guilty-line').innerText,
                         reply: document.getElementById('reply-body').innerText,
                         excerpt: document.querySelector('pre.excerpt').innerText,
                         title: document.querySelector('.series-title').innerText};",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v["rows"], json!(2), "{v}");
        assert!(v["guilty"].as_str().unwrap().contains("patch 2/2"), "{v}");
        assert!(v["reply"].as_str().unwrap().contains(XSS_IMG), "{v}");
        assert!(v["excerpt"].as_str().unwrap().contains(XSS_SCRIPT), "{v}");
        assert!(v["title"].as_str().unwrap().contains(XSS_SCRIPT), "{v}");
        let j: Value = c
            .execute_async(
                &format!("fetch('/api/v1/series/{series}').then(r => r.json()).then(arguments[0])"),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(j["guilty"], json!(2), "{j}");
        assert_eq!(j["reply"]["status"], json!("dry_run"), "{j}");
        assert_eq!(j["patches"][0]["title"], json!(format!("smp: rename {XSS_IMG}")), "{j}");
        c.goto(&format!("{base}/runs/{xss}/console")).await.unwrap();
        let pre = c.find(Locator::Css("pre.console")).await.unwrap().text().await.unwrap();
        assert!(pre.contains(XSS_IMG), "{pre}");
        assert!(pre.contains("<b>bold?</b> &amp; </pre></html>"), "{pre}");

        // The live console of a running run: the tail is shown, lines the
        // guest writes appear without reload, the CSD-lock line highlighted.
        let real = recorded_console();
        let text = String::from_utf8_lossy(&real).to_string();
        let all: Vec<&str> = text.lines().collect();
        let csd_line = all
            .iter()
            .position(|l| l.contains("Detected non-responsive CSD lock"))
            .unwrap() as u64
            + 1;
        let head = (csd_line - 40) as usize;
        let (live, live_log) = {
            let store = Store::open(&repo.data).unwrap();
            let id = store
                .insert_run(&NewRun {
                    repo: "/srv/linux".into(),
                    commit: "11fe".repeat(10),
                    vcpus: 8,
                    memory_mb: 2048,
                    accel_requested: "tcg".into(),
                    scftorture: "nthreads=8".into(),
                    duration_s: 60,
                    ..Default::default()
                })
                .unwrap();
            let dir = repo.data.join("runs").join(id.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let log = dir.join("console.log");
            std::fs::write(&log, format!("{}\n", all[..head].join("\n"))).unwrap();
            store
                .set_run_paths(id, &dir.display().to_string(), &log.display().to_string())
                .unwrap();
            (id, log)
        };
        page(&c, &base, "/", "overview-running").await;
        let href = format!("/runs/{live}/live");
        c.find(Locator::Css(&format!("tr#run-{live} a.live-link[href='{href}']")))
            .await
            .expect("the overview links the running run's live console");
        page(&c, &base, &format!("/runs/{live}"), "run-running").await;
        c.find(Locator::Css(&format!("a#live-link[href='{href}']"))).await.unwrap();
        page(&c, &base, &href, "live-console").await;
        c.execute("window.__notReloaded = true;", vec![]).await.unwrap();
        // The tail: the last 200 lines written so far.
        let first = head - 200 + 1;
        let v = c
            .execute(
                "const l = document.querySelectorAll('#live-console .line');
                 return [l.length, l[0].id, l[l.length - 1].id]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v, json!([200, format!("L{first}"), format!("L{head}")]));
        assert!(c.find(Locator::Id(&format!("L{csd_line}"))).await.is_err());
        // The guest writes the rest, in three pieces (one ends mid-line).
        let rest = format!("{}\n{XSS_IMG}\n", all[head..].join("\n"));
        let cut1 = rest.len() / 3;
        let cut2 = 2 * rest.len() / 3;
        for piece in [&rest[..cut1], &rest[cut1..cut2], &rest[cut2..]] {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&live_log).unwrap();
            f.write_all(piece.as_bytes()).unwrap();
            drop(f);
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let total = all.len() + 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        let v = loop {
            let v = c
                .execute(
                    "const [csd, last] = arguments;
                     const e = document.getElementById('L' + csd);
                     const l = document.getElementById('L' + last);
                     return {csd: e ? e.classList.contains('hit') : null,
                             csdText: e ? e.textContent : null,
                             last: l ? l.textContent : null,
                             lines: document.querySelectorAll('#live-console .line').length,
                             findings: Array.from(document.querySelectorAll('#live-findings li')).map(li => li.getAttribute('data-line')),
                             notReloaded: window.__notReloaded === true,
                             imgs: document.querySelectorAll('img').length};",
                    vec![json!(csd_line), json!(total)],
                )
                .await
                .unwrap();
            if v["last"].is_string() && v["csd"] == json!(true) {
                break v;
            }
            assert!(Instant::now() < deadline, "the appended lines appear: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(v["notReloaded"], json!(true), "{v}");
        assert_eq!(v["lines"], json!(total - first + 1), "every line once: {v}");
        assert!(v["csdText"].as_str().unwrap().contains("non-responsive CSD lock"), "{v}");
        assert!(v["findings"].as_array().unwrap().contains(&json!(csd_line.to_string())), "{v}");
        assert!(v["last"].as_str().unwrap().trim_end().ends_with(XSS_IMG), "the XSS line as text: {v}");
        assert_eq!(v["imgs"], json!(0), "{v}");
        let order = c
            .execute(
                "return Array.from(document.querySelectorAll('#live-console .line')).every((e, i) => e.id === 'L' + (i + arguments[0]))",
                vec![json!(first)],
            )
            .await
            .unwrap();
        assert_eq!(order, json!(true), "lines numbered {first}..{total} in order");
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        no_alert(&c, &href).await;
        std::fs::write(
            screenshots().join("live-console-updated.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        // The run ends: the page says so.
        {
            let store = Store::open(&repo.data).unwrap();
            store
                .finish_run(
                    live,
                    &Finish {
                        verdict: "failed".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = c.find(Locator::Id("live-status")).await.unwrap().text().await.unwrap();
            if t == "done" {
                break;
            }
            assert!(Instant::now() < deadline, "the status turns done: {t}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The overview follows the store: a run added while it is open
        // appears in its table without reload.
        page(&c, &base, "/", "overview-live").await;
        c.execute("window.__notReloaded = true;", vec![]).await.unwrap();
        let added = {
            let store = Store::open(&repo.data).unwrap();
            add_run(&store, &repo.data, &"ad0e".repeat(10), b"[    0.000000] hello\n", Some("added while open"))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if c.find(Locator::Css(&format!("#runs tr#run-{added}"))).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "run #{added} appears on the open overview");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let v = c
            .execute(
                "return [window.__notReloaded === true, document.querySelector('#runs tbody tr').id,
                         document.querySelectorAll('#runs a.live-link').length]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v, json!([true, format!("run-{added}"), 0]), "newest first, no run running");
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        std::fs::write(
            screenshots().join("overview-updated.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();

        // The action without the token (or with a wrong one) is refused; with
        // it, it is accepted (and fails only because this serve has no jobs).
        page(&c, &base, "/jobs/nightly", "job-again").await;
        let post = "const [token, done] = arguments;
            const h = token ? {'X-Csdci-Token': token} : {};
            fetch('/api/v1/jobs/nightly/rerun', {method: 'POST', headers: h})
              .then(r => r.json().then(j => done([r.status, j.message])))
              .catch(e => done([0, String(e)]));";
        let status = |v: Value| v[0].as_u64().unwrap();
        let v = c.execute_async(post, vec![json!(null)]).await.unwrap();
        assert_eq!(status(v.clone()), 401, "{v}");
        let v = c.execute_async(post, vec![json!("wrong-token-0123456789")]).await.unwrap();
        assert_eq!(status(v.clone()), 401, "{v}");
        let v = c.execute_async(post, vec![json!(TOKEN)]).await.unwrap();
        assert_eq!(status(v.clone()), 400, "token accepted, no --jobs directory: {v}");
        // The button does the same without a token.
        c.find(Locator::Id("rerun")).await.unwrap().click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = c.find(Locator::Id("action-result")).await.unwrap().text().await.unwrap();
            if !t.is_empty() {
                assert!(t.starts_with("401"), "{t}");
                break;
            }
            assert!(Instant::now() < deadline, "the button's answer is shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(js_errors(&c).await.is_empty());

        // The action against a real jobs directory: a second csdci serve
        // with --jobs (and its scheduler; the job's slot is far away) runs a
        // night of a small `run:` job when the button is pressed with the
        // token typed in.
        let small = repo.data.parent().unwrap().join("small-tree");
        std::fs::create_dir_all(&small).unwrap();
        common::repo::git(&small, &["init", "-q", "-b", "main"]);
        std::fs::write(small.join("state"), "good\n").unwrap();
        common::repo::git(&small, &["add", "-A"]);
        common::repo::git(&small, &["commit", "-qm", "good state"]);
        let jobs = repo.data.parent().unwrap().join("jobs-dir");
        std::fs::create_dir_all(&jobs).unwrap();
        std::fs::write(
            jobs.join("small.yaml"),
            format!(
                "name: small\ntree: {}\nbranch: main\nschedule: \"0 2 1 1 *\"\nrun: grep -q good state\nruns: 1\n",
                small.display()
            ),
        )
        .unwrap();
        let (_serve2, addr2) = serve(&repo.data, &token_file, Some(&jobs));
        let base2 = format!("http://{addr2}");
        page(&c, &base2, "/jobs/small", "job-new").await;
        let v = c.execute_async(post.replace("/nightly/", "/no-such-job/").as_str(), vec![json!(TOKEN)]).await.unwrap();
        assert_eq!(status(v.clone()), 404, "not a job of --jobs: {v}");
        assert!(
            Store::open_read_only(&repo.data).unwrap().nights(Some("small"), None, 10).unwrap().is_empty()
        );
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        c.find(Locator::Id("rerun")).await.unwrap().click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = c.find(Locator::Id("action-result")).await.unwrap().text().await.unwrap();
            if !t.is_empty() {
                assert!(t.starts_with("200: night of small started"), "{t}");
                break;
            }
            assert!(Instant::now() < deadline, "the button's answer is shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let night = loop {
            let s = Store::open_read_only(&repo.data).unwrap();
            if let Some(n) = s.nights(Some("small"), None, 10).unwrap().into_iter().next()
                && n.finished_at.is_some()
            {
                break n;
            }
            assert!(Instant::now() < deadline, "the night of small ends");
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(night.status, "tested", "{night:?}");
        let j: Value = c
            .execute_async(
                "fetch('/api/v1/jobs/small').then(r => r.json()).then(arguments[0])",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(j["nights"][0]["id"], json!(night.id), "{j}");
        assert_eq!(j["nights"][0]["fails"], json!(0), "{j}");
        page(&c, &base2, "/jobs/small", "job-rerun").await;
        c.find(Locator::Css(&format!("tr#night-{}", night.id))).await.unwrap();

        // A live bisection updates without reload.
        let _bisect = slow_bisection(&repo, &shas[0], &shas[11], 1.5);
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            let s = Store::open_read_only(&repo.data).unwrap();
            if let Some(b) = s.bisect_list().unwrap().into_iter().find(|b| b.id > 1) {
                break b.id;
            }
            assert!(Instant::now() < deadline, "the second bisection starts");
            std::thread::sleep(Duration::from_millis(100));
        };
        page(&c, &base, &format!("/bisections/{id}"), "bisection-live").await;
        c.execute("window.__notReloaded = true;", vec![]).await.unwrap();
        let rows = || async {
            c.execute(
                "return document.querySelectorAll('#steps tr.step').length",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap()
        };
        let before = rows().await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let now = rows().await;
            if now > before + 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new step row in 90 s (rows: {before} → {now})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let v = c
            .execute(
                "return [window.__notReloaded === true, document.querySelectorAll('#posterior-chart circle').length]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(v[0], json!(true), "the page was not reloaded");
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        std::fs::write(
            screenshots().join("bisection-live-updated.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        c.close().await.unwrap();
    });
}

/// A POST from outside any browser (as another site's page would make it
/// with curl-like freedom): the status code.
fn raw_post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out:?}"))
}

/// Waits up to `secs` for `f` to hold, polling.
async fn until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "{what} (waited {secs} s)");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&c).contains(marker)
        {
            found.push(String::from_utf8_lossy(&c).replace('\0', " "));
        }
    }
    found
}

/// Sets the form field `name` of form `form` (text, or a checkbox).
async fn fill_in(c: &Client, form: &str, name: &str, value: &str) {
    let field = c
        .find(Locator::Css(&format!("form#{form} [name=\"{name}\"]")))
        .await
        .unwrap_or_else(|e| panic!("{form}: no field {name}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn action_result(c: &Client) -> String {
    let mut text = String::new();
    until(20, "the action's answer is shown", || {
        let c = c.clone();
        async move {
            let t: Value = c
                .execute(
                    "const o = document.getElementById('action-result');
                     return o && o.getAttribute('data-status') ? o.textContent : null;",
                    vec![],
                )
                .await
                .unwrap();
            t.is_string()
        }
    })
    .await;
    let t = c
        .find(Locator::Id("action-result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.push_str(&t);
    text
}

/// The actions in a real browser against a real `csdci serve`: a fix
/// validation `csdci bisect --validate-fix` stored shows on the bisection
/// page; a bisection started from the actions page (a `--run` command on a
/// small git repository) appears and finishes live with the right culprit;
/// a running one is cancelled from its page (its command's processes end,
/// the journal resumes with `csdci bisect --resume`); without the token, or
/// cross-site, nothing starts; an invalid RunSpec value shows the
/// validation message.
#[test]
fn actions_in_a_real_browser() {
    let (repo, mut shas) = Repo::linear(12, 7, |_| false);
    // The fix: commit 13 makes the state good again.
    std::fs::write(repo.path.join("state"), "good\n").unwrap();
    common::repo::git(&repo.path, &["commit", "-qam", "fix the state"]);
    let fix = common::repo::git(&repo.path, &["rev-parse", "HEAD"]);
    shas.push(fix.clone());
    let (code, report) = repo.bisect_json(
        "base",
        &shas[11],
        DETERMINISTIC,
        &["--validate-fix", &fix, "--fix-runs", "4"],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["culprit"]["sha"], json!(shas[6]));
    assert_eq!(report["fix_validation"]["runs"], json!(4), "{report}");
    assert_eq!(report["fix_validation"]["fails"], json!(0), "{report}");
    assert_eq!(report["fix_validation"]["passed"], json!(true), "{report}");
    // The culprit itself is no fix: refused with why.
    let out = repo.csdci(&[
        "bisect",
        "base",
        &shas[11],
        "--tree",
        &repo.path.to_string_lossy(),
        "--run",
        DETERMINISTIC,
        "--validate-fix",
        &shas[11],
        "--fix-runs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "a bad commit is no fix");

    let token_file = repo.data.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (_serve, addr) = serve(&repo.data, &token_file, None);
    let base = format!("http://{addr}");
    let (_driver, port) = chromedriver();
    let bisections = || {
        Store::open_read_only(&repo.data)
            .unwrap()
            .bisect_list()
            .unwrap()
    };
    let known = bisections().len();
    assert_eq!(known, 2, "the two CLI bisections");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromedriver session");

        // The fix validation beside the revert check, and in the JSON.
        page(&c, &base, "/bisections/1", "bisection-fix").await;
        let text = c.find(Locator::Css("#report")).await.unwrap().text().await.unwrap();
        assert!(text.contains("revert check"), "{text}");
        assert!(
            text.contains(&format!("fix {}", &fix[..12])) && text.contains("FIXED: 0 failures in 4 runs"),
            "{text}"
        );
        let row = c.find(Locator::Css("#fix-validations tbody tr.fix")).await.unwrap().text().await.unwrap();
        assert!(row.contains(&fix[..12]) && row.contains("fixed"), "{row}");
        let j: Value = c
            .execute_async("fetch('/api/v1/bisections/1').then(r => r.json()).then(arguments[0])", vec![])
            .await
            .unwrap();
        assert_eq!(j["fix_validations"][0]["commit"], json!(fix), "{j}");
        assert_eq!(j["fix_validations"][0]["verdict"], json!("fixed"), "{j}");
        assert_eq!(j["cancellable"], json!(false), "{j}");

        // The actions page; without the token the start is refused and
        // nothing starts.
        page(&c, &base, "/actions", "actions").await;
        let tree = repo.path.display().to_string();
        fill_in(&c, "start-bisection", "good", &shas[0]).await;
        fill_in(&c, "start-bisection", "bad", &shas[11]).await;
        fill_in(&c, "start-bisection", "tree", &tree).await;
        fill_in(&c, "start-bisection", "command", &format!("sleep 0.2; {DETERMINISTIC}")).await;
        c.find(Locator::Id("start-bisection-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("401: this action needs the token"), "{t}");
        assert_eq!(bisections().len(), known, "nothing started without the token");
        // Cross-site with the token: refused (403), nothing starts.
        let body = json!({"good": shas[0], "bad": shas[11], "tree": tree, "command": DETERMINISTIC}).to_string();
        for h in [("Origin", "http://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
            let code = raw_post(&addr, "/api/v1/bisections", &[h, ("X-Csdci-Token", TOKEN)], &body);
            assert_eq!(code, 403, "{h:?}");
        }
        assert_eq!(raw_post(&addr, "/api/v1/bisections", &[], &body), 401);
        assert_eq!(bisections().len(), known, "nothing started cross-site");

        // The token typed in; an invalid value: the validation message, no 500.
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        fill_in(&c, "start-bisection", "confidence", "2").await;
        c.find(Locator::Id("start-bisection-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("400: --confidence must be between 0.5 and 1"), "{t}");
        fill_in(&c, "start-run", "commit", "HEAD").await;
        fill_in(&c, "start-run", "tree", &tree).await;
        fill_in(&c, "start-run", "vcpus", "0").await;
        c.find(Locator::Id("start-run-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("400: --vcpus 0: must be at least 1"), "{t}");
        fill_in(&c, "start-run", "vcpus", "2").await;
        c.find(Locator::Id("start-run-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("400: tree:") && t.contains("not a Linux kernel tree"), "{t}");
        assert_eq!(bisections().len(), known, "nothing started on a bad value");
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);

        // Started: it appears, runs inside csdci serve and ends live with
        // the right culprit, the page never reloaded.
        fill_in(&c, "start-bisection", "confidence", "").await;
        c.find(Locator::Id("start-bisection-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        let id = known as i64 + 1;
        assert!(t.starts_with(&format!("202: bisection #{id} started")), "{t}");
        c.find(Locator::Id("action-link")).await.unwrap().click().await.unwrap();
        until(10, "the bisection page opens", || {
            let c = c.clone();
            async move { c.current_url().await.unwrap().path() == format!("/bisections/{id}") }
        })
        .await;
        c.execute("window.__notReloaded = true;", vec![]).await.unwrap();
        until(120, "the web-started bisection ends on its page", || {
            let c = c.clone();
            async move {
                c.find(Locator::Id("bisect-status")).await.unwrap().text().await.unwrap() == "done"
            }
        })
        .await;
        let state = |c: Client| async move {
            c.execute(
                "return [window.__notReloaded === true, document.getElementById('report').textContent,
                         document.querySelectorAll('#steps tr.step').length]",
                vec![],
            )
            .await
            .unwrap()
        };
        until(10, "the report appears", || {
            let c = c.clone();
            async move { state(c).await[1].as_str().unwrap().contains("culprit") }
        })
        .await;
        let v = state(c.clone()).await;
        assert_eq!(v[0], json!(true), "the page was not reloaded");
        assert!(v[1].as_str().unwrap().contains(&shas[6]), "the culprit: {v}");
        assert!(v[2].as_u64().unwrap() >= 3, "its steps: {v}");
        let b = Store::open_read_only(&repo.data).unwrap().bisect_get(id).unwrap().unwrap();
        assert_eq!(b.status, "done");
        let r: Value = serde_json::from_str(b.result.as_deref().unwrap()).unwrap();
        assert_eq!(r["culprit"]["sha"], json!(shas[6]));
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        std::fs::write(screenshots().join("bisection-started.png"), c.screenshot().await.unwrap()).unwrap();

        // A slow one, cancelled from its page while a run is going on: its
        // command's processes end, the journal keeps its steps, and
        // `csdci bisect --resume` finishes it.
        let marker = "csdci-web-cancel-marker";
        page(&c, &base, "/actions", "actions-again").await;
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        fill_in(&c, "start-bisection", "good", &shas[1]).await;
        fill_in(&c, "start-bisection", "bad", &shas[11]).await;
        fill_in(&c, "start-bisection", "tree", &tree).await;
        fill_in(&c, "start-bisection", "command", &format!(": {marker}; sleep 1.5; {DETERMINISTIC}")).await;
        c.find(Locator::Id("start-bisection-button")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        let slow = id + 1;
        assert!(t.starts_with(&format!("202: bisection #{slow} started")), "{t}");
        page(&c, &base, &format!("/bisections/{slow}"), "bisection-running").await;
        c.find(Locator::Id("cancel")).await.expect("a running bisection has its cancel button");
        until(60, "a step is journalled and a run is going on", || {
            let c = c.clone();
            async move {
                let rows = c
                    .execute("return document.querySelectorAll('#steps tr.step').length", vec![])
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap();
                rows >= 1 && !processes_with(marker).is_empty()
            }
        })
        .await;
        let steps_before = Store::open_read_only(&repo.data).unwrap().bisect_steps(slow, false).unwrap().len();
        // The actions page lists it as running here.
        let a: Value = c
            .execute_async("fetch('/api/v1/actions').then(r => r.json()).then(arguments[0])", vec![])
            .await
            .unwrap();
        assert_eq!(a["running"][0]["what"], json!(format!("bisection #{slow}")), "{a}");
        // Without the token: refused, it goes on.
        c.find(Locator::Id("cancel")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("401"), "{t}");
        assert_eq!(
            Store::open_read_only(&repo.data).unwrap().bisect_get(slow).unwrap().unwrap().status,
            "running"
        );
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        c.find(Locator::Id("cancel")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with(&format!("202: bisection #{slow} stops")), "{t}");
        until(30, "the cancelled bisection stops", || async {
            Store::open_read_only(&repo.data).unwrap().bisect_get(slow).unwrap().unwrap().status != "running"
        })
        .await;
        until(10, "its command's processes end", || async { processes_with(marker).is_empty() }).await;
        let b = Store::open_read_only(&repo.data).unwrap().bisect_get(slow).unwrap().unwrap();
        assert!(b.error.as_deref().unwrap_or("").contains("interrupt"), "{b:?}");
        until(20, "the page shows it stopped", || {
            let c = c.clone();
            async move {
                c.find(Locator::Id("bisect-status")).await.unwrap().text().await.unwrap() != "running"
            }
        })
        .await;
        until(20, "the page shows why it stopped", || {
            let c = c.clone();
            async move {
                c.find(Locator::Id("bisect-error")).await.unwrap().text().await.unwrap().contains("interrupted")
            }
        })
        .await;
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        std::fs::write(screenshots().join("bisection-cancelled.png"), c.screenshot().await.unwrap()).unwrap();
        // Cancelling what no longer runs: refused with why.
        let v = c
            .execute_async(
                "fetch(arguments[0], {method: 'POST', headers: {'X-Csdci-Token': arguments[1]}})
                   .then(r => r.json().then(j => arguments[2]([r.status, j.message])))",
                vec![json!(format!("/api/v1/bisections/{slow}/cancel")), json!(TOKEN)],
            )
            .await
            .unwrap();
        assert_eq!(v[0], json!(400), "{v}");

        // A job's night, re-run from its page inside a csdci serve with
        // --jobs, then cancelled from the same page: its command ends, the
        // night stays unfinished, and the next run resumes it.
        let night_marker = "csdci-web-night-marker";
        let jobs = repo.data.parent().unwrap().join("jobs-slow");
        std::fs::create_dir_all(&jobs).unwrap();
        std::fs::write(
            jobs.join("slow.yaml"),
            format!(
                "name: slow\ntree: {}\nbranch: main\nschedule: \"0 2 1 1 *\"\nrun: \": {night_marker}; sleep 2; grep -q good state\"\nruns: 4\n",
                repo.path.display()
            ),
        )
        .unwrap();
        let (_serve2, addr2) = serve(&repo.data, &token_file, Some(&jobs));
        let base2 = format!("http://{addr2}");
        page(&c, &base2, "/jobs/slow", "job-slow").await;
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        c.find(Locator::Id("rerun")).await.unwrap().click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("200: night of slow started in this csdci serve"), "{t}");
        until(60, "the night's command runs", || async { !processes_with(night_marker).is_empty() }).await;
        page(&c, &base2, "/jobs/slow", "job-slow-running").await;
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        c.find(Locator::Id("cancel-night")).await.expect("a running night has its cancel button").click().await.unwrap();
        let t = action_result(&c).await;
        assert!(t.starts_with("202: the night of slow stops"), "{t}");
        until(30, "the night's command ends", || async { processes_with(night_marker).is_empty() }).await;
        until(30, "the night no longer runs here", || {
            let c = c.clone();
            async move {
                let j: Value = c
                    .execute_async("fetch('/api/v1/jobs/slow').then(r => r.json()).then(arguments[0])", vec![])
                    .await
                    .unwrap();
                j["cancellable"] == json!(false)
            }
        })
        .await;
        assert!(js_errors(&c).await.is_empty(), "{:?}", js_errors(&c).await);
        let nights = Store::open_read_only(&repo.data).unwrap().nights(Some("slow"), None, 10).unwrap();
        assert_eq!(nights.len(), 1, "{nights:?}");
        assert!(nights[0].finished_at.is_none(), "a cancelled night stays unfinished: {:?}", nights[0]);
        let cells = Store::open_read_only(&repo.data).unwrap().cells(nights[0].id).unwrap();
        assert!(cells[0].runs < 4, "cancelled before its 4 runs: {:?}", cells[0]);
        c.close().await.unwrap();
        let out = repo.csdci(&["job", "run", "slow", "--once", "--jobs", &jobs.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let nights = Store::open_read_only(&repo.data).unwrap().nights(Some("slow"), None, 10).unwrap();
        assert_eq!(nights.len(), 1, "the same night resumed: {nights:?}");
        assert!(nights[0].finished_at.is_some());
        let cells = Store::open_read_only(&repo.data).unwrap().cells(nights[0].id).unwrap();
        assert_eq!(cells[0].runs, 4, "{:?}", cells[0]);

        // Resumable: the CLI goes on from the journal to the culprit.
        let out = repo.csdci(&["bisect", "--resume", &slow.to_string(), "--json"]);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr))
        });
        assert_eq!(out.status.code(), Some(0), "{r}");
        assert_eq!(r["culprit"]["sha"], json!(shas[6]), "{r}");
        let steps = Store::open_read_only(&repo.data).unwrap().bisect_steps(slow, false).unwrap();
        assert!(steps.len() > steps_before, "the resumed journal goes on ({steps_before} → {})", steps.len());
        assert!(
            steps.iter().any(|s| s.status == "interrupted"),
            "the cancelled run is journalled as interrupted: {:?}",
            steps.iter().map(|s| &s.status).collect::<Vec<_>>()
        );
    });
}
