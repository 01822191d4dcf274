#!/usr/bin/env bash
# Side-by-side import benchmark, in one run, on one machine:
#
#   skopeo   skopeo copy oci:LAYOUT:imgN docker://127.0.0.1:PORT/bench/app:imgN
#            for every image, into a running registry v3 (empty filesystem storage)
#   regstore Repository.ImportOCILayout of the same layout into an empty tree
#            (bench/import/main.go):
#              copy         data copied, every digest verified while written
#              link+verify  hard links; each linked file read once and verified
#              link+trust   hard links; sizes checked only (TrustDigests)
#
# The layout (default 5 images x 24 layers x 2 MiB of random data, 240 MiB in
# 130 blobs, gzip-stored so that nothing is compressed on the way) is
# generated once in $WORK, which holds every tree too, so that hard links work
# (one filesystem). Every run starts from an empty tree (a fresh registry
# rootdirectory and port for skopeo), with the layout in the page cache and
# dirty pages flushed; each contender runs $REPEAT times and the median is
# reported, wall-clock time of the whole process (skopeo's, or the Go
# program's). Afterwards the registry is asked for every tag: the regstore
# trees must hold the very digests skopeo pushed.
#
# Usage: bench/import/run.sh
#   WORK=dir IMAGES=5 LAYERS=24 LAYER_MIB=2 REPEAT=3 WORKERS=0 KEEP=0
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
for bin in registry skopeo curl bc; do
  command -v "$bin" >/dev/null || { echo "run.sh: $bin not found (see /work/shared/PEERS.md)" >&2; exit 1; }
done

WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/regstore-bench-import.XXXXXX")}
IMAGES=${IMAGES:-5}
LAYERS=${LAYERS:-24}
LAYER_MIB=${LAYER_MIB:-2}
REPEAT=${REPEAT:-3}
WORKERS=${WORKERS:-0} # 0: the library's default (4 for copies, 16 for hard links)
KEEP=${KEEP:-0}
mkdir -p "$WORK"
echo "== work directory $WORK ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"

go build -o "$WORK/import" ./bench/import
BENCH="$WORK/import"
if [ ! -f "$WORK/layout/index.json" ]; then
  echo "== generating the layout: $IMAGES images x $LAYERS layers x $LAYER_MIB MiB"
  "$BENCH" -gen "$WORK/layout" -images "$IMAGES" -layers "$LAYERS" -layersize $((LAYER_MIB << 20)) >/dev/null
fi
LAYOUT_BYTES=$(du -sb "$WORK/layout" | cut -f1)
BLOBS=$(find "$WORK/layout/blobs" -type f | wc -l)
TAGS=$(seq -f 'img%g' 0 $((IMAGES - 1)))
echo "   layout: $BLOBS blobs, $((LAYOUT_BYTES >> 20)) MiB"
echo "   disk: $("$BENCH" -probe "$WORK")"

REG_PID=
stop_registry() { if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=; fi; }
cleanup() {
  stop_registry
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK"/registry-* "$WORK"/tree-*; fi
}
trap cleanup EXIT

# start_registry ROOT: a registry v3 on ROOT at a fresh port; sets PORT.
start_registry() {
  PORT=$("$BENCH" -freeport)
  mkdir -p "$1"
  cat >"$1.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $1}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$PORT}
EOF
  OTEL_TRACES_EXPORTER=none registry serve "$1.yml" >>"$WORK/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry did not start" >&2
  exit 1
}

prepare() { cat "$WORK"/layout/blobs/sha256/* >/dev/null; sync; sleep 1; }
now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

SKOPEO_TIMES=()
for i in $(seq "$REPEAT"); do
  start_registry "$WORK/registry-$i"
  prepare
  t0=$(now)
  for tag in $TAGS; do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$WORK/layout:$tag" "docker://127.0.0.1:$PORT/bench/app:$tag"
  done
  t1=$(now)
  SKOPEO_TIMES+=("$(echo "$t1 - $t0" | bc -l)")
  printf 'skopeo copy → registry v3, run %d: %.3f s\n' "$i" "${SKOPEO_TIMES[-1]}"
  [ "$i" = "$REPEAT" ] || stop_registry
done
SKOPEO=$(printf '%s\n' "${SKOPEO_TIMES[@]}" | median)

declare -A WALL INNER
for mode in copy linkverify linktrust; do
  case $mode in
    copy) flags=() ;;
    linkverify) flags=(-hardlink) ;;
    linktrust) flags=(-hardlink -trust) ;;
  esac
  walls=() inners=()
  for i in $(seq "$REPEAT"); do
    prepare
    t0=$(now)
    "$BENCH" -layout "$WORK/layout" -root "$WORK/tree-$mode-$i" -workers "$WORKERS" "${flags[@]}" >"$WORK/result-$mode-$i.json"
    t1=$(now)
    walls+=("$(echo "$t1 - $t0" | bc -l)")
    inners+=("$(grep -o '"seconds":[0-9.e-]*' "$WORK/result-$mode-$i.json" | cut -d: -f2)")
    printf 'regstore %-10s run %d: %.3f s (import call %.3f s)\n' "$mode" "$i" "${walls[-1]}" "${inners[-1]}"
    # The registry (still running, on skopeo's last tree) holds these digests.
    for tag in $TAGS; do
      want=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://127.0.0.1:$PORT/v2/bench/app/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
      got=$(grep -o "\"$tag\":\"sha256:[0-9a-f]*\"" "$WORK/result-$mode-$i.json" | cut -d'"' -f4)
      [ -n "$want" ] && [ "$want" = "$got" ] || { echo "digest mismatch for $tag ($mode): registry $want, regstore $got" >&2; exit 1; }
    done
  done
  WALL[$mode]=$(printf '%s\n' "${walls[@]}" | median)
  INNER[$mode]=$(printf '%s\n' "${inners[@]}" | median)
done
linked=$(grep -o '"BlobsLinked":[0-9]*' "$WORK/result-linktrust-1.json" | cut -d: -f2)
echo "== every regstore tree holds the digests skopeo pushed; hard links: $linked of $BLOBS blobs (manifests are written)"

echo
printf 'import of %d MiB in %d blobs (%d images), median of %d runs; load %s\n' $((LAYOUT_BYTES >> 20)) "$BLOBS" "$IMAGES" "$REPEAT" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-36s %9s %9s   %s\n' "" "seconds" "speed-up" "(import call alone)"
printf '%-36s %9.3f %8s\n' "skopeo copy → registry v3" "$SKOPEO" "1×"
for row in "copy:regstore import, copy" "linkverify:regstore import, hard links, verified" "linktrust:regstore import, hard links, trusted"; do
  mode=${row%%:*} label=${row#*:}
  printf '%-36s %9.3f %8.1f×   (%.3f s, %.1f×)\n' "$label" "${WALL[$mode]}" "$(echo "$SKOPEO / ${WALL[$mode]}" | bc -l)" \
    "${INNER[$mode]}" "$(echo "$SKOPEO / ${INNER[$mode]}" | bc -l)"
done
