# kmodfarm's build of one kernel, in the build root, the way DKMS builds a
# module (its prepare_build and actual_build): read dkms.conf with bash and
# DKMS's variables set, copy the source to
# $dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build, apply the PATCHes the
# kernel matches, run PRE_BUILD from there, run the MAKE command the kernel
# matches (prefixed as DKMS does: make -jN KERNELRELEASE=<kernel>), check that
# each module was made, run POST_BUILD. Then kmodfarm's own steps: sign, and
# what modinfo says. Values come in through the environment (nothing from the
# manifest is pasted into this text):
#   SRC OUT KVER KDIR DKMS_ARCH CONF [CONF_DIR] [JOBS] [SIGN_HASH KEYS]
# CONF is dkms.conf's path in the source tree; CONF_DIR, when set, holds files
# laid over the source tree as a -dkms package lays them in
# /usr/src/<name>-<version> (the dkms.conf and kmodfarm-prebuild kmodfarm
# renders from the manifest). Exit 77 with $OUT/excluded: the dkms.conf's
# BUILD_EXCLUSIVE_* excludes this kernel (DKMS 3 exits 77 too).
set -e
kernelver=$KVER
arch=$DKMS_ARCH
kernel_source_dir=$KDIR
kernel_config=$kernel_source_dir/.config
dkms_tree=$OUT/dkms
source_tree=$OUT/usr-src
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT/products" "$dkms_tree" "$source_tree"

kmodfarm_directives="PACKAGE_NAME PACKAGE_VERSION MAKE MAKE_MATCH PATCH PATCH_MATCH
 PRE_BUILD POST_BUILD BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_LOCATION
 STRIP BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH"

# DKMS's read_conf: the directives cleared, the file sourced (its output
# dropped) in a subshell, the values brought back.
kmodfarm_read_conf() {
    local dump
    dump=$(
        unset $kmodfarm_directives
        cd "${2:-$(dirname "$1")}"
        . "$1" >/dev/null
        for d in $kmodfarm_directives; do
            declare -p "$d" 2>/dev/null || true
        done
    ) || { echo "kmodfarm: bash could not read $1" >&2; exit 8; }
    unset $kmodfarm_directives
    # declare -p's lines, made global (they run inside this function).
    eval "${dump//declare /declare -g }"
}

# First read: the name and version the dkms tree is laid out by.
conf_file=$SRC/$CONF
[[ -z $CONF_DIR || ! -f $CONF_DIR/$CONF ]] || conf_file=$CONF_DIR/$CONF
[ -f "$conf_file" ] || { echo "kmodfarm: the source tree has no $CONF" >&2; exit 8; }
kmodfarm_read_conf "$conf_file"
[ -n "$PACKAGE_NAME" ] && [ -n "$PACKAGE_VERSION" ] || {
    echo "kmodfarm: $CONF sets no PACKAGE_NAME or PACKAGE_VERSION" >&2
    exit 8
}
module=$PACKAGE_NAME
module_version=$PACKAGE_VERSION
# /usr/src/<module>-<version> as the package installs it, and the dkms
# tree's source link to it, as `dkms add` makes it.
src_copy=$source_tree/$module-$module_version
mkdir -p "$src_copy" "$dkms_tree/$module/$module_version"
cp -a "$SRC/." "$src_copy/"
[ -z "$CONF_DIR" ] || cp -a "$CONF_DIR/." "$src_copy/"
ln -sfn "$src_copy" "$dkms_tree/$module/$module_version/source"
build_dir=$dkms_tree/$module/$module_version/build
rm -rf "$build_dir"
mkdir -p "$build_dir"
cp -a "$src_copy/." "$build_dir/"
# Second read, as prepare_build does, with $module and $module_version
# known; from the build directory, so a command written with kbuild's
# usual M=$PWD names the directory make runs in.
kmodfarm_read_conf "$dkms_tree/$module/$module_version/source/$CONF" "$build_dir"

if [[ $BUILD_EXCLUSIVE_KERNEL && ! $kernelver =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
    echo "BUILD_EXCLUSIVE_KERNEL \"$BUILD_EXCLUSIVE_KERNEL\" excludes $kernelver" > "$OUT/excluded"
fi
if [[ $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]]; then
    echo "BUILD_EXCLUSIVE_ARCH \"$BUILD_EXCLUSIVE_ARCH\" excludes $arch" > "$OUT/excluded"
fi
if [ -f "$OUT/excluded" ]; then
    echo "kmodfarm: $(cat "$OUT/excluded")"
    exit 77
fi

# The make command: MAKE[0] unless MAKE_MATCH[0] is set, then the last
# MAKE[i] whose MAKE_MATCH[i] matches the kernel; DKMS's default without one.
make_command=
[[ ${MAKE_MATCH[0]} ]] || make_command=${MAKE[0]}
for ((i = 0; i < ${#MAKE[@]}; i++)); do
    if [[ ${MAKE[$i]} && ${MAKE_MATCH[$i]} && $kernelver =~ ${MAKE_MATCH[$i]} ]]; then
        make_command=${MAKE[$i]}
    fi
done
[[ $make_command ]] || make_command="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build"
# The patches the kernel matches, in order.
patches=()
for ((i = 0; i < ${#PATCH[@]}; i++)); do
    if [[ ${PATCH[$i]} && (! ${PATCH_MATCH[$i]} || $kernelver =~ ${PATCH_MATCH[$i]}) ]]; then
        patches+=("${PATCH[$i]}")
    fi
done

cd "$build_dir"
for p in "${patches[@]}"; do
    [ -e "$build_dir/patches/$p" ] || {
        echo "kmodfarm: patch $p named in dkms.conf is not in $build_dir/patches/" >&2
        exit 5
    }
    echo "kmodfarm: applying patch $p"
    patch -p1 < "./patches/$p" || { echo "kmodfarm: patch $p does not apply" >&2; exit 6; }
done

# PRE_BUILD and POST_BUILD as DKMS runs them: the value (already expanded
# when dkms.conf was read) split into words, its first a path in the build
# directory, run from there; not executable: a warning, nothing run.
kmodfarm_run_script() {
    [ -n "$2" ] || return 0
    local run="$build_dir/$2"
    if [[ -x ${run%% *} ]]; then
        echo "kmodfarm: $1: $2"
        (cd "$build_dir" && exec $run) || { echo "kmodfarm: the $1 script failed ($?)" >&2; exit 9; }
    else
        echo "kmodfarm: warning: the $1 script ${run%% *} is not executable; DKMS skips it too"
    fi
}
# The kernel's compiler for PRE_BUILD, as DKMS exports it (the first word
# of CONFIG_CC_VERSION_TEXT, when that command exists).
if [ -e "$kernel_source_dir/.config" ]; then
    cc=$(sed -n 's|^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*"|\1|p' "$kernel_source_dir/.config")
    if [ -n "$cc" ] && command -v "$cc" >/dev/null; then
        export CC="$cc"
    fi
fi
kmodfarm_run_script PRE_BUILD "$PRE_BUILD"

# make's CC as DKMS sets it: Debian's .kernelvariables says, else none.
if [ -f "$kernel_source_dir/.kernelvariables" ]; then
    CC=$(printf 'show-%%:\n\t@echo $($*)\ninclude %s\n' "$kernel_source_dir/.kernelvariables" | make -f - show-CC) || CC=
    export CC
else
    unset CC
fi

the_make_command=${make_command/#make/make -j$JOBS KERNELRELEASE=$kernelver}
echo "kmodfarm: build (in $build_dir): $the_make_command"
eval "{ $the_make_command; }" 2>&1 || { echo "kmodfarm: the build failed ($?)" >&2; exit 10; }

# Each BUILT_MODULE_NAME[i], from BUILT_MODULE_LOCATION[i] in the build directory.
for ((i = 0; i < ${#BUILT_MODULE_NAME[@]}; i++)); do
    name=${BUILT_MODULE_NAME[$i]}
    loc=${BUILT_MODULE_LOCATION[$i]}
    [[ -z $loc || $loc == */ ]] || loc="$loc/"
    ko="$build_dir/$loc$name.ko"
    [ -f "$ko" ] || { echo "kmodfarm: the build left no $loc$name.ko" >&2; exit 7; }
    if [ -n "$SIGN_HASH" ]; then
        echo "kmodfarm: signing $ko"
        "$KDIR/scripts/sign-file" "$SIGN_HASH" "$KEYS/key.pem" "$KEYS/cert" "$ko"
    fi
    cp "$ko" "$OUT/products/$name.ko"
    for field in vermagic name version signer; do
        modinfo -F "$field" "$ko" > "$OUT/products/$name.$field"
    done
done
kmodfarm_run_script POST_BUILD "$POST_BUILD"
