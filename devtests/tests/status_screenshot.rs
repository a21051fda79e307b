//! The status page as a browser draws it: headless Chromium (Debian's `chromium`) loads `/` from
//! the real HTTP server (so the page's Content-Security-Policy applies), at a laptop and a phone
//! width, and the screenshots must show text and nothing cut off at the right edge (a table too
//! wide for a phone would run into the page's right margin). Says "skipped" where chromium is not
//! installed. The screenshots are kept in the repository's `target/status-screenshots/` for a
//! person to look at.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use securedrop_tor_exporter::http::connection_policy::Limits;
use securedrop_tor_exporter::snapshot::{Shared, Snapshot};
use securedrop_tor_exporter::source::onion::ServiceHealth;
use securedrop_tor_exporter::{http, metrics};
use support::process;

#[path = "../../tests/fixtures/examples.rs"]
mod examples;

fn snapshot() -> Snapshot {
    let mut s = Snapshot {
        refreshed: true,
        tor_up: true,
        status: Some(examples::tor_status()),
        last_success_unix: Some(securedrop_tor_exporter_now() - 3.0),
        ..Default::default()
    };
    let mut onion = examples::onion_health();
    // A service whose start-up check is still running, and a long role name.
    onion.services.insert(
        "journalist_interface_long_role_name".into(),
        ServiceHealth {
            published: None,
            ..Default::default()
        },
    );
    s.onion = onion;
    s
}

fn securedrop_tor_exporter_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs chromium once for one screenshot, with a deadline; stops it by PID if it hangs.
fn screenshot(chromium: &Path, url: &str, out: &Path, width: u32, height: u32) {
    let profile = support::temp_dir::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            // Nothing but our loopback server resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let Some(status) = process::wait_exit(&mut child, Duration::from_secs(90)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium took longer than 90 s");
    };
    assert!(status.success(), "chromium exited with {status}");
}

struct Picture {
    width: u32,
    height: u32,
    /// Luma per pixel.
    luma: Vec<u8>,
}

fn load(path: &Path) -> Picture {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let luma = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| {
            let (r, g, b) = if channels >= 3 {
                (p[0] as u32, p[1] as u32, p[2] as u32)
            } else {
                (p[0] as u32, p[0] as u32, p[0] as u32)
            };
            ((r * 299 + g * 587 + b * 114) / 1000) as u8
        })
        .collect();
    Picture {
        width: info.width,
        height: info.height,
        luma,
    }
}

impl Picture {
    fn dark_in(&self, x0: u32, x1: u32) -> usize {
        (0..self.height)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| self.luma[(y * self.width + x) as usize] < 128)
            .count()
    }
}

#[test]
fn status_page_is_legible_at_laptop_and_phone_widths() {
    let shared = Shared::new(snapshot());
    let app = http::router(Arc::new(metrics::registry(shared.clone())), shared);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // The server on its own thread and runtime; chromium runs from this one.
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let limits = Limits {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(60),
                write_stall_timeout: http::WRITE_STALL_TIMEOUT,
                max_requests: http::MAX_REQUESTS_PER_CONNECTION,
            };
            http::serve(listener, None, app, limits, stop_rx)
                .await
                .unwrap();
        });
    });
    let port = port_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // The headers that keep the page self-contained, whatever the browser.
    let page =
        support::http::get(([127, 0, 0, 1], port).into(), "/", Duration::from_secs(10)).unwrap();
    assert_eq!(page.status, 200);
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert!(
            page.header(name)
                .is_some_and(|v| v.to_ascii_lowercase().starts_with(value)),
            "{name}: {value} missing:\n{:?}",
            page.headers
        );
    }

    let Some(chromium) = chromium() else {
        eprintln!("status page screenshot: skipped (chromium is not installed)");
        let _ = stop_tx.send(true);
        server.join().unwrap();
        return;
    };

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    for (name, width, height) in [("laptop", 1366, 900), ("phone", 390, 1600)] {
        let out = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&out);
        screenshot(&chromium, &url, &out, width, height);
        let p = load(&out);
        assert_eq!((p.width, p.height), (width, height), "{name}");
        let text = p.dark_in(0, width);
        assert!(
            text > 2000,
            "{name}: the screenshot shows almost no text ({text} dark pixels)"
        );
        // The body has 1rem (16 px) of padding: the rightmost 10 px stay blank unless
        // something is wider than the window.
        let edge = p.dark_in(width - 10, width);
        assert_eq!(edge, 0, "{name}: content runs into the right edge");
        eprintln!(
            "status page screenshot {name} {width}x{height}: {text} dark pixels, {}",
            out.display()
        );
    }
    let _ = stop_tx.send(true);
    server.join().unwrap();
}
