"""securedrop-tor-exporter's lines through SecureDrop's OSSEC rules (tests/ossec/ossec_match.py).

    python3 -m unittest discover -s tests/ossec -v

Inputs, each overridable by environment variable:
  SDTE_OSSEC_HIDS_ETC        OSSEC 3.6.0's etc/ (decoder.xml, rules/): ../shared/upstream/ossec-hids/etc
  SDTE_SECUREDROP_SNAPSHOT   SecureDrop as released (read only): ../shared/upstream/securedrop
  SDTE_OSSEC_PATCHED_TREE    SecureDrop with contrib/securedrop/patches applied (tests/securedrop/run.sh
                             passes its copy); unset: the snapshot's two files that patch 0005 touches,
                             copied to a temporary folder and patched there with `git apply`
  SDTE_HEALTH_LINES          the exporter's health lines, one MESSAGE a line: tests/golden/health_lines.txt

SecureDrop's testinfra variables (log_events_with_ossec_alerts / log_events_without_ossec_alerts) are
YAML; they are read with PyYAML (python3-yaml, or the suite's ansible virtualenv); without it those
tests are skipped, and tests/securedrop/run.sh counts a skip as a failure.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import ossec_match  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

OSSEC_ETC, SNAPSHOT = ossec_match.default_paths()
HEALTH_LINES = os.environ.get("SDTE_HEALTH_LINES") or os.path.join(REPO, "tests", "golden", "health_lines.txt")
# the opt-in recovery's lines (src/recovery/policy.rs pins them), in the same grammar
RECOVERY_LINES = os.path.join(os.path.dirname(HEALTH_LINES), "recovery_lines.txt")
VAR_OSSEC = os.path.join("securedrop", "debian", "ossec-server", "var", "ossec")
LOCAL_RULES = os.path.join(VAR_OSSEC, "rules", "local_rules.xml")
STAGING_VARS = os.path.join("molecule", "testinfra", "vars", "staging.yml")
OUR_IDS = range(401000, 401100)

# the grammar of the exporter's health lines (the syslog MESSAGE)
STATE = (r"(?:tor_down|bootstrap_stuck|no_circuits|onion_not_published [a-z0-9_-]{1,32}|version_obsolete"
         r"|recovery_reload|recovery_restart|recovery_exhausted|recovery)")
DURATION = r"\d+[dhms](?: \d+[dhms])*"
ALERT_LINE = re.compile(r"tor health: alert (%s) for %s: \S.*" % (STATE, DURATION))
OK_LINE = re.compile(r"tor health: ok (%s) after %s" % (STATE, DURATION))

# the exporter's routine lines, and a made-up one with rule 1002's words as the worst case
ROUTINE = [
    "listening on 127.0.0.1:9747",
    "tor is unreachable; reporting tor_up 0 and retrying",
    "could not accept a connection (errno 24); 3 more like it in the last minute",
    "all 256 connection slots of the loopback port taken: the idlest connection was closed to make "
    "room (12 more in the last minute); a local process may be crowding it",
    "tor is still unreachable, for another cause or a minute on (4 more like it in the last minute); "
    "retrying",
    "reading the control port failed: connection refused; retrying",
    "fatal error: access denied, bad attack, illegal core_dumped Segmentation Fault",
]

# how the lines reach the Monitor Server: rsyslog's traditional format, its RFC 3339 format
# (Debian 12, newer Ubuntu), without a PID; read by ossec-logtest or sent by the app's agent
HEADERS = [
    "Dec 01 12:00:00 app securedrop-tor-exporter[812]: ",
    "Dec  1 12:00:00 mon securedrop-tor-exporter[812]: ",
    "2026-12-01T12:00:00.123456+00:00 app securedrop-tor-exporter[812]: ",
    "2026-12-01T12:00:00+00:00 app securedrop-tor-exporter[812]: ",
    "Dec 01 12:00:00 app securedrop-tor-exporter: ",
]
LOCATIONS = ["stdin", "(app) 10.20.2.2->/var/log/syslog"]


def patched_tree():
    tree = os.environ.get("SDTE_OSSEC_PATCHED_TREE")
    if tree:
        return tree, None
    patches = sorted(glob.glob(os.path.join(REPO, "contrib", "securedrop", "patches", "*-ossec-*.patch")))
    if len(patches) != 1:
        raise unittest.SkipTest("no single contrib/securedrop/patches/*-ossec-*.patch")
    tmp = tempfile.mkdtemp(prefix="sdte-ossec-")
    for rel in (os.path.join(VAR_OSSEC, "etc"), os.path.join(VAR_OSSEC, "rules"),
                os.path.join("molecule", "testinfra", "vars")):
        shutil.copytree(os.path.join(SNAPSHOT, rel), os.path.join(tmp, rel))
    subprocess.run(["git", "apply", patches[0]], cwd=tmp, check=True)
    return tmp, tmp


def setUpModule():
    global PATCHED, UNPATCHED, TREE, _TMP
    TREE, _TMP = patched_tree()
    PATCHED = ossec_match.securedrop_ossec(OSSEC_ETC, TREE)
    UNPATCHED = ossec_match.securedrop_ossec(OSSEC_ETC, SNAPSHOT)


def tearDownModule():
    if _TMP:
        shutil.rmtree(_TMP, ignore_errors=True)


def read(path, encoding="utf-8"):
    with open(path, encoding=encoding) as f:
        return f.read()


def load_yaml(path):
    return yaml.safe_load(read(path))


def health_lines():
    lines = []
    for path in (HEALTH_LINES, RECOVERY_LINES):
        with open(path, encoding="utf-8") as f:
            lines += [ln.rstrip("\n") for ln in f if ln.strip()]
    return lines


class HealthLines(unittest.TestCase):
    """Every golden health line, under every header and location: alerts mailed, ok logged only."""

    def test_the_golden_lines_follow_the_grammar(self):
        lines = health_lines()
        self.assertTrue(lines, HEALTH_LINES)
        for line in lines:
            self.assertTrue(ALERT_LINE.fullmatch(line) or OK_LINE.fullmatch(line), line)
        self.assertTrue(any(ALERT_LINE.fullmatch(ln) for ln in lines))
        self.assertTrue(any(OK_LINE.fullmatch(ln) for ln in lines))

    def test_alert_lines_are_mailed(self):
        for line in health_lines():
            m = ALERT_LINE.fullmatch(line)
            if not m:
                continue
            want = (401002, 7) if m.group(1) == "version_obsolete" else (401001, 10)
            for header in HEADERS:
                for loc in LOCATIONS:
                    with self.subTest(line=line, header=header, location=loc):
                        r = PATCHED.check(header + line, loc)
                        self.assertEqual((r.rule_id, r.level), want)
                        self.assertGreaterEqual(r.level, 7)
                        self.assertTrue(r.alert and r.mail, r)

    def test_ok_lines_are_logged_not_mailed(self):
        for line in health_lines():
            if not OK_LINE.fullmatch(line):
                continue
            for header in HEADERS:
                for loc in LOCATIONS:
                    with self.subTest(line=line, header=header, location=loc):
                        r = PATCHED.check(header + line, loc)
                        self.assertEqual((r.rule_id, r.level), (401003, 1))
                        self.assertLess(r.level, 7)
                        self.assertTrue(r.alert, r)
                        self.assertFalse(r.mail, r)

    def test_without_the_patch_alerts_are_lost(self):
        # why patch 0005 exists: SecureDrop's rules as released let a tor_down alert pass unseen
        line = HEADERS[0] + "tor health: alert tor_down for 5m: tor's control port has not answered"
        r = UNPATCHED.check(line)
        self.assertFalse(r.alert, r)


class RoutineLines(unittest.TestCase):
    def test_routine_lines_are_silenced_by_401000(self):
        for line in ROUTINE:
            for header in HEADERS:
                with self.subTest(line=line, header=header):
                    r = PATCHED.check(header + line)
                    self.assertEqual((r.rule_id, r.level, r.alert, r.mail), (401000, 0, False, False))

    def test_lines_that_only_look_like_health_lines_are_routine(self):
        for line in ["tor health: alerts are off", "tor health: okay", "Tor health: ALERT tor_down",
                     "tor health:  alert tor_down for 5m: x", "the tor health: alert tor_down for 5m: x"]:
            with self.subTest(line=line):
                r = PATCHED.check(HEADERS[0] + line)
                if line.lower().startswith("tor health: alert "):
                    self.assertEqual(r.rule_id, 401001)  # OSSEC's match is case-insensitive
                else:
                    self.assertEqual((r.rule_id, r.level), (401000, 0), line)

    def test_control_another_program_with_failed_is_mailed_by_1002(self):
        line = "Dec 01 12:00:00 app someprogram[99]: reading the control port failed: retrying"
        for o in (PATCHED, UNPATCHED):
            r = o.check(line)
            self.assertEqual((r.rule_id, r.level, r.alert, r.mail), (1002, 2, True, True))

    def test_control_without_the_patch_routine_failed_is_mailed(self):
        r = UNPATCHED.check(HEADERS[0] + "reading the control port failed: connection refused; retrying")
        self.assertEqual((r.rule_id, r.mail), (1002, True))

    def test_only_the_exact_program_name(self):
        for prog in ("securedrop-tor-exporter-x", "xsecuredrop-tor-exporter", "tor"):
            r = PATCHED.check("Dec 01 12:00:00 app %s[1]: reading the control port failed" % prog)
            self.assertEqual(r.rule_id, 1002, prog)


class RuleTree(unittest.TestCase):
    def test_ids_401000_401099_are_ours_alone(self):
        base = set()
        for f in glob.glob(os.path.join(OSSEC_ETC, "rules", "*.xml")):
            if os.path.basename(f) == "local_rules.xml":
                continue  # OSSEC's sample, replaced by SecureDrop's
            base |= {int(i) for i in re.findall(r'<rule\s+id="(\d+)"', read(f, "latin-1"))}
        sd = set(UNPATCHED.rules.by_id)
        self.assertFalse((base | sd) & set(OUR_IDS))
        new = set(PATCHED.rules.by_id) - sd
        self.assertEqual(new, {401000, 401001, 401002, 401003})

    def test_401000_is_tried_before_1002(self):
        top = next(n for n in PATCHED.rules.top if n.rule.sigid == 1)
        ids = [n.rule.sigid for n in top.child]
        self.assertIn(401000, ids)
        self.assertLess(ids.index(401000), ids.index(1002))
        self.assertLess(ids.index(401000), ids.index(1003))

    def test_no_noalert_in_ours(self):
        for sid in OUR_IDS:
            rule = PATCHED.rules.by_id.get(sid)
            if rule:
                self.assertFalse(rule.alert_opts & ossec_match.NO_ALERT, sid)

    def test_noalert_would_let_1002_mail_routine_lines(self):
        # the reason 401000 is level 0 and not noalert: a noalert rule passes its turn
        text = read(os.path.join(TREE, LOCAL_RULES), "latin-1")
        text = text.replace('<rule id="401000" level="0">', '<rule id="401000" level="0" noalert="1">')
        self.assertIn('noalert="1"', text)
        with tempfile.NamedTemporaryFile("w", suffix=".xml", encoding="latin-1") as f:
            f.write(text)
            f.flush()
            o = ossec_match.securedrop_ossec(OSSEC_ETC, TREE, local_rules=f.name)
        r = o.check(HEADERS[0] + "reading the control port failed: connection refused; retrying")
        self.assertEqual((r.rule_id, r.mail), (1002, True))


def shell_echo(text):
    """What `sh -c 'echo "TEXT" | …'` passes on (testinfra's host.run): the quotes in TEXT end and
    reopen the quoting (unquoted words are split and joined by one space), $NAME and $N expand to
    nothing; dash's echo would read backslash escapes (none here)."""
    if "`" in text or "$(" in text or "${" in text or "\\" in text:
        raise ossec_match.Unsupported("backquote, $( ${ or backslash in %r" % text)
    text = re.sub(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9])", "", text)
    out = []
    for k, part in enumerate(text.split('"')):
        if k % 2 == 0:
            out.append(part)  # inside the quotes of echo "…"
        else:
            if re.search(r"[*?[]", part):
                raise ossec_match.Unsupported("a glob outside quotes in %r" % text)
            out.append(re.sub(r"[ \t\n]+", " ", part))
    if text.count('"') % 2:
        raise ossec_match.Unsupported("unbalanced quotes in %r" % text)
    return "".join(out) + "\n"


def logtest(o, text):
    """`echo "text" | ossec-logtest` as SecureDrop's test_ossec_ruleset.py reads it: whether
    "Alert to be generated" appears, and the first rule id and level printed."""
    results = [o.check(ln) for ln in shell_echo(text).split("\n") if len(ln) >= 2]
    matched = [r for r in results if r.rule_id is not None]
    first = matched[0] if matched else None
    return any(r.alert for r in results), first


def vars_files(tree):
    return sorted(glob.glob(os.path.join(tree, "molecule", "testinfra", "vars", "*.yml")))


class SecureDropTestinfraCases(unittest.TestCase):
    """SecureDrop's own expectations (molecule/testinfra/mon/test_ossec_ruleset.py) hold with the
    matcher: on the snapshot as released, and on the patched tree with the cases patch 0005 adds."""

    def setUp(self):
        if yaml is None:
            self.skipTest("PyYAML is needed to read SecureDrop's testinfra variables")

    def check_tree(self, o, tree):
        n = 0
        for path in vars_files(tree):
            data = load_yaml(path)
            for ev in data.get("log_events_without_ossec_alerts") or []:
                with self.subTest(file=os.path.basename(path), name=ev["name"]):
                    alert, _ = logtest(o, ev["alert"])
                    self.assertFalse(alert)
                    n += 1
            for ev in data.get("log_events_with_ossec_alerts") or []:
                with self.subTest(file=os.path.basename(path), name=ev["name"]):
                    alert, first = logtest(o, ev["alert"])
                    self.assertTrue(alert)
                    self.assertEqual((str(first.rule_id), str(first.level)), (ev["rule_id"], ev["level"]))
                    n += 1
        return n

    def test_snapshot_cases_on_the_snapshot(self):
        self.assertGreater(self.check_tree(UNPATCHED, SNAPSHOT), 40)

    def test_patched_cases_on_the_patched_rules(self):
        self.assertGreater(self.check_tree(PATCHED, TREE), 40)

    def test_the_patch_adds_our_cases_to_staging(self):
        data = load_yaml(os.path.join(TREE, STAGING_VARS))
        without = [e for e in data["log_events_without_ossec_alerts"] if e["name"].startswith("test_tor_exporter_")]
        with_ = [e for e in data["log_events_with_ossec_alerts"] if e["name"].startswith("test_tor_exporter_")]
        self.assertTrue(any("failed" in e["alert"] for e in without))
        self.assertGreaterEqual(len(without), 2)
        self.assertTrue(any(e["rule_id"] == "401001" for e in with_))
        self.assertTrue(any(e["rule_id"] == "401003" and e["level"] == "1" for e in with_))
        for e in without + with_:
            self.assertEqual(shell_echo(e["alert"]), e["alert"] + "\n", e["name"])  # echo passes it as is
            self.assertEqual(e["alert"].count("\n"), 1, e["name"])  # one line
        snapshot = load_yaml(os.path.join(SNAPSHOT, STAGING_VARS))
        for key in ("log_events_without_ossec_alerts", "log_events_with_ossec_alerts"):
            self.assertEqual([e for e in data[key] if not e["name"].startswith("test_tor_exporter_")],
                             snapshot[key], key)


class Matcher(unittest.TestCase):
    """Pieces of OSSEC 3.6.0's pattern semantics the rules above rely on."""

    def test_osmatch(self):
        m = ossec_match.OSMatch("^tor health: alert ")
        self.assertTrue(m("TOR HEALTH: ALERT x"))
        self.assertFalse(m("x tor health: alert "))
        self.assertTrue(ossec_match.OSMatch("^securedrop-tor-exporter$")("securedrop-tor-exporter"))
        self.assertFalse(ossec_match.OSMatch("^securedrop-tor-exporter$")("securedrop-tor-exporterx"))
        self.assertTrue(ossec_match.OSMatch("ossec-keepalive")("my-ossec-keepalive-2"))  # unanchored
        self.assertTrue(ossec_match.OSMatch("a.b|^zz")("xxa.b"))
        self.assertFalse(ossec_match.OSMatch("a.b")("axb"))  # a literal dot

    def test_osregex(self):
        r = ossec_match.OSRegex(r"--\s*MARK\s*--")
        self.assertIsNotNone(r.execute("x --MARK-- y"))
        self.assertIsNotNone(ossec_match.OSRegex(r"files\.").execute("files!"))  # \. is any character
        self.assertIsNone(ossec_match.OSRegex(r"^\d+$").execute("12a"))
        # OSSEC's quantifiers after a class are lazy, but the last one when nothing but ) | or
        # the end follows (a $ is converted before that fix, so it keeps its last one lazy)
        self.assertEqual(ossec_match.convert_regex(r"^(\S+) (\w+)"), "^([^ ]+?) ([A-Za-z0-9@_-]+)")
        self.assertEqual(ossec_match.convert_regex(r"^(\S+) (\w+)$"), "^([^ ]+?) ([A-Za-z0-9@_-]+?)(?!\\n)$")

    def test_unsupported_is_loud(self):
        text = ('<group name="t,">\n  <rule id="401099" level="3">\n    <program_name>^x$</program_name>\n'
                '    <time>6 pm - 8:30 am</time>\n  </rule>\n</group>\n')
        base = read(os.path.join(TREE, LOCAL_RULES), "latin-1")
        with tempfile.NamedTemporaryFile("w", suffix=".xml", encoding="latin-1") as f:
            f.write(base + text)
            f.flush()
            o = ossec_match.securedrop_ossec(OSSEC_ETC, TREE, local_rules=f.name)
        with self.assertRaises(ossec_match.Unsupported):
            o.check("Dec 01 12:00:00 app x[1]: hello")
        self.assertEqual(o.check("Dec 01 12:00:00 app y[1]: hello").rule_id, None)

    def test_config_errors_are_loud(self):
        base = read(os.path.join(TREE, LOCAL_RULES), "latin-1")
        for extra in ('<group name="t,"><rule id="401000" level="1"><match>x</match></rule></group>',
                      '<group name="t,"><rule id="401098" level="1"><if_sid>999999</if_sid></rule></group>'):
            with tempfile.NamedTemporaryFile("w", suffix=".xml", encoding="latin-1") as f:
                f.write(base + extra)
                f.flush()
                with self.assertRaises(ossec_match.ConfigError):
                    ossec_match.securedrop_ossec(OSSEC_ETC, TREE, local_rules=f.name)


if __name__ == "__main__":
    unittest.main()
