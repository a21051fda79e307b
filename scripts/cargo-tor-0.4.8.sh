#!/usr/bin/env bash
# The real-tor tests again, against tor 0.4.8 (what SecureDrop servers may still run) beside the
# machine's own tor, for scripts/test.sh's cargo suite (run as root on Debian 12; the tor comes
# from scripts/tor-0.4.8.sh, unpacked into the test cache, nothing installed):
#   tests/real_tor.rs          a throwaway tor (DisableNetwork 1): up, killed, restarted, frozen
#                              (about 5 s);
#   tests/privnet_exporter.rs  the exporter on the private Tor network (loopback only): every
#                              GETINFO key it reads on a bootstrapped client, HS_DESC events,
#                              onion health, the self-probe (HSFETCH), client authorization,
#                              the version status from RecommendedVersions, relay series
#                              (85–95 s).
# The other private-network tests are left to the machine's tor: privnet_harness tests the
# harness, not tor; privnet_onion_health and privnet_onion_restart read descriptors, whose 0.4.8
# form src/source/descriptor.rs's unit tests cover with fixtures recorded from tor 0.4.8
# (docs/tor-versions.md), and cost minutes each. SDTE_TOR048_ALL=1 runs every private-network
# test of the cargo suite against 0.4.8.
# Arguments go to cargo test (after the test names).
set -euo pipefail
cd "$(dirname "$0")/.."

tor=$(bash scripts/tor-0.4.8.sh) || { echo "${0##*/}: no tor 0.4.8 (see above)" >&2; exit 1; }
tests=(--test real_tor --test privnet_exporter)
if [ "${SDTE_TOR048_ALL:-}" = 1 ]; then
    tests+=(--test privnet_harness --test privnet_onion_health --test privnet_onion_restart)
fi
echo "${0##*/}: SDTE_TOR=$tor" >&2
SDTE_TOR=$tor exec cargo test --locked --no-fail-fast "${tests[@]}" "$@"
