#!/bin/sh
# Rebuilds demo/demo.elf, the guest `npm start` runs. The binary is committed so `npm start` works
# without a C toolchain; rebuild it after changing demo.c. musl keeps it small and fully static.
set -eu
cd "$(dirname "$0")"
musl-gcc -static -O2 -o demo.elf demo.c
echo "built $(pwd)/demo.elf ($(wc -c < demo.elf) bytes)"
