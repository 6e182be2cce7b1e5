#!/usr/bin/env bash
# Run a command as if this x86-64 Linux CPU lacked AVX-512 and/or VNNI (see cpumask.c), e.g.
#   bash scripts/cpu-mask/run.sh avx2 node node_modules/uvu/bin.js dist/test/engine quantize.test.js
# Modes: avx2 (no AVX-512, no VNNI), avx512 (AVX-512 without VNNI), none (shim only).
# Builds cpumask.so with the system C compiler into dist/cpu-mask/ on first use.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="${1:-}"
case "$mode" in avx2|avx512|none) shift ;; *) echo "usage: run.sh avx2|avx512|none COMMAND..." >&2; exit 2 ;; esac
[ $# -gt 0 ] || { echo "usage: run.sh avx2|avx512|none COMMAND..." >&2; exit 2; }
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "cpu-mask: x86-64 Linux only" >&2; exit 2; }
grep -qw cpuid_fault /proc/cpuinfo || { echo "cpu-mask: no CPUID faulting on this machine (no cpuid_fault in /proc/cpuinfo)" >&2; exit 2; }
out="$here/../../dist/cpu-mask"
lib="$out/cpumask.so"
if [ ! -f "$lib" ] || [ "$here/cpumask.c" -nt "$lib" ]; then
  mkdir -p "$out"
  ${CC:-cc} -O2 -Wall -shared -fPIC -o "$lib" "$here/cpumask.c" -ldl
fi
CPUMASK="$mode" LD_PRELOAD="$(cd "$out" && pwd)/cpumask.so${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
