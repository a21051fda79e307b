#!/usr/bin/env python3
"""The client side of bench/scrape.sh. Runs inside the benchmark's loopback-only namespace.

It waits for tor's MetricsPort and the exporter, fetches the exporter's /metrics once and starts
the floor server with those bytes, then measures, in one go:
  1. latency of keep-alive scrapes (http.client) of MetricsPort, exporter and floor, interleaved
     in blocks so that drift on a shared machine hits all three alike;
  2. the exporter's VmRSS after 1,000 and after 10,000 scrapes (and every 1,000 between);
  3. the control commands that reached tor (from ctlproxy.py's log) during a window of N
     concurrent scrapers.
It prints the figures next to the targets with PASS/FAIL, writes them as JSON, and exits 1 if a
target is missed (2 on a setup error).
"""

import argparse
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time

# What Prometheus 2.x sends; the exporter answers it with OpenMetrics. tor ignores it.
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
          "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
HEADERS = {"Accept": ACCEPT}
AUTH_VERBS = {"PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE"}
KIB = 1024


class SetupError(Exception):
    pass


def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


class Client:
    """One keep-alive connection; reconnects (and counts it) when the server closed it."""

    def __init__(self, addr, timeout=5.0):
        self.host, self.port = split_addr(addr)
        self.timeout = timeout
        self.conn = None
        self.connects = 0
        self.requests = 0

    def get(self, path="/metrics"):
        if self.conn is None or self.conn.sock is None:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.connect()
            self.connects += 1
        self.conn.request("GET", path, headers=HEADERS)
        resp = self.conn.getresponse()
        body = resp.read()
        self.requests += 1
        if resp.will_close:
            self.conn.close()
        if resp.status != 200 or not body:
            raise SetupError(f"{self.host}:{self.port}{path} answered {resp.status}, "
                             f"{len(body)} bytes")
        return resp, body

    def timed(self):
        t0 = time.perf_counter_ns()
        self.get()
        return time.perf_counter_ns() - t0

    def close(self):
        if self.conn is not None:
            self.conn.close()


def poll(what, fn, deadline_s):
    """Calls fn until it returns a true value or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except (OSError, http.client.HTTPException, SetupError) as e:
            last = e
        time.sleep(0.05)
    raise SetupError(f"timed out after {deadline_s} s waiting for {what} (last error: {last})")


def mem_kib(pid):
    """VmRSS and its parts (RssAnon, RssFile, RssShmem) and the thread count, from /proc."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[k] = int(v.split()[0])
    if "VmRSS" not in out:
        raise SetupError(f"no VmRSS for pid {pid}")
    return out


def age_s(pid):
    """Seconds since the process started."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime", encoding="ascii") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    return mem_kib(pid)["VmRSS"]


def cpu_s(pid):
    """utime + stime of a process, in seconds (USER_HZ resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(sorted_ns, p):
    """Nearest-rank percentile, in ms."""
    k = max(0, math.ceil(p / 100 * len(sorted_ns)) - 1)
    return sorted_ns[k] / 1e6


def summary(samples_ns):
    s = sorted(samples_ns)
    return {"n": len(s), "min_ms": s[0] / 1e6, "median_ms": statistics.median(s) / 1e6,
            "p90_ms": pct(s, 90), "p99_ms": pct(s, 99), "max_ms": s[-1] / 1e6}


def scraper(addr, start, end_at, out):
    """One of the concurrent scrapers: keep-alive loop until end_at (CLOCK_MONOTONIC)."""
    c = Client(addr)
    ok = err = 0
    start.wait()
    while time.monotonic() < end_at.value:
        try:
            c.get()
            ok += 1
        except (OSError, http.client.HTTPException, SetupError):
            err += 1
            c.close()
            c.conn = None
    c.close()
    out.put((ok, err))


def load(addr, pid, concurrency, window):
    """concurrency keep-alive scrapers on addr for window seconds, started together.
    Returns (start, end, scrapes, errors, CPU seconds pid used), times on CLOCK_MONOTONIC."""
    ctx = mp.get_context("fork")
    start = ctx.Event()
    end_at = ctx.Value("d", 0.0)
    out = ctx.Queue()
    workers = [ctx.Process(target=scraper, args=(addr, start, end_at, out))
               for _ in range(concurrency)]
    for w in workers:
        w.start()
    try:
        cpu0 = cpu_s(pid)
        t0 = time.monotonic()
        end_at.value = t0 + window
        start.set()
        results = [out.get(timeout=window + 30) for _ in workers]
        t1 = time.monotonic()
        cpu = cpu_s(pid) - cpu0
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
                w.join()
    return t0, t1, sum(r[0] for r in results), sum(r[1] for r in results), cpu


def read_proxy_log(path):
    entries = []
    with open(path, encoding="ascii") as f:
        for line in f:
            t, verb = line.split()
            entries.append((float(t), verb))
    return entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--metricsport", required=True)
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--exporter-pid", type=int, required=True)
    ap.add_argument("--floor-bin", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--floor-pidfile", required=True)
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--proxy-log", required=True)
    ap.add_argument("--refresh-interval", type=float, required=True)
    ap.add_argument("--scrapes", type=int, default=2000, help="measured scrapes per target")
    ap.add_argument("--block", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--rss-growth-kib", type=int, default=64)
    ap.add_argument("--server-cpu", default="", help="pin the floor to this CPU (empty: don't)")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    if a.scrapes < 1000 or a.scrapes % a.block:
        raise SetupError("--scrapes must be >= 1000 and a multiple of --block")

    with open(f"/proc/{a.exporter_pid}/comm", encoding="ascii") as f:
        comm = f.read().strip()
    if not "securedrop-tor-exporter".startswith(comm):
        raise SetupError(f"pid {a.exporter_pid} is {comm!r}, not the exporter")
    exporter = Client(a.exporter)
    mport = Client(a.metricsport)
    epid = a.exporter_pid

    # Every request to the exporter goes through this, so RSS checkpoints land on exact counts.
    rss = {}
    mem = {}

    def exporter_timed():
        ns = exporter.timed()
        if exporter.requests % 1000 == 0:
            m = mem_kib(epid)
            m["t_s"] = round(age_s(epid), 1)
            rss[exporter.requests] = m["VmRSS"]
            mem[exporter.requests] = m
        return ns

    def exporter_up():
        _, body = exporter.get()
        return b"\ntor_up 1\n" in b"\n" + body

    print("waiting for tor's MetricsPort and for the exporter to report tor_up 1 ...", flush=True)
    poll("tor's MetricsPort", lambda: mport.get(), 60)
    poll("the exporter's tor_up 1", exporter_up, 60)
    resp, body = exporter.get()
    ctype = resp.getheader("Content-Type")
    with open(a.body_file, "wb") as f:
        f.write(body)
    _, mbody = mport.get()

    floor_proc = subprocess.Popen([a.floor_bin, a.floor, a.body_file, ctype],
                                  stdin=subprocess.DEVNULL)
    with open(a.floor_pidfile, "w", encoding="ascii") as f:
        f.write(f"{floor_proc.pid}\n")
    try:
        if a.server_cpu != "":
            os.sched_setaffinity(floor_proc.pid, {int(a.server_cpu)})
        floor = Client(a.floor)
        poll("the floor server", lambda: floor.get()[1] == body, 30)
        result = measure(a, exporter, mport, floor, floor_proc.pid, exporter_timed, rss, mem,
                         len(body), len(mbody), ctype)
    finally:
        floor_proc.terminate()
        try:
            floor_proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            floor_proc.kill()
            floor_proc.wait()
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return 0 if all(c["pass"] for c in result["checks"]) else 1


def measure(a, exporter, mport, floor, floor_pid, exporter_timed, rss, mem, body_len,
            mbody_len, ctype):
    epid = a.exporter_pid
    targets = {
        "metricsport": mport.timed,
        "exporter": exporter_timed,
        "floor": floor.timed,
    }
    names = list(targets)
    for _ in range(a.warmup):
        for n in names:
            targets[n]()
    pids = {"exporter": epid, "floor": floor_pid}

    # 1. Latency, interleaved: each round runs one block per target, rotating who goes first.
    samples = {n: [] for n in names}
    cpu = {n: 0.0 for n in pids}
    connects_before = {"metricsport": mport.connects, "exporter": exporter.connects,
                       "floor": floor.connects}
    rounds = a.scrapes // a.block
    for r in range(rounds):
        order = names[r % 3:] + names[:r % 3]
        for n in order:
            c0 = cpu_s(pids[n]) if n in pids else None
            fn = targets[n]
            out = samples[n]
            for _ in range(a.block):
                out.append(fn())
            if c0 is not None:
                cpu[n] += cpu_s(pids[n]) - c0
    lat = {n: summary(samples[n]) for n in names}
    conns = {"metricsport": mport.connects - connects_before["metricsport"],
             "exporter": exporter.connects - connects_before["exporter"],
             "floor": floor.connects - connects_before["floor"]}
    floor_rss = rss_kib(floor_pid)

    # 2. RSS: keep scraping the exporter alone until it has served 10,000 scrapes.
    # (Readiness polls and warm-up count as scrapes too; 1,000 falls in the latency phase.)
    while exporter.requests < 10000:
        exporter_timed()
    if 1000 not in rss or 10000 not in rss:
        raise SetupError(f"missed an RSS checkpoint: {sorted(rss)}")

    # 3. Control commands during a window of concurrent scrapers.
    t0, t1, conc_ok, conc_err, cpu_window = load(a.exporter, epid, a.concurrency, a.window)
    mem_after_load = mem_kib(epid)
    rss_after_load = mem_after_load["VmRSS"]
    # The same load on the floor, for the CPU each scrape costs (no target; for profiling).
    _, _, floor_ok, floor_err, floor_cpu = load(a.floor, floor_pid, a.concurrency, a.window)
    log = read_proxy_log(a.proxy_log)
    window_cmds = [v for t, v in log if t0 <= t < t0 + a.window]
    by_verb = {}
    for v in window_cmds:
        by_verb[v] = by_verb.get(v, 0) + 1
    auth_in_window = sum(n for v, n in by_verb.items() if v in AUTH_VERBS)
    queries_in_window = len(window_cmds) - auth_in_window
    all_by_verb = {}
    for _, v in log:
        all_by_verb[v] = all_by_verb.get(v, 0) + 1
    allowed_batches = math.floor(a.window / a.refresh_interval) + 1

    e, m, fl = lat["exporter"]["median_ms"], lat["metricsport"]["median_ms"], lat["floor"]["median_ms"]
    growth = rss[10000] - rss[1000]
    anon_growth = mem[10000]["RssAnon"] - mem[1000]["RssAnon"]
    file_growth = mem[10000]["RssFile"] - mem[1000]["RssFile"]
    checks = [
        {"name": "exporter median <= 1/2 x MetricsPort median",
         "target": f"<= {m / 2:.3f} ms", "measured": f"{e:.3f} ms ({e / m:.2f} x)",
         "pass": e <= m / 2},
        {"name": "exporter median <= 1.5 x floor median",
         "target": f"<= {1.5 * fl:.3f} ms", "measured": f"{e:.3f} ms ({e / fl:.2f} x)",
         "pass": e <= 1.5 * fl},
        {"name": "exporter RSS < 8 MiB (after 1,000 and 10,000 scrapes)",
         "target": "< 8192 KiB", "measured": f"{rss[1000]} / {rss[10000]} KiB",
         "pass": max(rss[1000], rss[10000]) < 8 * KIB},
        # A leak grows anonymous memory (heap, stacks). File-backed pages are the binary's and
        # libc's code and data, mapped from disk the first time a code path runs (the second
        # refresh, tokio's idle blocking threads exiting after 10 s ...): bounded by the file
        # sizes, clean and reclaimable. So growth is judged on RssAnon; VmRSS is shown with it.
        {"name": "exporter RSS not growing from 1,000 to 10,000 scrapes",
         "target": f"RssAnon growth <= {a.rss_growth_kib} KiB",
         "measured": f"RssAnon {anon_growth:+d} KiB (VmRSS {growth:+d} KiB, of which "
                     f"file-backed {file_growth:+d} KiB)",
         "pass": anon_growth <= a.rss_growth_kib},
        {"name": f"control commands in {a.window:g} s of {a.concurrency} scrapers",
         "target": (f"<= {allowed_batches} batches ({a.window:g} s / {a.refresh_interval:g} s "
                    "refresh, +1 for the window's phase), 0 reconnects"),
         "measured": f"{queries_in_window} ({', '.join(f'{k} {v}' for k, v in sorted(by_verb.items())) or 'none'}) "
                     f"for {conc_ok} scrapes",
         "pass": queries_in_window <= allowed_batches and auth_in_window == 0},
    ]

    print()
    print(f"client: python {platform.python_version()} http.client, one keep-alive connection "
          f"per target, Accept as Prometheus 2.x sends it")
    print(f"bodies: exporter {body_len} B ({ctype}); floor the same bytes; "
          f"MetricsPort {mbody_len} B")
    print()
    print(f"latency over {a.scrapes} scrapes each ({rounds} interleaved rounds of {a.block}, "
          f"after {a.warmup} warm-up scrapes):")
    print(f"  {'':12} {'min':>8} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}  "
          f"{'connects':>8} {'CPU/scrape':>10}")
    for n in names:
        s = lat[n]
        cpus = f"{cpu[n] / a.scrapes * 1e6:.0f} us" if n in cpu else "-"
        print(f"  {n:12} {s['min_ms']:7.3f}  {s['median_ms']:7.3f}  {s['p90_ms']:7.3f}  "
              f"{s['p99_ms']:7.3f}  {s['max_ms']:7.3f}  {conns[n]:8d} {cpus:>10}  (ms)")
    print()
    print("exporter memory by scrapes served (KiB; s = the exporter's age in seconds):")
    print(f"  {'scrapes':>8} {'VmRSS':>7} {'RssAnon':>8} {'RssFile':>8} {'threads':>8} {'s':>6}")
    for k, m in sorted(mem.items()):
        print(f"  {k:8d} {m['VmRSS']:7d} {m['RssAnon']:8d} {m['RssFile']:8d} {m['Threads']:8d} "
              f"{m['t_s']:6.1f}")
    print(f"  after the concurrent phase ({exporter.requests + conc_ok} scrapes): "
          f"VmRSS {rss_after_load} KiB (RssAnon {mem_after_load['RssAnon']}); floor VmRSS: {floor_rss} KiB")
    print()
    print(f"concurrent phase: {a.concurrency} keep-alive scrapers for {t1 - t0:.1f} s: "
          f"{conc_ok} scrapes ({conc_ok / a.window:.0f}/s), {conc_err} errors, "
          f"exporter CPU {cpu_window:.2f} s ({cpu_window / max(conc_ok, 1) * 1e6:.0f} us/scrape)")
    print(f"  the same load on the floor: {floor_ok} scrapes ({floor_ok / a.window:.0f}/s), "
          f"{floor_err} errors, floor CPU {floor_cpu:.2f} s "
          f"({floor_cpu / max(floor_ok, 1) * 1e6:.0f} us/scrape)")
    print(f"  control commands that reached tor in the window: "
          f"{dict(sorted(by_verb.items())) or 'none'}; expected ~{a.window / a.refresh_interval:g} "
          f"(window / refresh interval)")
    print(f"  all control commands since the exporter started: {dict(sorted(all_by_verb.items()))}")
    print()
    print("targets:")
    for c in checks:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['name']}: {c['measured']}  "
              f"(target {c['target']})")
    return {
        "latency": lat, "connects": conns, "cpu_us_per_scrape":
            {n: cpu[n] / a.scrapes * 1e6 for n in cpu},
        "rss_kib": {str(k): v for k, v in sorted(rss.items())},
        "memory_kib": {str(k): v for k, v in sorted(mem.items())},
        "rss_after_load_kib": rss_after_load, "floor_rss_kib": floor_rss,
        "concurrent": {"scrapers": a.concurrency, "window_s": a.window, "scrapes": conc_ok,
                       "errors": conc_err, "exporter_cpu_s": cpu_window,
                       "commands_by_verb": by_verb, "floor_scrapes": floor_ok,
                       "floor_errors": floor_err, "floor_cpu_s": floor_cpu},
        "all_commands_by_verb": all_by_verb, "body_bytes": body_len,
        "metricsport_body_bytes": mbody_len, "content_type": ctype,
        "refresh_interval_s": a.refresh_interval, "checks": checks,
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"driver.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # pylint: disable=broad-except
        # Exit 1 means "a target was missed"; a crash must not look like that.
        import traceback
        traceback.print_exc()
        sys.exit(2)
