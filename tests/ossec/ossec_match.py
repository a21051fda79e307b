#!/usr/bin/env python3
"""What OSSEC 3.6.0's ossec-logtest says about one log line, in Python (stdlib only).

A stand-in for OSSEC in CI (building and installing OSSEC is not something a test run should do),
written from OSSEC 3.6.0's own code (src/os_xml, src/os_regex, src/analysisd: cleanevent.c,
decoders/, rules.c, rules_list.c, analysisd.c, testrule.c) and checked against a real ossec-logtest
3.6.0 by hand (docs/ossec.md). It loads what ossec-logtest loads:

  - ossec.conf: the <rules><include> list (in order), <alerts> log/email levels, and
    <rules><decoder> files if any (else etc/decoder.xml then etc/local_decoder.xml);
  - decoders and rules read the way os_xml reads XML (raw text, no entities, `<!-- -->` and
    `<! !>` comments, $VARIABLES from <var name="…">);

and evaluates a line the way ossec-logtest does, one event per fresh process (as SecureDrop's
testinfra runs it: `echo "<line>" | ossec-logtest`):

  1. pre-decoding (OS_CleanMSG): the syslog header (the date formats OSSEC knows, hostname,
     program_name as `prog:` or `prog[pid]:`), `log` = the text after it;
  2. decoding (DecodeEvent): decoders with a program_name when the event has one, the others
     when it has none; prematch, parent/child decoders, offsets, regex captures into fields;
  3. rules (OS_CheckIfRuleMatch): the tree OSSEC builds (template rules 1-7 at the top,
     if_sid/if_group/if_level/category children, siblings ordered by level with level 0 first,
     overwrite="yes"), each rule's checks in OSSEC's order, first matching child wins, level 0
     stops the search, noalert makes a rule pass its turn.

Patterns: <match>, <regex> and their fields are OSSEC 3.6's OSMatch/OSRegex, which convert the
pattern to PCRE2 (os_converter.c, ported here) or, for plain literals anchored with ^ and/or $,
compare strings; <pcre2>, *_pcre2 and decoder pcre2 are PCRE2 (caseless, not UTF). PCRE2 is run
by Python's `re`, after a check that refuses the PCRE2 syntax `re` reads differently.

Not modelled, refused loudly (Unsupported) when a line reaches them, never silently passed:
PCRE2 syntax `re` does not share, plugin decoders, the accumulator, compiled rules, time and
weekday conditions, CDB lists, FTS when the decoder sets fts, check_diff, srcip/dstip lists.
Context rules (if_matched_*, frequency) see no earlier events, as in a fresh ossec-logtest.

    python3 tests/ossec/ossec_match.py [--ossec DIR] [--securedrop DIR] LINE...   (or lines on stdin)
"""

import argparse
import os
import re
import sys
import warnings

__all__ = ["Ossec", "Result", "Unsupported", "ConfigError"]


class ConfigError(Exception):
    """OSSEC would refuse to start with these files (bad XML, unknown if_sid, duplicate id ...)."""


class Unsupported(Exception):
    """The line reached a rule or decoder feature this model does not implement."""


# ---------------------------------------------------------------------------------------------
# os_xml: OSSEC's own XML reader (no entities; `\<` is a literal `<` and keeps the backslash)
# ---------------------------------------------------------------------------------------------

_SPACE = " \t\n\v\f\r"


class XNode:
    __slots__ = ("element", "attributes", "content", "children", "line")

    def __init__(self, element, line):
        self.element = element
        self.attributes = []  # [(name, value)]
        self.content = None
        self.children = []
        self.line = line

    def attr(self, name):
        for k, v in self.attributes:
            if k == name:
                return v
        return None


class _XmlReader:
    def __init__(self, text, path):
        self.t = text
        self.i = 0
        self.path = path

    def err(self, msg):
        line = self.t.count("\n", 0, self.i) + 1
        raise ConfigError("%s:%d: XMLERR: %s" % (self.path, line, msg))

    def getc(self):
        if self.i >= len(self.t):
            return None
        c = self.t[self.i]
        self.i += 1
        return c

    def ungetc(self):
        self.i -= 1

    def comment(self):
        """After a `<`: skip a `<! … !>` / `<!-- … -->` comment (1), or nothing (0)."""
        if self.i < len(self.t) and self.t[self.i] == "!":
            m = re.compile(r"!>|-->").search(self.t, self.i + 1)
            if not m:
                self.err("Comment not closed.")
            self.i = m.end()
            return 1
        return 0

    def read(self):
        top = []
        self.read_elem(0, top)
        return top

    def read_elem(self, depth, into):
        location = -1
        prevv = None
        elem, cont, closedelim = [], [], []
        node = None
        while True:
            c = self.getc()
            if c is None:
                break
            if c == "\\":
                prevv = c
            elif prevv == "\\" and c != "<":
                prevv = None
            if c == "<" and self.comment():
                continue
            if location == -1 and prevv is None:
                if c == "<":
                    if self.getc() == "/":
                        self.err("Element not opened.")
                    self.ungetc()
                    location = 0
                continue
            if location == 0 and (c == ">" or c in _SPACE):
                name = "".join(elem)
                closed = False
                if name.endswith("/"):
                    closed, name = True, name[:-1]
                node = XNode(name, self.t.count("\n", 0, self.i) + 1)
                into.append(node)
                if c in _SPACE and self.attributes(node) == "/":
                    closed = True
                if closed:
                    node.content = ""
                    elem, cont, closedelim = [], [], []
                    location = -1
                    if depth > 0:
                        return
                else:
                    location = 1
                    cont = []
            elif location == 2 and c == ">":
                if "".join(closedelim) != node.element:
                    self.err("Element '%s' not closed." % node.element)
                node.content = "".join(cont)
                elem, cont, closedelim = [], [], []
                location = -1
                if depth > 0:
                    return
            elif location == 1 and c == "<" and prevv is None:
                if self.getc() == "/":
                    location = 2
                else:
                    self.ungetc()
                    self.ungetc()
                    self.read_elem(depth + 1, node.children)
                    cont = []  # the content is what follows the last child
            else:
                if location == 0:
                    elem.append(c)
                elif location == 1:
                    cont.append(c)
                elif location == 2:
                    closedelim.append(c)
                if c == "<" and prevv is not None:
                    prevv = None
        if location != -1:
            self.err("End of file and some elements were not closed.")

    def attributes(self, node):
        location = 0
        attr, value = [], []
        quote = None
        while True:
            c = self.getc()
            if c is None:
                self.err("End of file while reading an attribute.")
            if c == ">" or (location == 0 and c == "/"):
                if location == 1:
                    self.err("Attribute '%s' not closed." % "".join(attr))
                if attr:
                    self.err("Attribute '%s' has no value." % "".join(attr))
                return "/" if c == "/" else 0
            if location == 0 and c == "=":
                name = "".join(attr)
                if any(k == name for k, _ in node.attributes):
                    self.err("Attribute '%s' already defined." % name)
                c = self.getc()
                if c not in ('"', "'"):
                    while c is not None and c in _SPACE:
                        c = self.getc()
                    if c not in ('"', "'"):
                        self.err("Attribute '%s' not followed by a \" or '." % name)
                quote, location, value = c, 1, []
            elif location == 0 and c in _SPACE:
                if attr:
                    self.err("Attribute '%s' has no value." % "".join(attr))
            elif location == 1 and c == quote:
                node.attributes.append(("".join(attr), "".join(value)))
                c = self.getc()
                if c is not None and c in _SPACE:
                    return self.attributes(node)
                if c == ">":
                    return 0
                if c == "/":
                    return "/"
                self.err("Bad attribute closing for '%s'." % "".join(attr))
            elif location == 0:
                attr.append(c)
            else:
                value.append(c)


def _apply_variables(nodes, path):
    """OS_ApplyVariables: <var name="X">v</var> defines $X for what follows (in document order)."""
    variables = []

    def subst(s):
        if s is None or len(s) <= 2 or not variables:
            return s
        out, i = [], 0
        while i < len(s):
            if s[i] != "$":
                out.append(s[i])
                i += 1
                continue
            j = i + 1
            while j < len(s) and s[j] not in "$.|, ":
                j += 1
            name = s[i + 1:j]
            if len(name) >= 255:
                raise ConfigError("%s: XMLERR: Invalid variable name size" % path)
            for n, v in variables:
                if n.lower() == name.lower():
                    out.append(v)
                    break
            else:
                if name:
                    raise ConfigError("%s: XMLERR: Unknown variable: '%s'." % (path, name))
                out.append("$")
            i = j
        return "".join(out)

    def walk(ns):
        for n in ns:
            if n.element.lower() == "var":
                name = n.attr("name")
                if name is None or n.content is None:
                    raise ConfigError("%s: XMLERR: No value set for variable." % path)
                variables.append((name, n.content))
                continue
            n.content = subst(n.content)
            n.attributes = [(k, subst(v)) for k, v in n.attributes]
            walk(n.children)

    walk(nodes)


def read_xml(path):
    """The root elements of an OSSEC XML file, variables applied, <var> elements left out."""
    with open(path, "rb") as f:
        text = f.read().decode("latin-1")  # bytes as they are: OSSEC is byte-oriented
    nodes = _XmlReader(text, path).read()
    _apply_variables(nodes, path)

    def strip_vars(ns):
        kept = [n for n in ns if n.element.lower() != "var"]
        for n in kept:
            n.children = strip_vars(n.children)
        return kept

    return strip_vars(nodes)


# ---------------------------------------------------------------------------------------------
# os_regex: OSMatch (<match>), OSRegex (<regex>), OSPcre2 (<pcre2>) as OSSEC 3.6 runs them
# ---------------------------------------------------------------------------------------------

OS_PATTERN_MAXSIZE = 2048
_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


def _lower(s):
    return s.translate(_ASCII_LOWER)  # strcasecmp folds ASCII only


def _to_utf(s):
    return s.encode("latin-1").decode("utf-8", "surrogateescape")


def _from_utf_len(u):
    return len(u.encode("utf-8", "surrogateescape"))


def _pcre2_to_python(p):
    """The PCRE2 pattern as Python `re` reads it the same way, or Unsupported."""
    out, i, in_class, class_start = [], 0, False, False
    while i < len(p):
        c = p[i]
        if c == "\\":
            nxt = p[i + 1:i + 2]
            if nxt == "v":  # PCRE2: vertical white space; Python: the VT character
                raise Unsupported("PCRE2 \\v in %r" % p)
            if nxt == "Z" and not in_class:
                out.append(r"(?=\n?\Z)")  # PCRE2 \Z: end or before a final newline
                i += 2
                continue
            if nxt == "z" and not in_class:
                out.append(r"\Z")
                i += 2
                continue
            out.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and p[i + 1:i + 2] in (":", ".", "="):
                raise Unsupported("POSIX class in %r" % p)
            if c == "]" and not class_start:
                in_class = False
            class_start = False
            if c == "[":
                out.append("\\[")  # PCRE2: a literal [ in a class; Python warns
                i += 1
                continue
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1
            if p[j:j + 1] == "^":
                out.append("[^")
                i = j + 1
            else:
                out.append("[")
                i = j
            class_start = True  # a ] right after [ or [^ is literal in both
            continue
        if c == "(" and p[i + 1:i + 3] == "?<" and p[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        if c == "(" and p[i + 1:i + 2] == "*":
            raise Unsupported("PCRE2 verb in %r" % p)
        if c == "{" and p[i + 1:i + 2] == ",":
            raise Unsupported("{,n} in %r (a literal in PCRE2 before 10.43)" % p)
        if c == "(" and re.match(r"\(\?[a-zA-Z]+\)", p[i:]) and i > 0:
            raise Unsupported("inline flags inside %r" % p)
        out.append(c)
        i += 1
    return "".join(out)


class _Compiled:
    """A Python pattern, or the reason it could not be made (raised when first used)."""

    def __init__(self, pattern, flags, what):
        self.source = pattern
        self.error = None
        self.rx = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.rx = re.compile(_pcre2_to_python(pattern), flags)
        except (re.error, Unsupported) as e:
            self.error = "%s %r: %s" % (what, pattern, e)

    def search(self, s):
        if self.rx is None:
            raise Unsupported(self.error)
        return self.rx.search(s)


def _literal_compare(kind, pat, s, n=None):
    """strcasecmp (^lit$), strncasecmp (^lit), suffix strcasecmp (lit$); end offset or None."""
    lp = _lower(pat)
    if kind == "eq":
        if _lower(s) == lp and (n is None or n == len(pat)):
            return len(pat)
    elif kind == "prefix":
        if _lower(s[:len(pat)]) == lp:
            return len(pat)
    elif kind == "suffix":
        if len(s) >= len(pat) and _lower(s[len(s) - len(pat):]) == lp:
            return len(s)
    return None


def _literal_kind(pattern):
    if pattern.startswith("^"):
        return ("eq", pattern[1:-1]) if pattern.endswith("$") and len(pattern) > 1 else ("prefix", pattern[1:])
    if pattern.endswith("$"):
        return ("suffix", pattern[:-1])
    return None


_REGEX_MAP = [
    ("\\p", "[()*+,.:;\\<=>?\\[\\]!\"'#%&$|{}-]"), ("\\s", "[ ]"), ("\\W", "[^A-Za-z0-9@_-]"),
    ("\\w", "[A-Za-z0-9@_-]"), ("\\d", "[0-9]"), ("\\D", "[^0-9]"), ("\\S", "[^ ]"),
    ("\\.", "(?s:.)"), ("$", "(?!\\n)$"), (".", "\\."), ("[", "\\["), ("]", "\\]"), ("{", "\\{"),
    ("}", "\\}"), ("+", "\\+"), ("?", "\\?"), ("*", "\\*"),
]
_MATCH_MAP = [(".", "\\."), ("[", "\\["), ("]", "\\]"), ("{", "\\{"), ("}", "\\}"), ("+", "\\+"),
              ("?", "\\?"), ("*", "\\*"), ("(", "\\("), (")", "\\)"), ("\\", "\\\\")]
_UNGREEDY_FIX = re.compile(r"(?<!\\)([+*])\?(\)*(?:[|$]|$))")


def convert_regex(p):
    """os_converter.c OSRegex_ConvertRegex: an OSSEC regex as PCRE2."""
    out, i = [], 0
    while i < len(p):
        rep = None
        if i >= 2 and p[i - 2] == "\\" and p[i] in "*+":
            rep = p[i] + "?"  # OSSEC's \w+ is lazy except at the end
        if rep is None:
            for old, new in _REGEX_MAP:
                if p.startswith(old, i):
                    rep, i = new, i + len(old) - 1
                    break
        if rep is None:
            if p[i] == "\\" and i + 1 < len(p):
                if p[i + 1] not in "t$(){}[]\\|<":
                    raise ConfigError("bad OSSEC regex %r" % p)
                rep, i = p[i:i + 2], i + 1
            else:
                rep = p[i]
        out.append(rep)
        i += 1
    return _UNGREEDY_FIX.sub(r"\1\2", "".join(out))


def convert_match(p):
    """os_converter.c OSRegex_ConvertMatch: an OSSEC match (^, $ and | stay) as PCRE2."""
    out, i = [], 0
    while i < len(p):
        for old, new in _MATCH_MAP:
            if p.startswith(old, i):
                out.append(new)
                break
        else:
            out.append(p[i])
        i += 1
    return "".join(out)


class OSMatch:
    """<match>, <program_name>, <user>, <url>, <status>, … : true/false on a string."""

    def __init__(self, pattern):
        if len(pattern) > OS_PATTERN_MAXSIZE:
            raise ConfigError("pattern too long: %r" % pattern)
        self.pattern = pattern
        self.literal = None
        self.rx = None
        if pattern == "":
            self.literal = ("true", "")
        elif re.search(r"^\^?[^$|^]+\$?$", pattern, re.I):
            self.literal = _literal_kind(pattern)
        if self.literal is None:
            self.rx = _Compiled(_to_utf(convert_match(pattern)), re.I, "match")

    def __call__(self, s, n=None):
        if self.literal:
            kind, pat = self.literal
            return kind == "true" or _literal_compare(kind, pat, s, len(s) if n is None else n) is not None
        return self.rx.search(_to_utf(s)) is not None


class OSRegex:
    """<regex> and decoder <prematch>/<regex>: the rest of the string after the match, or None."""

    def __init__(self, pattern):
        if len(pattern) > OS_PATTERN_MAXSIZE:
            raise ConfigError("pattern too long: %r" % pattern)
        self.pattern = pattern
        self.literal = None
        if re.search(r"^\^?[A-Za-z0-9 !\"#%&',/:;<=>@_`~-]*\$?$", pattern, re.I):
            self.literal = _literal_kind(pattern)
        if self.literal is None:
            self.rx = _Compiled(_to_utf(convert_regex(pattern)), re.I, "regex")

    def execute(self, s):
        """(rest, captures) or None."""
        if s is None:
            return None
        if self.literal:
            kind, pat = self.literal
            end = _literal_compare(kind, pat, s)
            return None if end is None else (s[end:], [])
        u = _to_utf(s)
        m = self.rx.search(u)
        if not m:
            return None
        caps = [g.encode("utf-8", "surrogateescape").decode("latin-1") for g in m.groups() if g is not None]
        return s[_from_utf_len(u[:m.end()]):], caps


class OSPcre2:
    """<pcre2>, *_pcre2, decoder pcre2: PCRE2 caseless, not UTF (bytes)."""

    def __init__(self, pattern):
        if pattern == "":
            raise ConfigError("empty pcre2 pattern")
        self.pattern = pattern
        self.literal = None
        if re.search(r"^\^?[a-zA-Z0-9 !\"#%&',/:;<=>@_`~-]*\$?$", pattern):
            self.literal = _literal_kind(pattern)
        if self.literal is None:
            self.rx = _Compiled(pattern, re.I | re.ASCII, "pcre2")

    def execute(self, s):
        if s is None:
            return None
        if self.literal:
            kind, pat = self.literal
            end = _literal_compare(kind, pat, s)
            return None if end is None else (s[end:], [])
        m = self.rx.search(s)
        if not m:
            return None
        return s[m.end():], [g for g in m.groups() if g is not None]

    def __call__(self, s, n=None):
        return self.execute(s) is not None


def word_match(pattern, s):
    """OS_WordMatch (if_group): `|` alternatives, each a case-insensitive substring or ^prefix."""
    if pattern == "":
        return False
    for alt in pattern.split("|"):
        if alt == "":
            return True
        if alt.startswith("^"):
            if _lower(s[:len(alt) - 1]) == _lower(alt[1:]):
                return True
        elif s and _lower(alt) in _lower(s):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# decoders (decode-xml.c, decoders_list.c, decoder.c)
# ---------------------------------------------------------------------------------------------

SYSLOG, FIREWALL, IDS, WEBLOG, SQUID, WINDOWS, HOST_INFO, OSSEC_RL, OSSEC_ALERT = range(9)
_DECODER_TYPES = {"firewall": FIREWALL, "ids": IDS, "web-log": WEBLOG, "syslog": SYSLOG, "squid": SQUID,
                  "windows": WINDOWS, "host-information": HOST_INFO, "ossec": OSSEC_RL}
_CATEGORIES = {"firewall": FIREWALL, "ids": IDS, "syslog": SYSLOG, "web-log": WEBLOG, "squid": SQUID,
               "windows": WINDOWS, "ossec": OSSEC_RL}
AFTER_PARENT, AFTER_PREMATCH, AFTER_PREVREGEX = 1, 2, 4
_ORDER_FIELDS = {"dstuser": "dstuser", "srcuser": "srcuser", "user": "dstuser", "srcip": "srcip",
                 "dstip": "dstip", "srcport": "srcport", "dstport": "dstport", "protocol": "protocol",
                 "action": "action", "id": "id", "url": "url", "data": "data", "extra_data": "data",
                 "status": "status", "system_name": "system_name"}
# decoders analysisd adds by name (SetDecodeXML): valid in <decoded_as>
_BUILTIN_DECODERS = ["rootcheck", "syscheck_integrity_changed", "syscheck_integrity_changed_2nd",
                     "syscheck_integrity_changed_3rd", "syscheck_new_entry", "syscheck_deleted",
                     "hostinfo_new", "hostinfo_modified"]


class Decoder:
    def __init__(self, name):
        self.name = name  # after os_setdecoderids: the parent's, unless use_own_name
        self.own_name = name
        self.parent = None
        self.program_name = None
        self.prematch = None
        self.prematch_offset = 0
        self.regex = None
        self.regex_offset = 0
        self.order = None
        self.type = SYSLOG
        self.use_own_name = False
        self.get_next = False
        self.plugin = None
        self.accumulate = False
        self.fts = False


class _DNode:
    def __init__(self, dec):
        self.dec = dec
        self.child = []


def _offset_attr(node, path):
    if not node.attributes:
        return 0
    name, value = node.attributes[0]
    if name != "offset":
        raise ConfigError("%s: invalid decoder attribute %r" % (path, name))
    try:
        return {"after_parent": AFTER_PARENT, "after_prematch": AFTER_PREMATCH,
                "after_regex": AFTER_PREVREGEX}[value]
    except KeyError:
        raise ConfigError("%s: invalid offset %r" % (path, value)) from None


class Decoders:
    def __init__(self):
        self.forpname = []
        self.nopname = []
        self.names = set(_BUILTIN_DECODERS)

    def read(self, path):
        for node in read_xml(path):
            if node.element.lower() != "decoder" or not node.attributes or node.attributes[0][0].lower() != "name":
                raise ConfigError("%s: bad decoder element %r" % (path, node.element))
            d = Decoder(node.attributes[0][1])
            self.names.add(d.name)
            regex = prematch = pname = pcre2 = prematch_pcre2 = pname_pcre2 = None
            for e in node.children:
                el, ct = e.element.lower(), e.content
                if ct is None:
                    raise ConfigError("%s: empty %s in decoder %s" % (path, el, d.name))
                if el == "parent":
                    d.parent = (d.parent or "") + ct
                elif el in ("regex", "pcre2", "prematch", "prematch_pcre2"):
                    off = _offset_attr(e, path)
                    cur = {"regex": regex, "pcre2": pcre2, "prematch": prematch,
                           "prematch_pcre2": prematch_pcre2}[el]
                    if cur is not None and off:
                        raise ConfigError("%s: only the first %s may have an offset" % (path, el))
                    if off and el.startswith("prematch"):
                        d.prematch_offset = off
                    elif off:
                        d.regex_offset = off
                    new = (cur or "") + ct
                    if el == "regex":
                        regex = new
                    elif el == "pcre2":
                        pcre2 = new
                    elif el == "prematch":
                        prematch = new
                    else:
                        prematch_pcre2 = new
                elif el == "program_name":
                    pname = (pname or "") + ct
                elif el == "program_name_pcre2":
                    pname_pcre2 = (pname_pcre2 or "") + ct
                elif el == "ftscomment":
                    pass
                elif el == "use_own_name":
                    d.use_own_name = ct == "true"
                elif el == "plugin_decoder":
                    d.plugin = ct
                elif e.element == "type":
                    if ct not in _DECODER_TYPES:
                        raise ConfigError("%s: invalid decoder type %r" % (path, ct))
                    d.type = _DECODER_TYPES[ct]
                elif el == "order":
                    d.order = []
                    for raw in ct.split(","):
                        word = raw.lstrip(" ").split(" ")[0]
                        if not word:
                            raise ConfigError("%s: empty order field in decoder %s" % (path, d.name))
                        if word in _ORDER_FIELDS:
                            d.order.append(_ORDER_FIELDS[word])
                        elif "filename" in raw:
                            d.order.append("filename")
                        else:
                            d.order.append("dyn:" + raw.lstrip(" "))
                elif el == "accumulate":
                    d.accumulate = True
                elif el == "fts":
                    d.fts = True
                else:
                    raise ConfigError("%s: invalid element %r in decoder %s" % (path, e.element, d.name))
            has = lambda *xs: any(x is not None for x in xs)  # noqa: E731 (C: a non-NULL pointer)
            if not has(prematch, prematch_pcre2) and not d.parent and not has(pname, pname_pcre2):
                raise ConfigError("%s: decoder %s needs a prematch or program_name" % (path, d.name))
            if (not has(regex, pcre2) and d.order) or (has(regex, pcre2) and d.order is None):
                raise ConfigError("%s: decoder %s: regex and order go together" % (path, d.name))
            if d.regex_offset & AFTER_PARENT and not d.parent:
                raise ConfigError("%s: decoder %s: after_parent without a parent" % (path, d.name))
            if d.regex_offset & AFTER_PREMATCH:
                if not d.parent:
                    d.regex_offset = AFTER_PARENT
                elif not has(prematch, prematch_pcre2):
                    raise ConfigError("%s: decoder %s: after_prematch without a prematch" % (path, d.name))
            if d.regex_offset & AFTER_PREVREGEX and (not d.parent or not has(regex, pcre2)):
                raise ConfigError("%s: decoder %s: bad after_regex" % (path, d.name))
            if d.prematch_offset and (d.prematch_offset != AFTER_PARENT or not d.parent):
                raise ConfigError("%s: decoder %s: bad prematch offset" % (path, d.name))
            if prematch is not None:
                d.prematch = OSRegex(prematch)
            elif prematch_pcre2 is not None:
                d.prematch = OSPcre2(prematch_pcre2)
            if pname is not None:
                d.program_name = OSMatch(pname)  # <program_name /> matches every program
            elif pname_pcre2 is not None:
                d.program_name = OSPcre2(pname_pcre2)
            if regex is not None:
                d.regex = OSRegex(regex)
            elif pcre2 is not None:
                d.regex = OSPcre2(pcre2)
            if d.plugin and (d.regex or d.order):
                raise ConfigError("%s: plugin decoder %s with a regex" % (path, d.name))
            self._add(d, path)

    def _add(self, d, path):
        if d.parent:
            added = False
            for node in self.forpname + self.nopname:
                if node.dec.own_name == d.parent:
                    self._add_to(node.child, d, path)
                    added = True
            if not added:
                raise ConfigError("%s: parent decoder %r of %s not found" % (path, d.parent, d.name))
        else:
            self._add_to(self.forpname if d.program_name is not None else self.nopname, d, path)

    @staticmethod
    def _add_to(lst, d, path):
        rm_f = False
        for node in lst:
            o = node.dec
            if o.own_name == d.own_name and d.parent is not None:
                if (o.prematch or o.regex) and d.regex_offset:
                    rm_f = True
                if d.prematch:
                    raise ConfigError("%s: multi-regex decoder %s with a prematch" % (path, d.name))
                if o.regex is not None and d.regex is not None and type(o.regex) is type(d.regex):
                    o.get_next = True
                else:
                    raise ConfigError("%s: duplicate decoder %s" % (path, d.name))
        if d.regex_offset & AFTER_PREVREGEX and (not lst or not rm_f):
            raise ConfigError("%s: decoder %s: after_regex needs a previous regex" % (path, d.name))
        lst.append(_DNode(d))

    def finish(self):
        """os_setdecoderids: children take their parent's name unless use_own_name."""
        for node in self.nopname + self.forpname:
            for ch in node.child:
                if not ch.dec.use_own_name:
                    ch.dec.name = node.dec.own_name

    def decode(self, ev):
        lst = self.forpname if ev.program_name is not None else self.nopname
        for node in lst:
            nnode = node.dec
            pmatch = None
            if ev.program_name is not None and nnode.program_name is not None:
                if not nnode.program_name(ev.program_name, len(ev.program_name)):
                    continue
                pmatch = ev.log
            if nnode.prematch is not None:
                r = nnode.prematch.execute(ev.log)
                if r is None:
                    continue
                pmatch = r[0]
            ev.decoder = nnode
            ev.trace.append("decoder %s" % nnode.own_name)
            cmatch = None
            children = node.child
            if not children:
                chain = [node]
                idx = 0
            else:
                idx = 0
                nnode = None
                while idx < len(children):
                    cd = children[idx].dec
                    if cd.prematch is not None:
                        llog2 = pmatch if cd.prematch_offset & AFTER_PARENT else ev.log
                        r = cd.prematch.execute(llog2)
                        if r is not None:
                            cmatch = r[0]
                            ev.decoder = cd
                            nnode = cd
                            ev.trace.append("decoder %s" % cd.own_name)
                            break
                    else:
                        cmatch = pmatch
                        nnode = cd
                        break
                    if cd.get_next:
                        while idx < len(children) and children[idx].dec.get_next:
                            idx += 1
                        if idx >= len(children):
                            return
                    idx += 1
                if nnode is None:
                    return
                chain = children
            if nnode.plugin:
                raise Unsupported("plugin decoder %s (%s)" % (nnode.own_name, nnode.plugin))
            regex_prev = None
            while True:
                if nnode.regex is None:
                    return
                if nnode.regex_offset & AFTER_PARENT:
                    llog = pmatch
                elif nnode.regex_offset & AFTER_PREMATCH:
                    llog = cmatch
                elif nnode.regex_offset & AFTER_PREVREGEX:
                    llog = cmatch if regex_prev is None else regex_prev
                else:
                    llog = ev.log
                r = nnode.regex.execute(llog)
                if r is None:
                    if nnode.get_next:
                        idx += 1
                        nnode = chain[idx].dec
                        continue
                    return
                regex_prev = r[0]
                ev.decoder = nnode
                for i, value in enumerate(r[1]):
                    if i >= 10:  # analysisd.decoder_order_size
                        raise ConfigError("decoder %s: regex has too many groups" % nnode.own_name)
                    if i < len(nnode.order):
                        f = nnode.order[i]
                        if f.startswith("dyn:"):
                            ev.dynamic[f[4:]] = value
                        else:
                            setattr(ev, f, value)
                if nnode.get_next:
                    idx += 1
                    nnode = chain[idx].dec
                    continue
                return
        ev.trace.append("no decoder matched")


# ---------------------------------------------------------------------------------------------
# rules (rules.c, rules_list.c) and their evaluation (analysisd.c OS_CheckIfRuleMatch)
# ---------------------------------------------------------------------------------------------

NO_ALERT, DO_MAILALERT, DO_LOGALERT, DO_PACKETINFO, DO_EXTRAINFO, DO_FTS, DO_OVERWRITE = (
    1, 2, 4, 8, 16, 32, 64)
_MATCH_FIELDS = ("program_name", "id", "match", "url", "srcport", "dstport", "user", "srcgeoip",
                 "dstgeoip", "extra_data", "hostname", "status")
_EXTRAINFO_ELEMENTS = {"status", "hostname", "extra_data", "user", "srcgeoip", "dstgeoip", "time",
                       "weekday", "compiled_rule"}
_PACKETINFO_ELEMENTS = {"srcip", "dstip", "srcport", "dstport"}
# the fields OS_AddRuleInfo copies into the rule an overwrite="yes" rule replaces
_OVERWRITTEN = ("level", "maxsize", "frequency", "timeframe", "ignore_time", "group", "match",
                "regex", "day_time", "week_day", "srcip", "dstip", "srcport", "dstport", "user", "url",
                "id", "status", "hostname", "program_name", "extra_data", "action", "comment", "info",
                "cve", "if_matched_regex", "if_matched_group", "if_matched_sid", "alert_opts",
                "context_opts", "context", "decoded_as", "compiled_rule")


class Rule:
    def __init__(self, sigid, level):
        self.sigid = sigid
        self.level = level
        self.category = SYSLOG
        self.alert_opts = 0
        self.context = False
        self.context_opts = 0
        self.group = ""
        self.comment = None
        self.info = None
        self.cve = None
        self.decoded_as = None
        self.if_sid = self.if_group = self.if_level = None
        self.if_matched_sid = self.if_matched_group = self.if_matched_regex = None
        self.maxsize = self.frequency = self.timeframe = self.ignore_time = 0
        self.day_time = self.week_day = self.compiled_rule = self.action = None
        self.srcip = self.dstip = None
        self.lists = None
        self.fields = []
        self.ignore = self.ckignore = None
        self.regex = self.pcre2 = None
        for f in _MATCH_FIELDS:
            setattr(self, f, None)
            setattr(self, f + "_pcre2", None)
        self.origin = None


class _RNode:
    __slots__ = ("rule", "child")

    def __init__(self, rule):
        self.rule = rule
        self.child = []


def _insert_by_level(lst, rule):
    """_OS_AddRule: before the first sibling of a lower (internal) level; level 0 counts as 99."""
    for i, n in enumerate(lst):
        if rule.level > n.rule.level:
            lst.insert(i, _RNode(rule))
            return
    lst.append(_RNode(rule))


class Rules:
    def __init__(self, decoders, mailbylevel=7, logbylevel=1):
        self.top = []
        self.decoders = decoders
        self.mailbylevel = mailbylevel
        self.logbylevel = logbylevel
        self.by_id = {}

    def walk(self, nodes=None):
        for n in self.top if nodes is None else nodes:
            yield n
            yield from self.walk(n.child)

    def read(self, path):
        nodes = read_xml(path)
        for g in nodes:
            if g.element.lower() != "group":
                raise ConfigError("%s: invalid root element %r, only group is allowed" % (path, g.element))
            if len(g.attributes) != 1 or g.attributes[0][0].lower() != "name":
                raise ConfigError("%s: invalid root element %r, only the group name is allowed" % (path, g.element))
            if not g.children:
                raise ConfigError("%s: group %r without any rule" % (path, g.attributes[0][1]))
            for r in g.children:
                if r.element.lower() != "rule":
                    raise ConfigError("%s: %r is not a valid element" % (path, r.element))
                self._read_rule(r, g.attributes[0][1], path)

    def _read_rule(self, r, group, path):
        a = {"id": -1, "level": -1, "maxsize": 0, "timeframe": 360, "frequency": 0, "accuracy": 1,
             "noalert": 0, "ignore": 0, "overwrite": 0}
        if not r.attributes:
            raise ConfigError("%s: rule without id and level" % path)
        for k, v in r.attributes:
            kl = k.lower()
            if kl == "noalert":
                a["noalert"] = 1
            elif kl == "overwrite":
                if v not in ("yes", "no"):
                    raise ConfigError("%s: invalid overwrite %r" % (path, v))
                a["overwrite"] = v == "yes"
            elif kl in a:
                if not v.isdigit():
                    raise ConfigError("%s: invalid %s %r" % (path, kl, v))
                a[kl] = int(v[:6] if kl in ("id", "ignore") else v[:5] if kl == "timeframe" else v[:4])
            else:
                raise ConfigError("%s: invalid rule attribute %r" % (path, k))
        if a["id"] == -1 or a["level"] == -1:
            raise ConfigError("%s: no rule id or level" % path)
        sigid = a["id"]
        if not a["overwrite"] and sigid in self.by_id:
            raise ConfigError("%s: Duplicate rule ID:%d" % (path, sigid))
        rule = Rule(sigid, a["level"])
        rule.origin = path
        rule.maxsize, rule.frequency, rule.timeframe = a["maxsize"], a["frequency"], a["timeframe"]
        rule.ignore_time = a["ignore"]
        if a["noalert"]:
            rule.alert_opts |= NO_ALERT
        if self.mailbylevel <= a["level"]:
            rule.alert_opts |= DO_MAILALERT
        if self.logbylevel <= a["level"]:
            rule.alert_opts |= DO_LOGALERT
        if a["overwrite"]:
            rule.alert_opts |= DO_OVERWRITE
        # level 0 sorts first (99); every level x100 unless accuracy="0"
        rule.level = 99 if rule.level == 0 else rule.level
        if a["accuracy"]:
            rule.level *= 100
        if rule.maxsize > 0:
            rule.alert_opts |= DO_EXTRAINFO
        rule.group = group
        text = {}
        for e in r.children:
            el, ct = e.element.lower(), e.content
            if e.element is None or ct is None:
                break
            if el in ("regex", "pcre2", "match", "match_pcre2", "url", "url_pcre2", "id", "id_pcre2",
                      "srcport", "srcport_pcre2", "dstport", "dstport_pcre2", "status", "status_pcre2",
                      "hostname", "hostname_pcre2", "extra_data", "extra_data_pcre2", "program_name",
                      "program_name_pcre2", "user", "user_pcre2", "srcgeoip", "srcgeoip_pcre2",
                      "dstgeoip", "dstgeoip_pcre2", "if_matched_regex", "if_matched_group"):
                text[el] = text.get(el, "") + ct
                base = el[:-6] if el.endswith("_pcre2") else el
                if base in _EXTRAINFO_ELEMENTS:
                    rule.alert_opts |= DO_EXTRAINFO
                if base in _PACKETINFO_ELEMENTS:
                    rule.alert_opts |= DO_PACKETINFO
                if el in ("if_matched_regex", "if_matched_group"):
                    rule.context = True
            elif el == "decoded_as":
                if ct not in self.decoders.names:
                    raise ConfigError("%s: rule %d: Invalid decoder name: %r" % (path, sigid, ct))
                rule.decoded_as = ct
            elif el == "cve":
                rule.cve = (rule.cve or "") + ct
            elif el == "info":
                rule.info = (rule.info or "") + ct
            elif el in ("time", "weekday"):
                setattr(rule, "day_time" if el == "time" else "week_day", ct)
                rule.alert_opts |= DO_EXTRAINFO
            elif el == "group":
                rule.group += ct
            elif el == "description":
                rule.comment = (rule.comment or "") + ct.replace("\n", " ", 1)
            elif el in ("srcip", "dstip"):
                setattr(rule, el, (getattr(rule, el) or []) + [ct])
                rule.alert_opts |= DO_PACKETINFO
            elif el == "action":
                rule.action = (rule.action or "") + ct
            elif el == "field":
                name = e.attr("name")
                if name is None:
                    raise ConfigError("%s: rule %d: field without a name" % (path, sigid))
                rule.fields.append((name, OSRegex(ct)))
            elif el == "list":
                rule.lists = (rule.lists or []) + [ct]
            elif el == "compiled_rule":
                rule.compiled_rule = ct
                rule.alert_opts |= DO_EXTRAINFO
            elif el == "category":
                if ct not in _CATEGORIES:
                    raise ConfigError("%s: rule %d: invalid category %r" % (path, sigid, ct))
                rule.category = _CATEGORIES[ct]
            elif el == "if_sid":
                rule.if_sid = (rule.if_sid or "") + ct
            elif el == "if_level":
                if not ct.isdigit():
                    raise ConfigError("%s: rule %d: invalid if_level" % (path, sigid))
                rule.if_level = (rule.if_level or "") + ct
            elif el == "if_group":
                rule.if_group = (rule.if_group or "") + ct
            elif el == "if_matched_sid":
                if not ct.isdigit():
                    raise ConfigError("%s: rule %d: invalid if_matched_sid" % (path, sigid))
                rule.context = True
                rule.if_matched_sid = int(ct)
            elif el in ("same_source_ip", "same_src_port", "same_dst_port", "same_user", "same_location",
                        "same_id", "different_url", "different_srcip", "different_srcgeoip"):
                rule.context_opts |= 1
            elif el in ("not_same_source_ip", "not_same_user", "not_same_agent", "not_same_id"):
                pass
            elif el == "check_diff":
                rule.context = True
                rule.context_opts |= 2
                rule.alert_opts |= DO_EXTRAINFO
            elif el == "if_fts":
                rule.alert_opts |= DO_FTS
            elif el == "options":
                if ct == "alert_by_email":
                    rule.alert_opts |= DO_MAILALERT
                elif ct == "no_email_alert":
                    rule.alert_opts &= ~DO_MAILALERT
                elif ct == "log_alert":
                    rule.alert_opts |= DO_LOGALERT
                elif ct == "no_log":
                    rule.alert_opts &= ~DO_LOGALERT
                elif ct == "no_ar":
                    pass
                else:
                    raise ConfigError("%s: rule %d: invalid option %r" % (path, sigid, ct))
            elif el in ("ignore", "check_if_ignored"):
                keys = [k for k in ("user", "srcip", "dstip", "id", "location", "data", "name") if k in ct]
                if not keys:
                    raise ConfigError("%s: rule %d: wrong %s option %r" % (path, sigid, el, ct))
                setattr(rule, "ignore" if el == "ignore" else "ckignore", keys)
            else:
                raise ConfigError("%s: invalid option %r for rule %d" % (path, e.element, sigid))
        if (rule.context_opts or rule.frequency) and not rule.context:
            raise ConfigError("%s: rule %d: frequency/context options without if_matched" % (path, sigid))
        if "if_matched_group" in text and not rule.if_sid and not rule.if_group:
            rule.if_group = text["if_matched_group"]
        if rule.if_matched_sid and not rule.if_sid and not rule.if_group:
            rule.if_sid = str(rule.if_matched_sid)
        if "regex" in text:
            rule.regex = OSRegex(text["regex"])
        if "pcre2" in text:
            rule.pcre2 = OSPcre2(text["pcre2"])
        for f in _MATCH_FIELDS:
            if f in text:
                setattr(rule, f, OSMatch(text[f]))
            elif f + "_pcre2" in text:
                setattr(rule, f + "_pcre2", OSPcre2(text[f + "_pcre2"]))
        self._add(rule, path)

    def _add(self, rule, path):
        if rule.sigid < 10:
            _insert_by_level(self.top, rule)
        elif rule.alert_opts & DO_OVERWRITE:
            for n in self.walk():
                if n.rule.sigid == rule.sigid:
                    for f in _OVERWRITTEN:
                        setattr(n.rule, f, getattr(rule, f))
                    break
            else:
                raise ConfigError("%s: Overwrite rule '%d' not found." % (path, rule.sigid))
            return
        elif rule.if_sid:
            for part in re.split(r"[ ,]+", rule.if_sid.strip(" ,")):
                if not part.isdigit():
                    raise ConfigError("%s: rule %d: if_sid must be an integer" % (path, rule.sigid))
                if not self._add_child(self.top, rule, sid=int(part)):
                    raise ConfigError("%s: Signature ID '%s' not found. Invalid 'if_sid'." % (path, part))
        elif rule.if_level:
            level = int(rule.if_level) * 100
            if not self._add_child(self.top, rule, level=level):
                raise ConfigError("%s: Level ID '%d' not found. Invalid 'if_level'." % (path, level))
        elif rule.if_group:
            if not self._add_child(self.top, rule, group=rule.if_group):
                raise ConfigError("%s: Group '%s' not found. Invalid 'if_group'." % (path, rule.if_group))
        else:
            for n in self.top:
                if n.rule.category == rule.category:
                    _insert_by_level(n.child, rule)
                    break
            else:
                raise ConfigError("%s: Category '%d' not found." % (path, rule.category))
        self.by_id[rule.sigid] = rule

    def _add_child(self, nodes, rule, sid=None, level=None, group=None):
        """_AddtoRule over one sibling list (and, as OSSEC does, down every subtree)."""
        found = False
        for n in list(nodes):
            if sid is not None:
                if n.rule.sigid == sid:
                    rule.category = n.rule.category
                    _insert_by_level(n.child, rule)
                    return True
            elif group is not None:
                if word_match(group, n.rule.group) and n.rule.sigid != rule.sigid:
                    _insert_by_level(n.child, rule)
                    found = True
            elif level is not None:
                if n.rule.level >= level and n.rule.sigid != rule.sigid:
                    _insert_by_level(n.child, rule)
                    found = True
            if n.child and self._add_child(n.child, rule, sid, level, group):
                found = True
                if sid is not None:
                    return True
        return found

    def finish(self):
        """_setlevels: back to the levels as written."""
        seen = set()
        for n in self.walk():
            r = n.rule
            if id(r) in seen:
                continue
            seen.add(id(r))
            if r.level == 9900:
                r.level = 0
            if r.level >= 100:
                r.level //= 100


class Event:
    def __init__(self):
        self.location = self.full_log = self.log = None
        self.hostname = self.program_name = None
        self.decoder = None
        self.dstuser = self.srcuser = self.srcip = self.dstip = self.srcport = self.dstport = None
        self.protocol = self.action = self.id = self.url = self.data = self.status = None
        self.system_name = self.filename = None
        self.dynamic = {}
        self.trace = []


_HOSTCHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789()-.@/_")


def _at(s, k):
    return s[k] if 0 <= k < len(s) else "\0"


def clean_msg(msg, server_hostname="ossec-server"):
    """OS_CleanMSG: "<id>:<location>:<log>" -> Event (location, hostname, program_name, log)."""
    ev = Event()
    msg = msg[2:]
    colon = msg.find(":")
    if colon < 0:
        raise ConfigError("bad message format")
    if msg.startswith("("):
        arrow = msg.find("->")
        colon = msg.find(":", arrow) if arrow >= 0 else -1
        if colon < 0:
            raise ConfigError("bad message format")
    ev.location = msg[:colon]
    pieces = msg[colon + 1:]
    loglen = len(pieces) + 1
    ev.full_log = pieces
    log = pieces
    pos = 0  # lf->log = log[pos:]
    if _at(pieces, 1) == "\xc3" and _at(pieces, 2) == "\xa4":  # "Mär": a month with an umlaut
        pieces = "Ma" + pieces[3:]
    p = lambda k: _at(pieces, k)  # noqa: E731
    adv = None
    if loglen > 17 and p(3) == " " and p(6) == " " and p(9) == ":" and p(12) == ":" and p(15) == " ":
        adv = 16  # Dec 29 10:00:01
    elif (loglen > 24 and p(4) == "-" and p(7) == "-" and p(10) == " " and p(13) == ":" and p(16) == ":"
          and p(19) == ","):
        adv = 23  # 2015-04-16 21:51:02,805
    elif loglen > 33 and p(4) == "-" and p(7) == "-" and p(10) == "T" and p(13) == ":" and p(16) == ":":
        if p(22) == ":" and p(25) == " ":
            adv = 26  # 2007-06-14T15:48:55-04:00
        elif p(19) in (".", ","):
            for k, a in ((24, 27), (25, 28), (26, 29), (27, 30), (28, 31), (29, 32)):
                if p(k) == ":":
                    adv = a  # 2009-05-22T09:36:46.214994-07:00
                    break
    if adv is None and (loglen > 21 and p(0).isdigit() and p(4) == " " and p(8) == " " and p(11) == " "
                        and p(14) == ":" and p(17) == ":" and p(20) == " "):
        adv = 21  # 2015 Dec 29 10:00:01
    if adv is None and (loglen > 20 and p(0).isdigit() and p(4) == ":" and p(7) == ":" and p(10) == "-"
                        and p(13) == ":" and p(16) == ":"):
        adv = 20  # 2019:11:06-00:08:03
    if adv is not None:
        pos += adv
        if _at(log, pos) == " ":
            pos += 1
        h = pos
        j = h
        while _at(log, j) in _HOSTCHARS:
            j += 1
        piece = None
        if _at(log, j) == ":" and _at(log, j + 1) == " ":
            ev.program_name = log[h:j]  # syslog without a hostname (Solaris)
            piece = pos = j + 2
        elif _at(log, j) != " ":
            pass  # invalid hostname: log stays after the date
        else:
            ev.hostname = log[h:j]
            pos = j + 1
            start = k = pos
            while _at(log, k) in _HOSTCHARS:
                k += 1
            if _at(log, k) == ":" and _at(log, k + 1) == " ":
                ev.program_name, piece = log[start:k], k + 2
            elif _at(log, k) == "[" and _at(log, k + 1).isdigit():
                m = k + 2
                while _at(log, m).isdigit():
                    m += 1
                if _at(log, m) == "]" and _at(log, m + 1) == ":" and _at(log, m + 2) == " ":
                    ev.program_name, piece = log[start:k], m + 3
                elif _at(log, m) == "]" and _at(log, m + 1) == " ":
                    ev.program_name, piece = log[start:k], m + 2
            elif _at(log, k) == "|" and _at(log, k + 1).islower():
                raise Unsupported("AIX syslog format")
        if piece is not None:
            pos = piece
            if log.startswith("[ID ", pos):
                end = log.find("] ", pos + 4)
                if end >= 0:
                    pos = end + 2
    elif (loglen > 28 and p(3) == " " and p(7) == " " and p(10) == " " and p(13) == ":" and p(16) == ":"
          and p(19) == " " and p(24) == " " and p(26) == " "):
        pos += 24  # xferlog
    elif (loglen > 24 and p(2) == "/" and p(5) == "-" and p(8) == ":" and p(11) == ":" and p(14) == "."
          and p(21) == " "):
        pos += 23  # snort
    elif (loglen > 26 and p(2) == "/" and p(5) == "/" and p(10) == "-" and p(13) == ":" and p(16) == ":"
          and p(19) == "." and p(26) == " "):
        pos += 28  # suricata
    elif (loglen > 27 and p(0) == "[" and p(4) == " " and p(8) == " " and p(11) == " " and p(14) == ":"
          and p(17) == ":" and p(20) == " " and p(25) == "]"):
        pos += 27  # apache
    elif (loglen > 26 and p(0) == "[" and p(1) == "T" and p(5) == " " and p(10) == "." and p(13) == "."
          and p(16) == " " and p(19) == ":"):
        raise Unsupported("OS X ASL log format")
    elif (loglen > 32 and p(0) == "1" and p(1).isdigit() and p(2).isdigit() and p(3).isdigit()
          and p(10) == "." and p(13).isdigit() and p(14) == " " and (p(21) == " " or p(22) == " ")):
        pos += 14  # squid
        while _at(log, pos) == " ":
            pos += 1
    if ev.location.startswith("("):
        ev.hostname = ev.location
    elif ev.hostname is None:
        ev.hostname = server_hostname
    ev.log = log[pos:]
    return ev


class Result:
    """What ossec-logtest says: rule and level (None if no rule), alert (logged), mail."""

    def __init__(self, ev, rule, logalert):
        self.event = ev
        self.rule = rule
        self.rule_id = rule.sigid if rule else None
        self.level = rule.level if rule else None
        self.description = rule.comment if rule else None
        self.alert = logalert  # "**Alert to be generated."
        self.mail = bool(logalert and rule.alert_opts & DO_MAILALERT)
        self.decoder = ev.decoder.name if ev.decoder else None
        self.program_name = ev.program_name

    def __repr__(self):
        return "Result(rule_id=%r, level=%r, alert=%r, mail=%r, decoder=%r, program_name=%r)" % (
            self.rule_id, self.level, self.alert, self.mail, self.decoder, self.program_name)


def _ossec_conf(path):
    includes, decoders, log_level, mail_level = [], [], 1, 7
    for root in read_xml(path):
        if root.element != "ossec_config":
            continue
        for sect in root.children:
            if sect.element == "rules":
                for e in sect.children:
                    if e.element == "include":
                        includes.append(e.content)
                    elif e.element == "decoder":
                        decoders.append(e.content)
                    else:
                        raise ConfigError("%s: <rules><%s> is not modelled" % (path, e.element))
            elif sect.element == "alerts":
                for e in sect.children:
                    if e.element == "email_alert_level":
                        mail_level = int(e.content)
                    elif e.element == "log_alert_level":
                        log_level = int(e.content)
    return includes, decoders, log_level, mail_level


class Ossec:
    """OSSEC as configured by ossec_conf, with rules from rules_dir (local_rules.xml and other
    file names may be taken from elsewhere through `rule_files`), decoders from decoder_xml and
    local_decoder_xml (unless ossec.conf names decoder files)."""

    def __init__(self, ossec_conf, rules_dir, decoder_xml, local_decoder_xml=None, rule_files=None,
                 server_hostname="ossec-server"):
        self.includes, dec_files, self.log_level, self.mail_level = _ossec_conf(ossec_conf)
        self.server_hostname = server_hostname
        self.decoders = Decoders()
        if dec_files:
            for f in dec_files:
                self.decoders.read(f)
        else:
            self.decoders.read(decoder_xml)
            if local_decoder_xml and os.path.exists(local_decoder_xml):
                self.decoders.read(local_decoder_xml)
        self.decoders.finish()
        self.rules = Rules(self.decoders, self.mail_level, self.log_level)
        rule_files = rule_files or {}
        for name in self.includes:
            self.rules.read(rule_files.get(name) or os.path.join(rules_dir, name))
        self.rules.finish()

    def check(self, line, location="stdin"):
        """One line as ossec-logtest reads it (location "stdin"), or as analysisd reads a line an
        agent sent (location "(app) 10.20.2.2->/var/log/syslog")."""
        return self.check_bytes(line.encode("utf-8", "surrogateescape"), location)

    def check_bytes(self, data, location="stdin"):
        line = data.decode("latin-1").split("\n", 1)[0]
        ev = clean_msg("1:%s:%s" % (location, line), self.server_hostname)
        self.decoders.decode(ev)
        if ev.decoder is not None and ev.decoder.accumulate:
            raise Unsupported("accumulating decoder %s" % ev.decoder.own_name)
        dtype = ev.decoder.type if ev.decoder else SYSLOG
        for node in self.rules.top:
            if node.rule.category != dtype:
                continue
            rule = self._match(ev, node)
            if rule is None:
                continue
            if rule.level == 0:
                return Result(ev, rule, False)
            return Result(ev, rule, bool(rule.alert_opts & DO_LOGALERT))
        return Result(ev, None, False)

    def _match(self, ev, node):
        r = node.rule
        ev.trace.append("trying %d" % r.sigid)
        dec_name = ev.decoder.name if ev.decoder else None
        if r.decoded_as is not None and r.decoded_as != dec_name:
            return None
        if not self._field(r, "program_name", ev.program_name):
            return None
        if not self._field(r, "id", ev.id):
            return None
        if r.match is not None:
            if not r.match(ev.log, len(ev.log)):
                return None
        elif r.match_pcre2 is not None:
            if not r.match_pcre2(ev.log):
                return None
        if r.regex is not None:
            if r.regex.execute(ev.log) is None:
                return None
        elif r.pcre2 is not None:
            if r.pcre2.execute(ev.log) is None:
                return None
        if r.action is not None and (ev.action is None or ev.action != r.action):
            return None
        if r.url is not None and (ev.url is None or not r.url(ev.url)):
            return None
        if r.url_pcre2 is not None and (ev.url is None or not r.url_pcre2(ev.url)):
            return None
        for name, rx in r.fields:
            dec_fields = [o[4:] for o in (ev.decoder.order or [])] if ev.decoder else []
            if not any(f.lower() == name.lower() for f in dec_fields):
                return None
            value = next((v for k, v in ev.dynamic.items() if k.lower() == name.lower()), None)
            if rx.execute(value) is None:
                return None
        if r.alert_opts & DO_PACKETINFO:
            for f in ("srcip", "dstip"):
                if getattr(r, f):
                    if getattr(ev, f) is None:
                        return None
                    raise Unsupported("rule %d: <%s> lists" % (r.sigid, f))
            for f in ("srcport", "dstport"):
                if not self._field(r, f, getattr(ev, f)):
                    return None
        if r.alert_opts & DO_EXTRAINFO:
            if r.compiled_rule:
                raise Unsupported("rule %d: compiled_rule %s" % (r.sigid, r.compiled_rule))
            if r.user is not None or r.user_pcre2 is not None:
                user = ev.dstuser if ev.dstuser is not None else ev.srcuser
                if user is None or not self._field(r, "user", user):
                    return None
            if not self._field(r, "srcgeoip", None) or not self._field(r, "dstgeoip", None):
                return None  # no GeoIP database: never set
            if r.maxsize and len(ev.log) < r.maxsize:
                return None
            if r.day_time or r.week_day:
                raise Unsupported("rule %d: <time>/<weekday>" % r.sigid)
            if not self._field(r, "extra_data", ev.data):
                return None
            if not self._field(r, "hostname", ev.hostname):
                return None
            if not self._field(r, "status", ev.status):
                return None
            if r.context_opts & 2:
                raise Unsupported("rule %d: check_diff" % r.sigid)
        if r.alert_opts & DO_FTS:
            if not (ev.decoder and ev.decoder.fts):
                return None
            raise Unsupported("rule %d: if_fts with decoder %s" % (r.sigid, ev.decoder.own_name))
        if r.lists:
            raise Unsupported("rule %d: <list>" % r.sigid)
        if r.context and not r.context_opts & 2:
            return None  # a fresh process has no earlier events to correlate with
        ev.trace.append("matched %d" % r.sigid)
        for ch in node.child:
            got = self._match(ev, ch)
            if got is not None:
                return got
        if r.alert_opts & NO_ALERT:
            return None
        return r

    @staticmethod
    def _field(r, name, value):
        m = getattr(r, name)
        if m is None:
            m = getattr(r, name + "_pcre2")
            if m is None:
                return True
        if value is None:
            return False
        return m(value, len(value))


def default_paths():
    """(ossec-hids etc/, SecureDrop's var/ossec/) of the data snapshot beside this repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "upstream"))
    if not os.path.isdir(shared):
        shared = "/work/shared/upstream"
    ossec = os.environ.get("SDTE_OSSEC_HIDS_ETC") or os.path.join(shared, "ossec-hids", "etc")
    sd = os.environ.get("SDTE_SECUREDROP_SNAPSHOT") or os.path.join(shared, "securedrop")
    return ossec, sd


def securedrop_ossec(ossec_etc, securedrop_tree, local_rules=None):
    """SecureDrop's Monitor Server: OSSEC 3.6.0's decoders and rules, SecureDrop's ossec.conf,
    local_decoder.xml and local_rules.xml (or local_rules instead)."""
    var = os.path.join(securedrop_tree, "securedrop", "debian", "ossec-server", "var", "ossec")
    return Ossec(os.path.join(var, "etc", "ossec.conf"), os.path.join(ossec_etc, "rules"),
                 os.path.join(ossec_etc, "decoder.xml"), os.path.join(var, "etc", "local_decoder.xml"),
                 {"local_rules.xml": local_rules or os.path.join(var, "rules", "local_rules.xml")})


def main(argv=None):
    ossec_default, sd_default = default_paths()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ossec", default=ossec_default, help="OSSEC 3.6.0's etc/ (decoder.xml, rules/)")
    ap.add_argument("--securedrop", default=sd_default, help="a SecureDrop tree")
    ap.add_argument("--local-rules", help="local_rules.xml instead of the tree's")
    ap.add_argument("--location", default="stdin")
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("lines", nargs="*")
    args = ap.parse_args(argv)
    o = securedrop_ossec(args.ossec, args.securedrop, args.local_rules)
    lines = args.lines or [ln.rstrip("\n") for ln in sys.stdin]
    for line in lines:
        r = o.check(line, args.location)
        print("rule %s level %s alert %s mail %s | %s" % (
            r.rule_id, r.level, "yes" if r.alert else "no", "yes" if r.mail else "no", line))
        if args.trace:
            print("   program_name=%r decoder=%r log=%r" % (r.program_name, r.decoder, r.event.log))
            print("   " + " / ".join(t for t in r.event.trace if not t.startswith("trying")))


if __name__ == "__main__":
    main()
