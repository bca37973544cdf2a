#!/usr/bin/env python3
"""Runs the test executables `cargo test --no-run --message-format=json`
built, two at a time, each from its crate's directory as cargo runs it.

Usage: scripts/run-tests.py BUILT_JSON LOG_DIR

Why two at a time: much of the suite waits on apt, mmdebstrap, downloads,
depmod and QEMU rather than on the CPU (a fresh machine's one-at-a-time
run kept this 2-core machine's CPUs 40 % busy). The roots and caches the
executables share are built under a lock per entry (tests/src/cache.rs),
as cargo already runs one executable's tests in parallel.

The slowest executables on a fresh machine start first, so the two
workers end together; the rest follow in cargo's order. Each executable's
whole output is printed when it ends, under its name, and kept in
LOG_DIR/<executable>.log. Exits 1 naming every executable that failed.
"""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# The ten slowest executables of a fresh machine's one-at-a-time run
# (2026-12-03: debian_host 446 s ... publish_safety 74 s): a hint for the
# order only.
SLOWEST_FIRST = ["debian_host", "corpus", "dkms_versions", "boot_test", "output",
                 "killed", "packages_deb", "kernel_hooks", "packages_rpm", "publish_safety"]


def executables(built_json):
    found = []
    with open(built_json) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
                continue
            if not msg["profile"]["test"]:
                continue
            found.append((msg["target"]["name"], os.path.dirname(msg["manifest_path"]),
                          msg["executable"]))
    return found


def order(found):
    def rank(item):
        name = item[0]
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)
    return sorted(found, key=rank)  # stable: cargo's order among the rest


def main():
    built_json, log_dir = sys.argv[1], sys.argv[2]
    found = order(executables(built_json))
    if not found:
        print(f"run-tests: cargo built no test executables (see {built_json})", file=sys.stderr)
        return 1
    printing = threading.Lock()
    failed = []

    def run(item):
        name, crate_dir, exe = item
        start = time.monotonic()
        done = subprocess.run([exe], cwd=crate_dir, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        took = time.monotonic() - start
        output = done.stdout.decode(errors="replace")
        with open(os.path.join(log_dir, os.path.basename(exe) + ".log"), "w") as log:
            log.write(output)
        with printing:
            verdict = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            print(f"     Ran {os.path.relpath(exe)} (in {crate_dir}): {verdict}, {took:.0f} s")
            print(output, flush=True)
            if done.returncode != 0:
                failed.append(exe)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, found))
    if failed:
        print("run-tests: FAILED:\n" + "\n".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
