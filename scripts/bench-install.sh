#!/bin/sh
# Benchmark (not a test): how long `kmodfarm-host install` takes on a host,
# prebuilt route against DKMS route, for the same kernel, in the same run:
# each of Debian 12's two kernels of the shared test root in turn (6.1, whose
# modules are plain .ko files, and 6.12, whose modules are xz-compressed).
#
# It drives the host tests' own set-up (tools/install/tests/common/world.rs:
# a repository published by the real `kmodfarm publish`, served on
# 127.0.0.1) through the ignored test
# `bench_install_prebuilt_against_dkms` in tools/install/tests/debian_host.rs.
# Each repetition takes a fresh bwrap sandbox over the same Debian 12 root,
# made a customer's base system first (gcc, make, dkms and the headers
# purged; for 6.1, its kernel image installed, as 6.12's already is), for
# each route, and times the one command (the release build
# that ships, glibc 2.28), start to exit:
#
#   prebuilt: kmodfarm-host install --kernel K --no-load
#             (signed lookup file, download from 127.0.0.1, sha256,
#             placement under /lib/modules/K/updates, kmod's index by the
#             quick update (README: "kmod's index, quickly"), modules-load.d)
#   DKMS:     kmodfarm-host install --kernel K --no-load --enable-dkms
#             (signed lookup file and index, apt-get update, apt-get install
#             of gcc, make, dkms and linux-headers-K, the kmfdemo-dkms
#             package from 127.0.0.1, DKMS's build and install)
#
# Not included: making the repository and the root, the sandbox's start-up
# and the purge. The archive's .debs come from the harness's apt cache
# (bound at /var/cache/apt/archives; one untimed DKMS run fills it), so
# apt unpacks without downloading; apt-get update still asks the machine's
# mirror whether the lists changed (small "not modified" answers). Nothing
# is loaded into this machine's kernel (--no-load on both routes).
#
# Usage: scripts/bench-install.sh [REPETITIONS]   (default 3)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
reps=${1:-3}

cargo build -q -p kmodfarm -p kmodfarm-install
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
KMODFARM_BENCH_REPS=$reps cargo test -q -p kmodfarm-install --test debian_host -- \
    --ignored --exact bench_install_prebuilt_against_dkms --nocapture >"$log" 2>&1 || status=$?
grep '^bench-install:' "$log" || true
if [ "$status" -ne 0 ] || ! grep -q '^bench-install: median' "$log"; then
    cat "$log" >&2
    echo "bench-install: the benchmark run failed (its output is above)" >&2
    exit 1
fi
