//! Feeds arbitrary bytes to the control-reply parser, in chunks and with limits chosen by the
//! input, and checks what must always hold: no panic, every message within the limits, and the
//! same outcome whether the bytes come at once or in pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securedrop_tor_exporter::control::reply::{Limits, Message, ParseError, ReplyParser};

#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<ParseError>,
}

fn run(limits: Limits, data: &[u8], chunk: usize) -> Outcome {
    let mut p = ReplyParser::new(limits);
    let mut messages = Vec::new();
    let mut error = None;
    for piece in data.chunks(chunk.max(1)) {
        let r = p.feed(piece);
        while let Some(m) = p.next_message() {
            messages.push(m);
        }
        if let Err(e) = r {
            // A failed parser stays failed and holds nothing.
            assert_eq!(p.feed(b"250 OK\r\n"), Err(e.clone()));
            assert!(p.next_message().is_none());
            assert!(!p.in_message());
            error = Some(e);
            break;
        }
    }
    for m in &messages {
        let cost: usize = m
            .lines
            .iter()
            .map(|l| 6 + l.text.len() + l.data.as_ref().map_or(0, String::len))
            .sum();
        assert!(
            cost <= limits.max_message,
            "{cost} > {}",
            limits.max_message
        );
        assert!(!m.lines.is_empty() && m.lines.len() <= limits.max_lines);
        for l in &m.lines {
            assert_eq!(l.status, m.status());
            assert!(4 + l.text.len() <= limits.max_line);
        }
    }
    Outcome { messages, error }
}

fuzz_target!(|input: &[u8]| {
    // The first three bytes choose small limits and a chunk size; the rest is the stream.
    let (head, data) = input.split_at(input.len().min(3));
    let [a, b, c] = [0, 1, 2].map(|i| head.get(i).copied().unwrap_or(0) as usize);
    let small = Limits {
        max_line: 4 + a % 64,
        max_message: 8 + b * 4,
        max_lines: 1 + c % 16,
    };
    let whole = run(Limits::default(), data, data.len());
    let pieces = run(Limits::default(), data, 1 + c % 7);
    assert_eq!(whole, pieces, "chunking changed the outcome");
    let small_whole = run(small, data, data.len());
    let small_bytes = run(small, data, 1);
    assert_eq!(small_whole, small_bytes, "chunking changed the outcome");
});
