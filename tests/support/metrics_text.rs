//! Reading samples out of Prometheus/OpenMetrics exposition text.

/// The value of the sample line for `series` (a name, with its `{labels}` if it has any), e.g.
/// `sample(text, "tor_up")` or `sample(text, "tor_onion_service_published{service=\"source\"}")`.
/// `None` if no line has exactly that series or its value is not a number.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let v = rest.strip_prefix(' ')?;
        v.split(' ').next()?.parse().ok()
    })
}
