#!/bin/sh
# Runs one bare-metal test image under QEMU, the reference machine for these tests:
#   run-qemu.sh <image> [extra qemu args...]
# The guest's serial port goes to stdout; the script prints "exit status: N" and exits with
# QEMU's status: (code << 1) | 1 from isa-debug-exit, so 1 = all checks passed, 3 = failures;
# 124 = timeout (TIMEOUT seconds, default 60). QEMU itself also exits with 1 on its own errors,
# so a status of 1 without a SUMMARY line is turned into 2.
# The image's command line gets "qemu-quirks" (after any text in APPEND=...), which turns
# checks on which QEMU 7.2 is known to deviate from the manuals into XFAIL lines (README.md).
set -u
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
	echo "usage: $0 <image> [qemu args...]  (image must exist)" >&2
	exit 2
fi
image=$1
shift
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${TIMEOUT:-60}
APPEND=${APPEND:-}
log=$(mktemp)

statusfile=$(mktemp)
trap 'rm -f "$log" "$statusfile"' EXIT
# The serial output goes to the terminal and to $log (for the SUMMARY check below).
{
	timeout --foreground "$TIMEOUT" "$QEMU" -accel tcg -cpu max -m 128 -display none \
		-serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 \
		-no-reboot -kernel "$image" -append "${APPEND:+$APPEND }qemu-quirks" "$@" </dev/null
	echo $? >"$statusfile"
} | tee "$log"
status=$(cat "$statusfile")
if [ "$status" -eq 124 ]; then
	echo "exit status: 124 (timeout after ${TIMEOUT}s)"
elif [ "$status" -eq 1 ] && ! grep -q '^SUMMARY:' "$log"; then
	echo "exit status: 1 without a SUMMARY line (a QEMU error?): reporting 2"
	status=2
else
	echo "exit status: $status"
fi
exit "$status"
