#!/usr/bin/env bash
# v1 conversion benchmark, in one run, on one machine: dockerv1.Convert of a
# generated docker-registry (v1) tree (default 32 images x 8 MiB plain-tar
# layers in one chain, tagged by 4 repositories) into an empty registry
# tree, against "gzip -1" of the same layer files (the bound: conversion
# reads, hashes and gzip-compresses every layer byte once). Throughput is
# MB/s (10^6 bytes) of v1 layer data read; median of $REPEAT runs, with the
# layers in the page cache.
#
#   gzip -1, serial     gzip -1 -c LAYER >/dev/null, one layer after another
#   gzip -1, parallel   the same on $(nproc) processes (xargs -P)
#   regstore, 1 worker  Convert with Workers: 1 (writes and fsyncs the blobs)
#   regstore            Convert with the default workers (GOMAXPROCS)
#
# Usage: bench/v1/run.sh     (WORK=dir IMAGES=32 LAYER_MIB=8 REPEAT=3)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/regstore-bench-v1.XXXXXX")}
IMAGES=${IMAGES:-32}
LAYER_MIB=${LAYER_MIB:-8}
REPEAT=${REPEAT:-3}
mkdir -p "$WORK"
trap 'rm -rf "$WORK"/tree-*' EXIT
echo "== work directory $WORK ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
go build -o "$WORK/v1" ./bench/v1
if [ ! -d "$WORK/v1tree/images" ]; then
  "$WORK/v1" -gen "$WORK/v1tree" -images "$IMAGES" -layersize $((LAYER_MIB << 20))
fi
BYTES=$(cat "$WORK"/v1tree/images/*/layer | wc -c)
echo "   $IMAGES layers, $BYTES bytes; gzip -1 ratio $(echo "scale=2; $BYTES / $(gzip -1 -c "$WORK"/v1tree/images/*/layer | wc -c)" | bc)"

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
warm() { cat "$WORK"/v1tree/images/*/layer >/dev/null; sync; }

run() { # label command...
  local label=$1; shift
  local times=()
  for i in $(seq "$REPEAT"); do
    rm -rf "$WORK"/tree-*; warm
    local t0; t0=$(now)
    "$@" >/dev/null
    times+=("$(echo "$(now) - $t0" | bc -l)")
  done
  local m; m=$(printf '%s\n' "${times[@]}" | median)
  printf '%-22s %8.3f s %8.1f MB/s\n' "$label" "$m" "$(echo "$BYTES / 1000000 / $m" | bc -l)"
}

serial_gzip() { for f in "$WORK"/v1tree/images/*/layer; do gzip -1 -c "$f" >/dev/null; done; }
parallel_gzip() { ls "$WORK"/v1tree/images/*/layer | xargs -P "$(nproc)" -n 1 sh -c 'gzip -1 -c "$0" >/dev/null'; }

run "gzip -1, serial" serial_gzip
run "gzip -1, parallel" parallel_gzip
run "regstore, 1 worker" "$WORK/v1" -v1 "$WORK/v1tree" -root "$WORK/tree-1" -workers 1
run "regstore" "$WORK/v1" -v1 "$WORK/v1tree" -root "$WORK/tree-n"
