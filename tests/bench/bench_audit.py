#!/usr/bin/env python3
"""Audit trail cost (issue 4, point 8), in two parts, each in one run.

1. Closed loop, the headline: the same load through the gateway without
   the audit trail, with it as configured by default (fsync "always",
   batch_ms 50), with the earlier default window (batch_ms 10), with every
   record written as soon as it is queued (batch_ms 0), and with the
   defaults but the trail on tmpfs (/dev/shm: what the disk costs),
   interleaved round by round.  Prints req/s and gateway CPU per request
   as ratios to the run without the trail.
2. Side by side: the gateway without the trail and the variants above
   (bar batch_ms 0) running at the same time, each under its own open loop
   of SIDE_RATE requests/s, so that whatever else the machine does hits
   them alike; prints the CPU each variant adds per request.  On a shared
   VM this separates variants within a run far better than anything
   measured one after the other; between runs it still moves.

Run by hand; never in CI.

    tests/bench/bench_audit.py            # builds build-bench/ and build-bench-noaudit/
    ROUNDS=5 DURATION=6 CONNS=64 SIDE_RATE=4000 tests/bench/bench_audit.py

"Without" needs a binary built with -DTG_BENCH_NO_AUDIT=ON, which a
deployment never uses.  All traffic stays on 127.0.0.1; every process is
stopped at the end."""

import os
import shutil
import statistics
import subprocess
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "8")
CONNS = os.environ.get("CONNS", "64")
SIDE_RATE = os.environ.get("SIDE_RATE", "4000")


def build(path, *flags):
    subprocess.run(["cmake", "-S", TOP, "-B", path, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DTG_TESTS=ON", *flags], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", path, "-j2", "--target", "transgate", "stub_vendor",
                    "tg_load"], check=True, stdout=subprocess.DEVNULL)


def cpu_s(pid):
    """User + system CPU seconds of a process, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_args(gw, certs, *extra):
    return [os.path.join(TOP, "build-bench", "tests", "tg_load"), "--url",
            "https://127.0.0.1:%d/v2/translate" % gw.port, "--ca", certs.ca,
            "--servername", "localhost", "-H", "Authorization: DeepL-Auth-Key " + gw.keys["bench"],
            "-H", "Content-Type: application/x-www-form-urlencoded",
            "--body", "text=Please%20call%20me%20at%2003-1234-5678&target_lang=DE",
            "-d", DURATION, "-w", "2", "-q", *extra]


def load_result(p, out, err=""):
    if p.returncode != 0:
        sys.exit("tg_load failed (%d):\n%s%s" % (p.returncode, out, err))
    return dict(item.split("=", 1) for item in out.split())


def run_load(gw, certs):
    c0 = cpu_s(gw.proc.pid)
    p = subprocess.run(load_args(gw, certs, "-c", CONNS), capture_output=True, text=True)
    cpu = cpu_s(gw.proc.pid) - c0
    kv = load_result(p, p.stdout, p.stderr)
    # CPU per answered request (warm-up included, as bench_gateway.sh): far
    # steadier than req/s on a VM shared with other work.
    return float(kv["throughput"]), float(kv["p99_ms"]), 1e6 * cpu / float(kv["all_ok"])


def side_by_side(variants, certs):
    """Part 2: the variants at the same time, each under its own open loop."""
    names = [n for n in variants if "batch_ms 0" not in n]
    cpu = {n: [] for n in names}
    for _ in range(ROUNDS):
        for n in names:
            variants[n].start()
        c0 = {n: cpu_s(variants[n].proc.pid) for n in names}
        procs = {n: subprocess.Popen(load_args(variants[n], certs, "-c", "32", "-r", SIDE_RATE),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in names}
        outs = {n: p.communicate() for n, p in procs.items()}
        for n in names:
            kv = load_result(procs[n], *outs[n])
            cpu[n].append(1e6 * (cpu_s(variants[n].proc.pid) - c0[n]) / float(kv["all_ok"]))
            variants[n].stop()
    base = "no audit trail"
    print("side by side: %d gateways at once, each at %s req/s (open loop), %s s, "
          "%d round(s)" % (len(names), SIDE_RATE, DURATION, ROUNDS))
    print("%-24s %11s %14s %9s" % ("variant", "CPU us/req", "added us/req", "added"))
    for n in names:
        added = [a - b for a, b in zip(cpu[n], cpu[base])]
        print("%-24s %11.1f %+14.2f %+8.1f%%   (rounds: %s)" % (
            n, statistics.median(cpu[n]), statistics.median(added),
            100.0 * statistics.median(a / b - 1 for a, b in zip(cpu[n], cpu[base])),
            " ".join("%+.1f" % x for x in added)))


def main():
    build(os.path.join(TOP, "build-bench"))
    build(os.path.join(TOP, "build-bench-noaudit"), "-DTG_BENCH_NO_AUDIT=ON")
    w = harness.Workdir("tg-bench-audit-")
    stub, variants, tmpfs_dirs = None, {}, []
    try:
        harness.TRANSGATE = os.path.join(TOP, "build-bench", "gateway", "transgate")
        harness.STUB_VENDOR = os.path.join(TOP, "build-bench", "tests", "stub_vendor")
        certs = harness.Certs(w.path)
        key = os.path.join(w.path, "vendor.apikey")
        with open(key, "w") as f:
            f.write("bench\n")
        os.chmod(key, 0o600)
        stub = harness.StubVendor(w.path, certs, api_key="bench")
        for name, binary, audit, batch in (
                ("no audit trail", "build-bench-noaudit", None, None),
                ("audit (defaults)", "build-bench", None, None),
                ("defaults, batch_ms 10", "build-bench", None, 10),
                ("always, batch_ms 0", "build-bench", "always", 0)) + (
                (("defaults, trail on tmpfs", "build-bench", None, None),)
                if os.path.isdir("/dev/shm") else ()):
            d = os.path.join(w.path, name.replace(" ", "-").replace(",", ""))
            os.makedirs(d)
            harness.TRANSGATE = os.path.join(TOP, binary, "gateway", "transgate")
            gw = harness.Gateway(d, certs, upstreams=[{
                "name": "stub", "adapter": "deepl", "url": "https://localhost:%d" % stub.port,
                "api_key_file": key, "ca_file": certs.ca, "clearance": 2,
                "max_connections": 256}], clients=[{"name": "bench", "upstream": "stub"}],
                log_level="warning", workers=2)
            if binary == "build-bench-noaudit":
                del gw.config["audit"]
            if audit is not None:
                gw.config["audit"]["fsync"] = audit
            if batch is not None:
                gw.config["audit"]["batch_ms"] = batch
            if "tmpfs" in name:
                # The same trail in memory: what the disk's syncs and
                # writeback cost, apart from building and chaining records.
                shm = os.path.join("/dev/shm", os.path.basename(w.path) + "-audit")
                os.makedirs(shm, mode=0o700)
                tmpfs_dirs.append(shm)
                gw.config["audit"]["path"] = os.path.join(shm, "audit.jsonl")
            with open(gw.config_path, "w") as f:
                import json
                json.dump(gw.config, f)
            variants[name] = gw
        results = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, gw in variants.items():
                gw.start()
                results[name].append(run_load(gw, certs))
                gw.stop()
        base = statistics.median(r[0] for r in results["no audit trail"])
        base_cpu = statistics.median(r[2] for r in results["no audit trail"])
        print("closed loop, %s connections, %s s per run, median of %d round(s)"
              % (CONNS, DURATION, ROUNDS))
        print("%-24s %10s %9s %10s %11s %9s" % ("variant", "req/s", "p99 ms", "vs none",
                                               "CPU us/req", "vs none"))
        for name, rs in results.items():
            thr = statistics.median(r[0] for r in rs)
            p99 = statistics.median(r[1] for r in rs)
            cpu = statistics.median(r[2] for r in rs)
            print("%-24s %10.0f %9.2f %9.1f%% %11.1f %8.1f%%" % (
                name, thr, p99, 100.0 * thr / base, cpu, 100.0 * cpu / base_cpu))
        for name in list(results)[1:]:
            print("%s, per round: req/s vs none %s; CPU vs none %s" % (name, ", ".join(
                "%.1f%%" % (100.0 * a[0] / b[0]) for a, b in zip(results[name],
                                                              results["no audit trail"])),
                ", ".join("%.1f%%" % (100.0 * a[2] / b[2]) for a, b in zip(
                    results[name], results["no audit trail"]))))
        # The headline is paired: each round's variants run back to back,
        # so the median of the per-round ratios is far steadier on a shared
        # machine than the ratio of the medians (printed in the table).
        paired = statistics.median(a[0] / b[0] for a, b in zip(
            results["audit (defaults)"], results["no audit trail"]))
        paired_cpu = statistics.median(a[2] / b[2] for a, b in zip(
            results["audit (defaults)"], results["no audit trail"]))
        print("throughput lost to the audit trail (defaults: fsync always, batch_ms 50), "
              "median of the per-round ratios: %.1f%% (target <= 5%%); gateway CPU per "
              "request +%.1f%%" % (100.0 * (1 - paired), 100.0 * (paired_cpu - 1)))
        side_by_side(variants, certs)
    finally:
        # Whatever happened (a failed load run exits from the middle of a
        # round), no gateway or stub is left running.
        for gw in variants.values():
            gw.stop()
        if stub is not None:
            stub.stop()
        for d in tmpfs_dirs:
            shutil.rmtree(d, ignore_errors=True)
        w.cleanup()


if __name__ == "__main__":
    main()
