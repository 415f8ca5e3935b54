#!/bin/sh
# Rebuilds demo/hypervisor.flat, the L1 hypervisor `npm start` boots and the SVM benchmarks time,
# on test/baremetal's runtime: its Makefile supplies the flags, the runtime objects and the link
# map, demo/hypervisor.mk the hypervisor's own rules. The image is committed so `npm start` needs
# no C toolchain; rebuild it after changing hypervisor.c or workload.h (a test notices when the
# committed image no longer matches them). Needs gcc, binutils and make.
#
# usage: demo/build-hypervisor.sh [OUTDIR]    (default demo/; objects go to OUTDIR/.build)
set -eu
demo=$(cd "$(dirname "$0")" && pwd)
out=${1:-$demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
make -s -C "$demo/../test/baremetal" -f Makefile -f "$demo/hypervisor.mk" BUILD="$out/.build" OUT="$out" "$out/hypervisor.flat"
echo "built $out/hypervisor.flat ($(wc -c < "$out/hypervisor.flat") bytes)"
