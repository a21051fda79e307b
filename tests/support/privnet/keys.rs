//! Key helpers: x25519 key pairs for v3 onion client authorization, and base32.

use std::io::Write;
use std::process::{Command, Stdio};

use super::error::{err, Error, Result};

/// A fresh x25519 key pair for v3 onion client authorization, made with the `openssl` CLI:
/// `(public, private)`, each the raw 32 bytes in upper-case RFC 4648 base32 without padding
/// (52 characters), as tor's `descriptor:x25519:<KEY>` lines want them. Test keys only.
pub fn x25519_keypair() -> Result<(String, String)> {
    let run = |args: &[&str], input: &[u8]| -> Result<Vec<u8>> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err("run openssl"))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input).map_err(err("openssl stdin"))?;
        drop(stdin);
        let out = child.wait_with_output().map_err(err("openssl"))?;
        if !out.status.success() {
            return Err(Error(format!("openssl {} failed", args[0])));
        }
        Ok(out.stdout)
    };
    let private_der = run(&["genpkey", "-algorithm", "x25519", "-outform", "DER"], b"")?;
    let public_der = run(
        &["pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        &private_der,
    )?;
    // PKCS#8 / SPKI DER of an X25519 key: the raw key is the last 32 bytes.
    if private_der.len() < 32 || public_der.len() < 32 {
        return Err("unexpected openssl key encoding".into());
    }
    let private = base32(&private_der[private_der.len() - 32..]);
    let public = base32(&public_der[public_der.len() - 32..]);
    Ok((public, private))
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}
