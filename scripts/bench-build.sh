#!/bin/sh
# Benchmark (not a test) of `kmodfarm build`, on this machine, same run:
#  1. `kmodfarm build --jobs 2` for N Debian 12 kernels against a
#     sequential loop of `dkms build` over the same kernels (parallel
#     efficiency = dkms time / (2 x kmodfarm time));
#  2. one kernel in kmodfarm's bwrap container against a plain `make`
#     (configure + kbuild, chroot into a root with the same compiler and
#     headers, no namespaces) — the container overhead.
# Kernels are the newest two 6.1 and two 6.12 ones in the host's apt lists.
# Needs root, mmdebstrap, bwrap, a Debian 12 host (its apt sources are used).
# Usage: scripts/bench-build.sh [KMODFARM_BINARY]
set -eu
cd "$(dirname "$0")/.."
bin=${1:-target/release/kmodfarm}
[ -x "$bin" ] || { echo "build it first: cargo build --release -p kmodfarm" >&2; exit 1; }
bin=$(realpath "$bin")

newest() { apt-cache pkgnames linux-headers- | sed -n "s/^linux-headers-\($1\)$/\1/p" | sort -V | tail -n "$2"; }
kernels="$(newest '6\.1\.0-[0-9]*-amd64' 2) $(newest '6\.12\.[0-9]*+deb12-amd64' 2)"
# shellcheck disable=SC2086 # one word per kernel
set -- $kernels
[ $# -eq 4 ] || { echo "need 4 kernels in the host's apt lists, found: $kernels" >&2; exit 1; }
one=$1
echo "kernels: $kernels"

cache=${KMODFARM_CACHE:-$HOME/.cache/kmodfarm}
work=$(mktemp -d /tmp/kmodfarm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

# A root with dkms and the four kernels' headers installed, for the dkms loop
# and the plain make (made once, cached by kernel list).
id=$(echo "$kernels" | sha256sum | cut -c1-12)
dkms_root=$cache/bench/dkms-root-$id
if [ ! -d "$dkms_root" ]; then
    mkdir -p "$cache/bench"
    pkgs=dkms,gcc-12,make,kmod,libelf-dev,dwarves
    for k in $kernels; do pkgs=$pkgs,linux-headers-$k; done
    mmdebstrap --variant=apt --mode=root --quiet --include="$pkgs" bookworm \
        "$dkms_root.partial" /etc/apt/sources.list.d/debian.sources
    mv "$dkms_root.partial" "$dkms_root"
fi

# A source copy nobody built before (fresh cache key), with a dkms.conf.
fresh_module() {
    rm -rf "$work/module"; cp -a module "$work/module"
    echo "/* bench $(now) */" >> "$work/module/src/kmfdemo.c"
    cat > "$work/module/src/dkms.conf" <<'CONF'
PACKAGE_NAME="kmfdemo"
PACKAGE_VERSION="1.0.0"
BUILT_MODULE_NAME[0]="kmfdemo"
DEST_MODULE_LOCATION[0]="/updates/dkms"
PRE_BUILD="configure"
CONF
}

in_dkms_root() {
    bwrap --bind "$dkms_root" / --dev /dev --proc /proc --perms 1777 --tmpfs /tmp \
        --unshare-net --ro-bind "$work/module/src" /mnt/src -- sh -ec "$1"
}

echo "== 1. kmodfarm build --jobs 2 vs a sequential dkms build loop"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
args=""; for k in $kernels; do args="$args --kernel debian-12:$k"; done
kmodfarm_build() { # OUT JOBS: a full build of a fresh source copy
    fresh_module
    # shellcheck disable=SC2086 # one word per argument
    "$bin" --manifest "$work/module/kmodfarm.toml" build --runtime bwrap --jobs "$2" $args --out "$work/$1" >/dev/null
}
# Warm-up, not timed: fetches the header layers (dkms has its headers
# installed already) and fills the page cache.
kmodfarm_build out-warm 2
t1=$(now)
kmodfarm_build out-par 2
t2=$(now)
kmodfarm_secs=$(secs "$t1" "$t2")
# How many builds ran at once on average: the jobs' own durations over the
# wall time (2.0 = both workers busy all along, whatever else the machine ran).
busy_ms=$(grep -o '"duration_ms": [0-9]*' "$work/out-par/records.json" | awk '{s += $2} END {print s}')
concurrency=$(echo "scale=2; $busy_ms / 1000 / $kmodfarm_secs" | bc)

# The same build with one worker: what the second worker buys under the
# machine's present load.
t1s=$(now)
kmodfarm_build out-seq 1
t2s=$(now)
kmodfarm_seq_secs=$(secs "$t1s" "$t2s")

in_dkms_root "rm -rf /usr/src/kmfdemo-1.0.0 && cp -a /mnt/src /usr/src/kmfdemo-1.0.0 && dkms add kmfdemo/1.0.0 >/dev/null"
t3=$(now)
for k in $kernels; do
    in_dkms_root "dkms build kmfdemo/1.0.0 -k $k >/dev/null"
done
t4=$(now)
in_dkms_root "dkms remove kmfdemo/1.0.0 --all >/dev/null; rm -rf /usr/src/kmfdemo-1.0.0"
dkms_secs=$(secs "$t3" "$t4")
eff=$(echo "scale=1; 100 * $dkms_secs / (2 * $kmodfarm_secs)" | bc)
echo "kmodfarm build --jobs 2 (4 kernels): ${kmodfarm_secs}s"
echo "kmodfarm build --jobs 1 (4 kernels): ${kmodfarm_seq_secs}s (speedup of --jobs 2: $(echo "scale=2; $kmodfarm_seq_secs / $kmodfarm_secs" | bc)x)"
echo "dkms build loop        (4 kernels): ${dkms_secs}s"
echo "parallel efficiency on 2 cores: ${eff}%"
echo "builds running at once (average): $concurrency"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"

echo "== 2. one kernel: kmodfarm in bwrap vs plain make (best of 3 each)"
plain_make() { # DIR: configure + kbuild in the dkms root, no namespaces
    chroot "$dkms_root" sh -ec "rm -rf /tmp/$1 && mkdir -p /tmp/$1"
    cp -a "$work/module/src/." "$dkms_root/tmp/$1/"
    chroot "$dkms_root" sh -ec "cd /tmp/$1 && ./configure $one >/dev/null && make -C /lib/modules/$one/build M=/tmp/$1 modules >/dev/null 2>&1"
}
best() { printf '%s\n' "$@" | sort -n | head -n 1; }
container_runs=""; plain_runs=""
for i in 1 2 3; do
    fresh_module
    t5=$(now)
    "$bin" --manifest "$work/module/kmodfarm.toml" build --runtime bwrap --jobs 1 --kernel "debian-12:$one" --out "$work/out-one-$i" >/dev/null 2>&1
    t6=$(now)
    plain_make b
    t7=$(now)
    container_runs="$container_runs $(secs "$t5" "$t6")"; plain_runs="$plain_runs $(secs "$t6" "$t7")"
done
# shellcheck disable=SC2086 # one word per run
container=$(best $container_runs)
# shellcheck disable=SC2086
plain=$(best $plain_runs)
echo "kmodfarm, bwrap, one kernel: ${container}s (runs:$container_runs; compile, verify, compress, kmod check)"
echo "plain make (chroot):         ${plain}s (runs:$plain_runs)"
echo "overhead: $(echo "scale=1; 100 * ($container - $plain) / $plain" | bc)%"

echo "== 3. the machine itself: two plain makes at once vs one after the other"
t9=$(now); plain_make s1; plain_make s2; t10=$(now)
t11=$(now); plain_make p1 & plain_make p2 & wait; t12=$(now)
serial=$(secs "$t9" "$t10"); parallel=$(secs "$t11" "$t12")
echo "two makes in a row: ${serial}s, at once: ${parallel}s, speedup $(echo "scale=2; $serial / $parallel" | bc)x"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$dkms_root/tmp/b" "$dkms_root/tmp/s1" "$dkms_root/tmp/s2" "$dkms_root/tmp/p1" "$dkms_root/tmp/p2"
