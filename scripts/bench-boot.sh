#!/bin/sh
# Benchmark (not a test) of kmodfarm's QEMU work, on this machine, same run:
#  1. System.map extraction per kernel: the kernel's image booted under QEMU
#     for /proc/kallsyms (its cached map is removed first, so it is made
#     again; the time is the boot's, as kmodfarm records it in the map's
#     symbols.json);
#  2. the boot test per kernel (records.json: boot_test.duration_ms);
#  3. the matrix wall time of `kmodfarm build --jobs 2` on the same kernels
#     with and without --boot-test (a fresh source stamp each, so both
#     compile everything).
# Kernels: the newest 6.1 and 6.12+deb12 in the host's apt lists, or the
# DISTRO:RELEASE words in $KERNELS. Needs root, bwrap, qemu-system-x86.
# Usage: scripts/bench-boot.sh [KMODFARM_BINARY]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/release/kmodfarm}
[ -x "$bin" ] || { echo "build it first: cargo build --release -p kmodfarm" >&2; exit 1; }
bin=$(realpath "$bin")

newest() { apt-cache pkgnames linux-headers- | sed -n "s/^linux-headers-\($1\)$/\1/p" | sort -V | tail -n 1; }
kernels=${KERNELS:-"debian-12:$(newest '6\.1\.0-[0-9]*-amd64') debian-12:$(newest '6\.12\.[0-9]*+deb12-amd64')"}
echo "kernels: $kernels"
cache=${KMODFARM_CACHE:-$HOME/.cache/kmodfarm}
work=$(mktemp -d /tmp/kmodfarm-bench-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
kernel_args=
for k in $kernels; do kernel_args="$kernel_args --kernel $k"; done

# A copy of the example whose source nobody built before; $1: extra manifest edit.
fresh_module() {
    rm -rf "$work/module"
    cp -a module "$work/module"
    echo "/* bench $(now) */" >>"$work/module/src/kmfdemo.c"
    if [ "${1:-}" = system-map ]; then
        sed -i 's/^pre_build = "configure"$/pre_build = "configure"\nneeds = ["system-map"]/' "$work/module/kmodfarm.toml"
    fi
}

# 1. Map extraction: remove the cached maps, build with needs = system-map.
for k in $kernels; do rm -rf "$cache/symbols/${k#*:}-"*; done
fresh_module system-map
# shellcheck disable=SC2086 # one word per argument
"$bin" -m "$work/module/kmodfarm.toml" build --runtime bwrap --jobs 2 $kernel_args \
    --out "$work/out-map" >/dev/null 2>&1
echo "System.map from a QEMU boot (kmodfarm's own record of the boot):"
for k in $kernels; do
    sed -n 's/.*"origin": "\(.*\)",/  \1/p' "$cache/symbols/${k#*:}-"*/symbols.json
done

# 2 and 3. The matrix without, then with, --boot-test.
fresh_module
t0=$(now)
# shellcheck disable=SC2086
"$bin" -m "$work/module/kmodfarm.toml" build --runtime bwrap --jobs 2 $kernel_args \
    --out "$work/out-plain" >/dev/null 2>&1
t1=$(now)
fresh_module
# shellcheck disable=SC2086
"$bin" -m "$work/module/kmodfarm.toml" build --runtime bwrap --jobs 2 $kernel_args \
    --boot-test --out "$work/out-boot" >/dev/null 2>&1
t2=$(now)
echo "boot test per kernel:"
python3 -c 'import json,sys
for r in json.load(open(sys.argv[1])):
    b = r.get("boot_test") or {}
    print("  %s: %.1f s (%s, %s)" % (r["kernel_release"], b.get("duration_ms", 0) / 1000, b.get("accel"), "passed" if b.get("passed") else "FAILED " + b.get("reason", "")))' \
    "$work/out-boot/records.json"
echo "matrix wall time, build --jobs 2: $(secs "$t0" "$t1") s; with --boot-test: $(secs "$t1" "$t2") s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
