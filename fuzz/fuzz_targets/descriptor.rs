//! Opens arbitrary text as one of our own v3 descriptors (the outer layer's certificate, the
//! armoured blocks, both decryptions) and parses arbitrary text as an inner layer. tor is the only
//! source of descriptors, but a damaged or hostile answer must never panic the exporter, and the
//! introduction-point count can never exceed the lines it was counted from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securedrop_tor_exporter::control::OnionAddress;
use securedrop_tor_exporter::source::descriptor;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // The address of the seed descriptors (a throwaway key of the private test network), so
    // mutations of a seed get past the outer MAC now and then.
    let address = OnionAddress::new(include_str!("../../tests/fixtures/descriptors/source.onion"))
        .expect("fixture address");
    let _ = descriptor::inspect(text, &address);
    let inner = descriptor::parse_inner(text);
    assert!(inner.introduction_points as usize <= text.lines().count());
});
