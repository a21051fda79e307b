//! The values of a GETINFO reply, for every parser of one.

use std::collections::BTreeMap;

use crate::control::Message;

/// `key=value` lines (and `key=` data lines) of a GETINFO reply.
pub fn getinfo_values(reply: &Message) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in &reply.lines {
        if let Some((k, v)) = line.text.split_once('=') {
            let value = line.data.clone().unwrap_or_else(|| v.to_owned());
            out.insert(k.to_owned(), value);
        }
    }
    out
}
