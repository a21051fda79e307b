//! Reply faults after a successful handshake: error replies, EOF mid-reply, silence, garbage,
//! endless lines, events before replies.

use super::*;

#[tokio::test]
async fn error_replies_to_getinfo_are_refusals_and_keep_the_stream_in_step() {
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => Action::Send(b"552 Unrecognized key \"version\"\r\n".to_vec()),
        ("GETINFO", 1) => Action::Send(b"551 Internal error\r\n".to_vec()),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    for want in [552, 551] {
        let err = within(conn.request_ok(&batch())).await.unwrap_err();
        match &err {
            ControlError::Refused { verb, status, .. } => {
                assert_eq!((*verb, *status), ("GETINFO", want));
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        assert_eq!(ErrorKind::of(&err).as_str(), "refused");
    }
    // The same connection still pairs the next reply with the next request.
    let reply = within(conn.request_ok(&batch())).await.unwrap();
    assert!(reply.lines[0].text.starts_with("version="));
}

#[tokio::test]
async fn eof_in_the_middle_of_a_reply() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let whole = honest.bytes();
            Action::SendClose(whole[..whole.len() / 2].to_vec())
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "connection");
}

#[tokio::test]
async fn eof_in_the_middle_of_a_data_block() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::SendClose(b"250+config-text=\r\nSocksPort 0\r\n".to_vec()),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
}

#[tokio::test]
async fn eof_during_the_handshake() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "PROTOCOLINFO" => Action::SendClose(b"250-PROTOCOLINFO 1\r\n".to_vec()),
        _ => honest,
    });
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::Closed), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_times_out_within_the_timeout() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Hang,
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ControlError::Timeout(t) if t == T), "{err:?}");
    assert_eq!(ErrorKind::of(&err).as_str(), "timeout");
    assert!(took >= T, "gave up early: {took:?}");
    assert!(took < T + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_the_handshake_times_out() {
    let peer = FakePeer::start(|_, _| Action::Hang);
    let started = tokio::time::Instant::now();
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(took < T + Duration::from_millis(500), "took {took:?}");
    assert_eq!(peer.count("PROTOCOLINFO"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_mid_reply_times_out() {
    // Half a reply, then silence: a tor frozen (SIGSTOP) while writing.
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => Action::Send(b"250-version=0.4.9.11\r\n250-upti".to_vec()),
        ("GETINFO", _) => Action::Hang,
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < T + Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_drips_bytes_is_cut_off_by_the_timeout() {
    // One byte every T/4: no single read waits T, but the ≈400-byte reply would take ≈40 s.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Drip(honest.bytes(), T / 4),
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let started = tokio::time::Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < T + Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_peer_that_hangs_up_at_once() {
    let peer = FakePeer::start(|_, _| Action::SendClose(Vec::new()));
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "connection", "{err:?}");
}

#[tokio::test]
async fn no_socket_at_all() {
    let dir = crate::support::temp_dir::tempdir().unwrap();
    let mut opts = FakePeer::honest().options(T);
    opts.address = securedrop_tor_exporter::ControlAddress::Unix(dir.path().join("absent"));
    let err = within(Connection::connect(&opts)).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err).as_str(), "connect", "{err:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_reply() {
    let cases: &[&[u8]] = &[
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
        b"250 \xff\xfe\r\n",
        b"250-a=1\r\n251 OK\r\n",
        b"25\r\n",
        b"250*OK\r\n",
    ];
    for (i, garbage) in cases.iter().enumerate() {
        let g = garbage.to_vec();
        let peer = FakePeer::start(move |req, honest| match req.verb.as_str() {
            "GETINFO" => Action::Send(g.clone()),
            _ => honest,
        });
        let mut conn = connected(&peer).await;
        let err = within(conn.request(&batch())).await.unwrap_err();
        assert!(
            matches!(err, ControlError::Protocol(_)),
            "case {i}: {err:?}"
        );
        assert_eq!(ErrorKind::of(&err).as_str(), "protocol");
        // A broken stream stays broken; the connection must be dropped, not reused.
        let again = within(conn.request(&batch())).await.unwrap_err();
        assert!(
            matches!(again, ControlError::Protocol(_)),
            "case {i} reused: {again:?}"
        );
    }
}

#[tokio::test]
async fn garbage_instead_of_the_handshake() {
    let peer = FakePeer::start(|_, _| Action::Send(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()));
    let err = within(Connection::connect(&peer.options(T)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControlError::Protocol(ParseError::BadLine)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_endless_line_is_a_protocol_error_with_bounded_reads() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => Action::Endless(b"250-version=".to_vec()),
        _ => honest,
    });
    let limits = Limits {
        max_line: 4096,
        ..Limits::default()
    };
    let mut opts = peer.options(T);
    opts.limits = limits;
    let mut conn = within(Connection::connect(&opts)).await.unwrap();
    let started = Instant::now();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(
        matches!(err, ControlError::Protocol(ParseError::LineTooLong(4096))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(conn);
    // Once the client hung up, the peer's writes fail: it got nowhere near the cap, so the client
    // stopped reading early rather than draining the stream into memory.
    let p = &peer;
    assert!(
        eventually(Duration::from_secs(2), || async move { p.closed() >= 1 }).await,
        "the peer's endless write never failed"
    );
    assert!(
        peer.endless_sent() < fake_peer::ENDLESS_CAP / 4,
        "peer wrote {} bytes",
        peer.endless_sent()
    );
}

#[tokio::test]
async fn an_endless_reply_is_a_protocol_error() {
    // Valid lines, but the reply never ends.
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut b = Vec::new();
            for i in 0..10_000 {
                b.extend_from_slice(format!("250-key{i}=value\r\n").as_bytes());
            }
            Action::Send(b)
        }
        _ => honest,
    });
    let mut opts = peer.options(T);
    opts.limits = Limits {
        max_message: 16 * 1024,
        max_lines: 100_000,
        ..Limits::default()
    };
    let mut conn = within(Connection::connect(&opts)).await.unwrap();
    let err = within(conn.request(&batch())).await.unwrap_err();
    assert!(
        matches!(
            err,
            ControlError::Protocol(ParseError::MessageTooLarge(16384))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn events_before_a_reply_are_queued_not_taken_for_the_reply() {
    let peer = FakePeer::start(|req, honest| match (req.verb.as_str(), req.nth) {
        ("GETINFO", 0) => {
            // A one-line event, a multi-line event and a data event, then the reply, and an
            // event right behind it in the same write.
            let mut b = b"650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n\
                650-NS\r\n650+NS\r\nr x y\r\n.\r\n650 OK\r\n\
                650 HS_DESC REQUESTED x NO_AUTH $AAAA~relay 0\r\n"
                .to_vec();
            b.extend_from_slice(&honest.bytes());
            b.extend_from_slice(b"650 STATUS_GENERAL NOTICE CLOCK_JUMPED TIME=1\r\n");
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    let reply = within(conn.request_ok(&batch())).await.unwrap();
    assert_eq!(reply.status(), 250);
    assert_eq!(
        reply.lines[0].text,
        format!("version={}", fake_peer::FAKE_TOR_VERSION)
    );
    assert_eq!(reply.lines.len(), GETINFO_KEYS.len() + 1);
    // The trailing event sits in the parser; the next request must skip it too.
    let second = within(conn.request_ok(&batch())).await.unwrap();
    assert_eq!(second.lines.len(), GETINFO_KEYS.len() + 1);
    // All four events come out in order, without touching the socket.
    let mut texts = Vec::new();
    for _ in 0..4 {
        let ev = tokio::time::timeout(Duration::from_millis(200), conn.next_event())
            .await
            .expect("queued events are returned at once")
            .unwrap();
        assert!(ev.is_event());
        texts.push(ev.lines[0].text.clone());
    }
    assert_eq!(
        texts,
        [
            "STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED",
            "NS",
            "HS_DESC REQUESTED x NO_AUTH $AAAA~relay 0",
            "STATUS_GENERAL NOTICE CLOCK_JUMPED TIME=1",
        ]
    );
    assert_eq!(conn.dropped_events(), 0);
}

#[tokio::test]
async fn an_event_flood_is_bounded() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut b = b"650 STATUS_CLIENT NOTICE X\r\n".repeat(3000);
            b.extend_from_slice(&honest.bytes());
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    within(conn.request_ok(&batch())).await.unwrap();
    assert!(
        conn.dropped_events() >= 3000 - 1024,
        "{}",
        conn.dropped_events()
    );
}

/// Large events are bounded by bytes, not only by count: 40 events of 200 KiB would be 8 MB.
#[tokio::test(start_paused = true)]
async fn a_flood_of_large_events_is_bounded_in_bytes() {
    let peer = FakePeer::start(|req, honest| match req.verb.as_str() {
        "GETINFO" => {
            let mut one = b"650-STATUS_CLIENT NOTICE X\r\n".to_vec();
            for _ in 0..200 {
                one.extend_from_slice(b"650-");
                one.extend_from_slice(&[b'x'; 1020]);
                one.extend_from_slice(b"\r\n");
            }
            one.extend_from_slice(b"650 END\r\n");
            let mut b = one.repeat(40);
            b.extend_from_slice(&honest.bytes());
            Action::Send(b)
        }
        _ => honest,
    });
    let mut conn = connected(&peer).await;
    within(conn.request_ok(&batch())).await.unwrap();
    assert!(
        conn.queued_event_bytes()
            <= securedrop_tor_exporter::control::client::MAX_QUEUED_EVENT_BYTES,
        "{}",
        conn.queued_event_bytes()
    );
    assert!(conn.dropped_events() >= 30, "{}", conn.dropped_events());
}
