#!/usr/bin/env python3
"""ikelb.yaml(5) documents exactly the keys the parser accepts.

The key lists are the `static const char *const *_keys[]` arrays of the
parser (src/core/config_parse.c today; every src/**/*.c is searched, so a
move of the parser does not lose them); the documented keys are the tags of the man page's key sections,
where a nested mapping's keys are the tags inside the .RS/.RE block after
its own tag. A key missing from the page, a documented key the parser does
not know, or a new key list that the table below does not place fails.

Run: python3 tests/pkg/test_manpage_keys.py [SRC_DIR_OR_FILE.c MANPAGE]
(also collected by pytest).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARSER = os.path.join(ROOT, "src")
MANPAGE = os.path.join(ROOT, "docs/ikelb.yaml.5")

# key list in config_parse.c -> (man page section, parent key or None)
PLACES = {
    "root_keys": ("TOP-LEVEL KEYS", None),
    "api_keys": ("TOP-LEVEL KEYS", "api"),
    "if_role_keys": ("TOP-LEVEL KEYS", "interfaces"),
    "bpf_keys": ("TOP-LEVEL KEYS", "bpf"),
    "limit_keys": ("TOP-LEVEL KEYS", "limits"),
    "socket_keys": ("TOP-LEVEL KEYS", "socket"),
    "sync_keys": ("TOP-LEVEL KEYS", "sync"),
    "svc_keys": ("SERVICE KEYS", None),
    "persist_keys": ("SERVICE KEYS", "persistence"),
    "health_keys": ("SERVICE KEYS", "health"),
    "admit_keys": ("SERVICE KEYS", "admission"),
    "srv_keys": ("SERVER KEYS", None),
}


def parser_keys(path):
    """{array name: [keys]} from a C file, or from every .c file under a directory."""
    files = [path]
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".c"))
    src = "\n".join(open(f, encoding="utf-8").read() for f in files)
    lists = {}
    for m in re.finditer(r"static\s+const\s+char\s*\*\s*const\s+(\w+_keys)\s*\[\]\s*=\s*\{(.*?)\};",
                         src, re.S):
        lists[m.group(1)] = re.findall(r'"([^"]+)"', m.group(2))
    return lists


def tag_key(line):
    """The key a .TP tag line names: `.B key`, `.BR key ...`, `\\fBkey\\fR ...`."""
    line = line.replace("\\-", "-")
    m = re.match(r'\.BR?\s+"?([A-Za-z_][\w.-]*)', line) or \
        re.match(r"\\fB([A-Za-z_][\w.-]*)\\f[RP]", line)
    return m.group(1) if m else None


def manpage_keys(path):
    """{(section, parent): [keys]} from the key sections' .TP tags."""
    doc = {}
    section, parent, last, depth = None, None, None, 0
    lines = open(path, encoding="utf-8").read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
            parent, last, depth = None, None, 0
        elif line.startswith(".RS"):
            depth += 1
            parent = last
        elif line.startswith(".RE"):
            depth -= 1
            parent = None
        elif line.startswith(".TP") and section and section.endswith("KEYS") and i + 1 < len(lines):
            key = tag_key(lines[i + 1])
            if key is None:
                raise AssertionError("%s:%d: cannot read the key of this tag: %r"
                                     % (path, i + 2, lines[i + 1]))
            doc.setdefault((section, parent), []).append(key)
            if depth == 0:
                last = key
    return doc


def problems(parser=PARSER, manpage=MANPAGE):
    lists = parser_keys(parser)
    doc = manpage_keys(manpage)
    errs = []
    if not lists:
        errs.append("%s: no *_keys[] arrays found (did the parser change?)" % parser)
    for name, keys in sorted(lists.items()):
        if name not in PLACES:
            errs.append("%s: key list %s is not placed in a man page section: add it to PLACES in %s"
                        % (parser, name, __file__))
            continue
        place = PLACES[name]
        where = place[0] + (" under %s" % place[1] if place[1] else "")
        for k in keys:
            if k not in doc.get(place, []):
                errs.append("%s: key '%s' (%s) is not documented in %s" % (manpage, k, name, where))
    for name in PLACES:
        if name not in lists:
            errs.append("%s: key list %s is gone: update PLACES in %s" % (parser, name, __file__))
    known = {PLACES[n]: set(lists.get(n, [])) for n in PLACES}
    for place, keys in sorted(doc.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        for k in keys:
            if k not in known.get(place, set()):
                errs.append("%s: documents '%s' in %s%s, which the parser does not accept"
                            % (manpage, k, place[0], " under %s" % place[1] if place[1] else ""))
    return errs, sum(len(v) for v in lists.values())


def test_manpage_documents_every_key():
    errs, _ = problems()
    assert not errs, "\n".join(errs)


if __name__ == "__main__":
    args = sys.argv[1:]
    errs, n = problems(*args) if args else problems()
    for e in errs:
        print("FAIL: " + e, file=sys.stderr)
    if errs:
        sys.exit(1)
    print("ok: ikelb.yaml(5) documents all %d parser keys and no others" % n)
