#!/usr/bin/env python3
"""`transgate audit verify|mac|keygen` driven as an operator would.

Trails are written through the library by audit_tool (no daemon needed);
the commands under test run from TG_AUDIT_CLI (the transgate binary, run as
`transgate audit ...`).  Exits 77 (skipped) when that binary does not
dispatch `audit` yet.  The MAC rule is recomputed here with Python's hmac
module, independently of the C code, from docs/audit.md.

Environment: TG_AUDIT_CLI, TG_AUDIT_TOOL.
Prints one line per check and closes with "N passed, N failed".
"""

import hashlib
import hmac
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

CLI = os.environ.get("TG_AUDIT_CLI")
TOOL = os.environ.get("TG_AUDIT_TOOL")

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + ("\n     " + detail if detail else ""))


def run(*args, stdin=None):
    p = subprocess.run([CLI, "audit"] + list(args), input=stdin,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tool(*args):
    p = subprocess.run([TOOL] + list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit("audit_tool %s failed: %s" % (args, p.stderr.decode()))


def lines_of(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def write_lines(path, lines, last_newline=True):
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + (b"\n" if last_newline else b""))


def subkey(key_hex, label):
    return hmac.new(bytes.fromhex(key_hex), label, hashlib.sha256).digest()


def main():
    if not CLI or not TOOL:
        print("TG_AUDIT_CLI and TG_AUDIT_TOOL must be set")
        return 2
    rc, _, _ = run("--help")
    if rc != 0:
        print("skipped: %s does not dispatch 'audit' yet" % CLI)
        return 77
    work = tempfile.mkdtemp(prefix="tg-audit-cli-")
    try:
        return tests(work)
    finally:
        shutil.rmtree(work)


def tests(work):
    key = os.path.join(work, "audit.key")
    log = os.path.join(work, "audit.log")

    # keygen
    rc, out, err = run("keygen", key)
    check("keygen exits 0", rc == 0, err)
    st = os.stat(key)
    check("keygen file mode is 0600", stat.S_IMODE(st.st_mode) == 0o600,
          oct(st.st_mode))
    text = open(key).read()
    check("keygen writes 64 hex digits and a newline",
          len(text) == 65 and all(c in "0123456789abcdef" for c in text[:64])
          and text[64] == "\n", repr(text))
    rc, out, err = run("keygen", key)
    check("keygen refuses to overwrite (exit 1, key unchanged)",
          rc == 1 and "refusing to overwrite" in err and open(key).read() == text,
          err)
    key_hex = text.strip()

    # A trail with a document's digest in record 1.
    doc = os.path.join(work, "doc.txt")
    with open(doc, "wb") as f:
        f.write("個人番号を含む文書\n".encode())
    tool("write", log, key, "9", doc)
    rc, out, err = run("verify", "--key", key, log)
    check("verify intact trail: exit 0",
          rc == 0 and out == "verified: 10 records in 1 file, seq 1..10, chain intact\n",
          out + err)

    # The MAC rule, recomputed independently.
    ck = subkey(key_hex, b"transgate audit chain v1")
    prev = b"0" * 64
    ok = True
    for line in lines_of(log):
        suffix = line[-74:]
        body = line[:-74] + b"}"
        mac = hmac.new(ck, prev + b"\n" + body, hashlib.sha256).hexdigest().encode()
        ok = ok and suffix == b',"mac":"' + mac + b'"}'
        prev = mac
    check("every line ends with ,\"mac\":HMAC(chain, prev \\n body)", ok)

    # mac: the document's digest matches the record's text_macs.
    rec = json.loads(lines_of(log)[1])
    rc, out, err = run("mac", "--key", key, doc)
    check("mac of the document equals text_macs[0]",
          rc == 0 and out.strip() == rec["text_macs"][0], out + err)
    rc, out2, err = run("mac", "--key", key, "-", stdin=open(doc, "rb").read())
    check("mac reads standard input", rc == 0 and out2 == out, out2 + err)
    tk = subkey(key_hex, b"transgate text digest v1")
    want = hmac.new(tk, open(doc, "rb").read(), hashlib.sha256).hexdigest()
    check("mac is HMAC-SHA256 under the text subkey", out.strip() == want)
    rc, out3, err = run("mac", "--key", key, "--strip-newline", doc)
    want3 = hmac.new(tk, open(doc, "rb").read()[:-1], hashlib.sha256).hexdigest()
    check("--strip-newline leaves out the trailing newline",
          rc == 0 and out3.strip() == want3, out3 + err)
    with open(os.path.join(work, "crlf.txt"), "wb") as f:
        f.write(b"abc\r\n")
    rc, out4, _ = run("mac", "--key", key, "-n", os.path.join(work, "crlf.txt"))
    check("--strip-newline also removes CRLF",
          out4.strip() == hmac.new(tk, b"abc", hashlib.sha256).hexdigest())
    rc, out5, _ = run("mac", "--key", key, "-n", "-", stdin=b"")
    check("mac of empty input",
          rc == 0 and out5.strip() == hmac.new(tk, b"", hashlib.sha256).hexdigest())
    grep = subprocess.run(["grep", "-c", out.strip(), log], capture_output=True)
    check("the documented grep finds the record", grep.stdout.strip() == b"1")

    # Tampering, each kind, reported with file:line and exit 1.
    orig = lines_of(log)

    def tamper(name, lines, last_newline=True):
        p = os.path.join(work, name)
        write_lines(p, lines, last_newline)
        return p, run("verify", "--key", key, p)

    edited = list(orig)
    edited[4] = edited[4].replace(b"terminal-01", b"terminal-02")
    p, (rc, out, _) = tamper("edited.log", edited)
    check("edited record: exit 1, line 5, mac mismatch",
          rc == 1 and out.startswith(p + ":5: mac mismatch (record edited or key wrong)\n"),
          out)

    p, (rc, out, _) = tamper("deleted.log", orig[:4] + orig[5:])
    check("deleted record: exit 1, line 5, sequence gap",
          rc == 1 and out.startswith(p + ":5: sequence gap: expected 5 got 6 (record missing)\n"),
          out)

    p, (rc, out, _) = tamper("reordered.log", orig[:4] + [orig[5], orig[4]] + orig[6:])
    check("reordered records: exit 1, line 5, reordered",
          rc == 1 and out.startswith(p + ":5: sequence out of order: expected 5 got 6; "
                                     "record 5 is at " + p + ":6 (reordered)\n"), out)

    p, (rc, out, _) = tamper("moved.log", orig[:3] + orig[4:8] + [orig[3]] + orig[8:])
    check("record moved later: exit 1, reordered",
          rc == 1 and out.startswith(p + ":4: sequence out of order: expected 4 got 5; "
                                     "record 4 is at " + p + ":8 (reordered)\n"), out)

    p, (rc, out, _) = tamper("dup.log", orig[:6] + [orig[4]] + orig[6:])
    check("duplicated record: exit 1, goes backwards",
          rc == 1 and out.startswith(p + ":7: sequence goes backwards: expected 7 got 5"), out)

    p, (rc, out, _) = tamper("truncated.log", orig[:-1] + [orig[-1][:50]], False)
    check("truncated last record: exit 1, truncated last line",
          rc == 1 and out.startswith(p + ":10: truncated last line"), out)

    p, (rc, out, _) = tamper("garbage.log", orig[:2] + [b"not json at all"] + orig[2:])
    check("garbage line: exit 1, not JSON",
          rc == 1 and out.startswith(p + ":3: not JSON"), out)

    # Keys: wrong key is a mismatch on line 1; no key is a partial check.
    other = os.path.join(work, "other.key")
    run("keygen", other)
    rc, out, _ = run("verify", "--key", other, log)
    check("wrong key: exit 1 at line 1",
          rc == 1 and out.startswith(log + ":1: mac mismatch"), out)
    rc, out, _ = run("verify", log)
    check("no key: exit 3, says MACs not checked",
          rc == 3 and "not checked: MACs (no --key)" in out, out)

    # Rotation: oldest first is intact; the newest alone is partial.
    rot = os.path.join(work, "rot.log")
    tool("rotate", rot, key, "4")
    rc, out, _ = run("verify", "--key", key, rot + ".1", rot)
    check("rotated files oldest first: exit 0, chain intact",
          rc == 0 and out == "verified: 10 records in 2 files, seq 1..10, chain intact\n",
          out)
    rc, out, _ = run("verify", "--key", key, rot)
    check("newest file alone: exit 3, chain start not verifiable",
          rc == 3 and out.startswith(rot + ":1: note: chain start not verifiable "
                                     "(predecessor missing)"), out)
    write_lines(rot + ".1.cut", lines_of(rot + ".1")[:-1])
    rc, out, _ = run("verify", "--key", key, rot + ".1.cut", rot)
    check("last record of the older file deleted: exit 1 at the newer file's line 1",
          rc == 1 and out.startswith(rot + ":1: sequence gap: expected 5 got 6"), out)

    # Continuing an existing file keeps one chain.
    tool("write", log, key, "3")
    rc, out, _ = run("verify", "--key", key, log)
    check("appending to an existing trail continues the chain",
          rc == 0 and "13 records" in out and "seq 1..13" in out, out)

    # Usage and I/O errors: exit 2.
    rc, _, err = run("verify")
    check("verify without files: exit 2", rc == 2 and "usage" in err)
    rc, out, _ = run("verify", "--key", key, os.path.join(work, "missing.log"))
    check("verify of a missing file: exit 2", rc == 2 and "cannot read" in out, out)
    os.chmod(other, 0o644)
    rc, _, err = run("verify", "--key", other, log)
    check("verify with a group-readable key: exit 2",
          rc == 2 and "readable by group or others" in err, err)
    rc, _, err = run("mac", doc)
    check("mac without --key: exit 2", rc == 2 and "usage" in err)
    rc, _, err = run("frobnicate")
    check("unknown subcommand: exit 2", rc == 2 and "unknown command" in err)
    for sub in ("verify", "mac", "keygen"):
        rc, out, _ = run(sub, "--help")
        check(sub + " --help: exit 0 with usage", rc == 0 and out.startswith("usage: transgate audit " + sub))

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
