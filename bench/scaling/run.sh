#!/usr/bin/env bash
# Memory scaling: peak RSS of "regstore gc --dry-run", "regstore check
# --links-only", "regstore du --json" and "regstore inspect --json" on
# generated trees of growing size, and how much each grows per blob.
#
# For each size in SIZES it generates a tree with bench/gc/main.go (once:
# a tree generated with the same settings under WORK is reused), then runs
# every command REPEAT times, round robin (one run of each command, then
# the next round), under /usr/bin/time -v, and keeps the best (lowest) wall
# time, CPU time (user+sys) and peak RSS of each. It prints one table:
# per size and command, wall_s, cpu_s and maxRSS_MiB; then, per command,
# the growth of peak RSS per blob between consecutive sizes (bytes/blob),
# and whether it is within LIMIT bytes per blob.
#
# Settings (environment):
#   SIZES="250 1000 4000"  repositories per tree
#   MANIFESTS=20 TAGS=20 LAYERS=5 BLOBSIZE=256 SHARED=0.3 UNTAGGED=0.25
#   SEED=1                 the rest of the tree (see regstoretest.GenerateOptions)
#   REPEAT=2               rounds; the best of each figure is reported
#   WORKERS=4              --workers for gc and check
#   LIMIT=64               bytes per blob the growth must stay within
#   WARM=1                 read every link file of a tree before measuring
#                          on it (0: skip; on a loaded VM this alone can take
#                          many minutes for 4,000 repositories)
#   WORK=<dir>             where trees, binaries and outputs go (default: a
#                          new temporary directory, removed afterwards)
#
# Quick check: SIZES="20 80" REPEAT=1 bench/scaling/run.sh
# Exit status 1 if some command grows by more than LIMIT bytes per blob.
# Results: docs/performance.md.
set -euo pipefail

SIZES=${SIZES:-"250 1000 4000"}
MANIFESTS=${MANIFESTS:-20} TAGS=${TAGS:-20} LAYERS=${LAYERS:-5} BLOBSIZE=${BLOBSIZE:-256}
SHARED=${SHARED:-0.3} UNTAGGED=${UNTAGGED:-0.25} SEED=${SEED:-1}
REPEAT=${REPEAT:-2} WORKERS=${WORKERS:-4} LIMIT=${LIMIT:-64} WARM=${WARM:-1}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
if [ ! -x /usr/bin/time ]; then
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
if [ -n "${WORK:-}" ]; then
  keep=1
else
  WORK=$(mktemp -d /tmp/regstore-scaling.XXXXXX)
  keep=0
fi
mkdir -p "$WORK/bin" "$WORK/out"
trap '[ "$keep" = 1 ] || rm -rf "$WORK"' EXIT

echo "== building into $WORK/bin" >&2
(cd "$repo/cmd/regstore" && go build -o "$WORK/bin/regstore" .) && (cd "$repo" && go build -o "$WORK/bin/gen" ./bench/gc)

# The trees: WORK/r<N>/root, as bench/gc/run.sh lays them out (WORK=WORK/r<N>
# there reuses them).
declare -A blobs
for n in $SIZES; do
  w="$WORK/r$n"
  params="repos=$n manifests=$MANIFESTS tags=$TAGS layers=$LAYERS blobsize=$BLOBSIZE shared=$SHARED untagged=$UNTAGGED seed=$SEED"
  mkdir -p "$w"
  if [ -d "$w/root" ] && [ "$(cat "$w/params" 2>/dev/null)" = "$params" ] && [ -s "$w/gen.json" ]; then
    echo "== reusing $w/root ($params)" >&2
  else
    echo "== generating $params" >&2
    rm -rf "$w/root" "$w/params"
    "$WORK/bin/gen" -dir "$w/root" -repos "$n" -manifests "$MANIFESTS" -tags "$TAGS" -layers "$LAYERS" \
      -blobsize "$BLOBSIZE" -shared "$SHARED" -untagged "$UNTAGGED" -seed "$SEED" >"$w/gen.json"
    echo "$params" >"$w/params"
  fi
  blobs[$n]=$(awk -F': *' '/"Blobs"/ { gsub(/,/, "", $2); print $2; exit }' "$w/gen.json")
done

# measure NAME CMD... runs CMD (stdout discarded; exit status 0 or 1) and
# prints "wall cpu rss_kb".
measure() {
  local name=$1 tf rc=0
  shift
  tf=$(mktemp)
  /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>"$WORK/out/$name.err" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "scaling: failed ($rc): $*" >&2
    cat "$WORK/out/$name.err" >&2
    exit 2
  fi
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /User time \(seconds\)/ { user = $2 }
    /System time \(seconds\)/ { sys = $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.2f %.2f %d\n", wall, user + sys, rss }' "$tf"
  rm -f "$tf"
}

cmds=(gc check du inspect)
run() { # run CMD ROOT
  local rs="$WORK/bin/regstore"
  case $1 in
  gc) measure "gc-$n" "$rs" gc --dry-run --grace=-1s --workers="$WORKERS" --json "$2" ;;
  check) measure "check-$n" "$rs" check --links-only --workers="$WORKERS" "$2" ;;
  du) measure "du-$n" "$rs" du --json "$2" ;;
  inspect) measure "inspect-$n" "$rs" inspect --json "$2" ;;
  esac
}

results="$WORK/out/results"
: >"$results"
for n in $SIZES; do
  root="$WORK/r$n/root"
  if [ "$WARM" = 1 ]; then
    find "$root" -type f -name link -exec cat {} + >/dev/null # warm the page cache
  fi
  for round in $(seq "$REPEAT"); do
    for c in "${cmds[@]}"; do
      echo "== $n repositories, round $round: $c" >&2
      echo "$n $c $(run "$c" "$root")" >>"$results"
    done
  done
done

echo
echo "Memory scaling: peak RSS, $MANIFESTS manifests x $LAYERS layers per repository, blobsize $BLOBSIZE"
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); best of $REPEAT rounds (round robin); warm cache"
printf '%-6s %-8s %-8s %8s %8s %11s\n' repos blobs command wall_s cpu_s maxRSS_MiB
declare -A rss
for n in $SIZES; do
  for c in "${cmds[@]}"; do
    read -r w cpu r < <(awk -v n="$n" -v c="$c" '$1 == n && $2 == c {
      if (!s || $3 < w) w = $3; if (!s || $4 < u) u = $4; if (!s || $5 < r) r = $5; s = 1 } END { print w, u, r }' "$results")
    rss[$n,$c]=$r
    printf '%-6s %-8s %-8s %8s %8s %11.1f\n' "$n" "${blobs[$n]}" "$c" "$w" "$cpu" "$(awk -v r="$r" 'BEGIN { print r / 1024 }')"
  done
done
echo
echo "growth of peak RSS per blob (bytes/blob), between consecutive sizes; limit $LIMIT"
status=0
prev=
for n in $SIZES; do
  if [ -n "$prev" ]; then
    line=$(printf '%-14s' "$prev -> $n")
    for c in "${cmds[@]}"; do
      g=$(awk -v a="${rss[$prev,$c]}" -v b="${rss[$n,$c]}" -v x="${blobs[$prev]}" -v y="${blobs[$n]}" 'BEGIN { printf "%.0f", (b - a) * 1024 / (y - x) }')
      ok=ok
      if [ "$g" -gt "$LIMIT" ]; then ok=OVER; status=1; fi
      line+=$(printf '  %s %5s B %-4s' "$c" "$g" "$ok")
    done
    echo "$line"
  fi
  prev=$n
done
exit $status
