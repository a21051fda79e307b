//! Every series the exporter can emit, from every collector (tor, traffic, relay, onion), checked
//! against the privacy policy in `src/policy.rs`.

use std::time::Duration;

use securedrop_tor_exporter::control::address::contains_onion_address;
use securedrop_tor_exporter::metrics::{registry, render, Format};
use securedrop_tor_exporter::policy::{self, Class, FAMILIES, NEVER};
use securedrop_tor_exporter::snapshot::{Shared, Snapshot};
use securedrop_tor_exporter::source::status::TorStatus;

#[path = "fixtures/examples.rs"]
mod examples;

/// A snapshot with every optional part filled: the most the exporter can ever say.
fn maximal() -> Snapshot {
    Snapshot {
        refreshed: true,
        tor_up: true,
        status: Some(TorStatus {
            is_relay: true,
            ..examples::tor_status()
        }),
        traffic_read_bytes: Some(examples::coarse(16 * 1024 * 1024)),
        traffic_written_bytes: Some(examples::coarse(0)),
        relay: Some(examples::relay_status()),
        onion: examples::onion_health(),
        refresh_duration: Some(Duration::from_millis(1)),
        last_success_unix: Some(1.0),
        started_unix: Some(1.0),
        recovery_actions: Some((1, 2)),
        ..Default::default()
    }
}

fn sample_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_emitted_series_is_declared_and_allowed() {
    let text = render(&registry(Shared::new(maximal())), Format::Text);
    let names = sample_names(&text);
    assert!(
        names.len() > 40,
        "the maximal snapshot should exercise every collector:\n{text}"
    );
    for name in &names {
        let fam = policy::family_of_sample(name)
            .unwrap_or_else(|| panic!("{name} is not declared in src/policy.rs"));
        for (pattern, why) in NEVER {
            assert!(
                !name.contains(pattern),
                "{name} matches never-exported {pattern}: {why}"
            );
        }
        if name.contains("bytes") && fam.class != Class::Relay {
            assert_eq!(
                fam.class,
                Class::Coarse,
                "{name}: on a SecureDrop server, byte series must be coarsened"
            );
        }
    }
    // Every declared family is reachable by some snapshot (no dead policy entries).
    for f in FAMILIES {
        assert!(
            names.contains(&f.sample_name()),
            "{} is declared but never emitted",
            f.name
        );
    }
}

/// The label names of one sample line (`name{a="x",b="y"} 1` → `[a, b]`), read from the text
/// itself so that what is emitted is compared with what is declared.
fn label_names(line: &str) -> Vec<String> {
    let Some(open) = line.find('{') else {
        return vec![];
    };
    let close = line.rfind('}').expect("a closing brace");
    let mut names = vec![];
    let mut rest = &line[open + 1..close];
    while let Some(eq) = rest.find("=\"") {
        names.push(rest[..eq].trim_start_matches(',').to_owned());
        // Skip the quoted value (label values never contain an escaped quote here).
        let after = &rest[eq + 2..];
        let end = after.find('"').expect("a closing quote");
        rest = &after[end + 1..];
    }
    names
}

#[test]
fn every_sample_carries_exactly_the_declared_label_names() {
    for format in [Format::Text, Format::OpenMetrics] {
        let text = render(&registry(Shared::new(maximal())), format);
        let mut checked = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let name = line.split(['{', ' ']).next().unwrap();
            let fam = policy::family_of_sample(name)
                .unwrap_or_else(|| panic!("{name} is not declared in src/policy.rs"));
            let got = label_names(line);
            assert_eq!(
                got, fam.labels,
                "{line}: emitted label names differ from the declaration of {}",
                fam.name
            );
            checked += 1;
        }
        assert!(checked > 40, "{format:?}: only {checked} samples\n{text}");
    }
}

#[test]
fn no_onion_address_anywhere_in_either_format() {
    for format in [Format::Text, Format::OpenMetrics] {
        let text = render(&registry(Shared::new(maximal())), format);
        assert!(
            !contains_onion_address(&text),
            "an onion-address-shaped string is in the output:\n{text}"
        );
    }
}

#[test]
fn a_client_shows_no_relay_series() {
    let mut s = maximal();
    s.relay = None;
    let text = render(&registry(Shared::new(s)), Format::Text);
    for name in sample_names(&text) {
        let fam = policy::family_of_sample(&name).unwrap();
        assert_ne!(fam.class, Class::Relay, "{name} on a non-relay");
    }
}

#[test]
fn metrics_md_documents_every_family() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/METRICS.md")).unwrap();
    for f in FAMILIES {
        assert!(
            doc.contains(&format!("`{}`", f.sample_name())),
            "METRICS.md does not list `{}`",
            f.sample_name()
        );
    }
}

#[test]
fn privacy_md_gives_a_reason_for_every_onion_family() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/privacy.md")).unwrap();
    for f in FAMILIES {
        if f.name.starts_with("tor_onion_service_descriptor_")
            || f.name.starts_with("tor_onion_service_pow_")
        {
            assert!(
                doc.contains(&format!("`{}`", f.sample_name())),
                "docs/privacy.md does not say why `{}` is safe",
                f.sample_name()
            );
            assert_eq!(f.class, Class::Safe, "{}", f.name);
            assert_eq!(
                f.labels.first(),
                Some(&"service"),
                "{}: labelled by role",
                f.name
            );
        }
    }
}

/// The status page at `/`: from the largest snapshot, with an onion address in every place the
/// exporter could hold one (it keeps them in the tracker only), nothing forbidden appears.
#[test]
fn the_status_page_shows_nothing_the_policy_forbids() {
    let page = securedrop_tor_exporter::page::render(&maximal(), 1_764_000_060.0, "0.1.0");
    assert!(!contains_onion_address(&page), "{page}");
    for forbidden in [
        "<script",
        "javascript:",
        "src=",
        "url(",
        "@import",
        "http://",
        "https://",
        "<iframe",
        "<form",
        "<img",
        "<link",
        "HOSTADDR",
        "HOSTID",
    ] {
        assert!(
            !page
                .to_ascii_lowercase()
                .contains(&forbidden.to_ascii_lowercase()),
            "the status page contains {forbidden}"
        );
    }
    // Every service shown is a role name that /metrics shows too.
    let metrics = render(&registry(Shared::new(maximal())), Format::Text);
    for role in maximal().onion.services.keys() {
        assert!(metrics.contains(&format!("service=\"{role}\"")));
        assert!(
            page.contains(&format!(">{role}<")),
            "{role} missing on the page"
        );
    }
    // A role name is escaped, not markup.
    let mut s = maximal();
    s.onion.services.insert(
        "<b>x</b>".into(),
        securedrop_tor_exporter::source::onion::ServiceHealth::default(),
    );
    let page = securedrop_tor_exporter::page::render(&s, 1_764_000_060.0, "0.1.0");
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;") && !page.contains("<b>x</b>"));
}
