#!/usr/bin/env bash
# Side-by-side garbage-collection benchmark: the real registry's
# "registry garbage-collect --dry-run" against "regstore gc --dry-run", on
# one generated tree, without and with --delete-untagged; and both against
# the I/O floor (bench/floor-gc: only the reads a collector cannot avoid),
# with "regstore check --links-only" against its own floor (bench/floor-walk:
# every directory listed once, every link read, every blob's data stat'ed).
#
# It generates a tree (bench/gc/main.go: regstoretest.Generate into memory,
# then copied out without fsync), writes a registry config for it, measures
# each command with /usr/bin/time -v (wall time, CPU time, peak RSS; best of
# REPEAT rounds, each round running every command once, in turn, so that a
# change in the machine's load falls on all of them; after one warm-up pass
# so that all read from the page cache), prints a table with the
# registry/regstore ratios and one with the regstore/floor ratios, and
# checks that both tools find the same number of blobs (and manifests)
# eligible for deletion. Exit status 1 if they disagree.
#
# Settings (environment):
#   REPOS=1000 MANIFESTS=20 TAGS=20 LAYERS=5 BLOBSIZE=256 SHARED=0.3
#   UNTAGGED=0.25 SEED=1   the tree (see regstoretest.GenerateOptions)
#   REPEAT=3               rounds; the best of each figure is reported
#   WORKERS=4              regstore gc --workers
#   WORK=<dir>             where the tree, binaries and outputs go (default:
#                          a new temporary directory); a tree generated with
#                          the same settings in WORK is reused
#   KEEP=1                 keep WORK afterwards (it is kept anyway when set)
#   REGISTRY=<path>        the distribution v3 registry binary
#   DROP_CACHES=1          drop the page cache before every run (needs root):
#                          cold-cache numbers instead of warm ones
#
# Quick check: REPOS=50 REPEAT=1 bench/gc/run.sh
# Results: the Performance section of the top-level README.md and
# docs/performance.md (floors and memory scaling).
# Caveat: on a VM with proactive page reclaim (kdamond), a long run can lose
# part of the page cache; compare the cpu_s column as well as wall_s.
set -euo pipefail

REPOS=${REPOS:-1000} MANIFESTS=${MANIFESTS:-20} TAGS=${TAGS:-20} LAYERS=${LAYERS:-5}
BLOBSIZE=${BLOBSIZE:-256} SHARED=${SHARED:-0.3} UNTAGGED=${UNTAGGED:-0.25} SEED=${SEED:-1}
REPEAT=${REPEAT:-3} WORKERS=${WORKERS:-4} DROP_CACHES=${DROP_CACHES:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"
REGISTRY=${REGISTRY:-$(command -v registry || true)}
if [ -z "$REGISTRY" ] || [ ! -x "$REGISTRY" ]; then
  echo "run.sh: the registry binary is missing: go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2" >&2
  exit 2
fi
if [ ! -x /usr/bin/time ]; then
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

if [ -n "${WORK:-}" ]; then
  KEEP=1
else
  WORK=$(mktemp -d /tmp/regstore-gcbench.XXXXXX)
fi
KEEP=${KEEP:-0}
mkdir -p "$WORK/bin" "$WORK/out"
cleanup() { if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

echo "== building into $WORK/bin"
(cd "$repo/cmd/regstore" && go build -o "$WORK/bin/regstore" .) && (cd "$repo" && go build -o "$WORK/bin/gen" ./bench/gc &&
  go build -o "$WORK/bin/floor-gc" ./bench/floor-gc && go build -o "$WORK/bin/floor-walk" ./bench/floor-walk)

params="repos=$REPOS manifests=$MANIFESTS tags=$TAGS layers=$LAYERS blobsize=$BLOBSIZE shared=$SHARED untagged=$UNTAGGED seed=$SEED"
root="$WORK/root"
if [ -d "$root" ] && [ "$(cat "$WORK/params" 2>/dev/null)" = "$params" ]; then
  echo "== reusing the tree in $root ($params)"
else
  echo "== generating $params"
  rm -rf "$root" "$WORK/params"
  "$WORK/bin/gen" -dir "$root" -repos "$REPOS" -manifests "$MANIFESTS" -tags "$TAGS" -layers "$LAYERS" \
    -blobsize "$BLOBSIZE" -shared "$SHARED" -untagged "$UNTAGGED" -seed "$SEED" >"$WORK/gen.json"
  echo "$params" >"$WORK/params"
fi
files=$(find "$root" -type f | wc -l)
dirs=$(find "$root" -type d | wc -l)
echo "   $files files, $dirs directories, $(du -sh "$root" | cut -f1) on disk"

config="$WORK/config.yml"
cat >"$config" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $root}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:0}
EOF
export OTEL_TRACES_EXPORTER=none

# measure OUT CMD... runs CMD with stdout to OUT and prints "wall cpu rss_kb"
# (seconds, seconds, KiB). Exit status 1 is accepted from "regstore check"
# (problems found: the generated tree has orphans).
measure() {
  local out=$1 tf rc=0
  shift
  tf=$(mktemp)
  if [ "$DROP_CACHES" = 1 ]; then sync && echo 3 >/proc/sys/vm/drop_caches; fi
  /usr/bin/time -v -o "$tf" "$@" >"$out" 2>"$out.err" || rc=$?
  if [ "$rc" != 0 ] && ! { [ "$rc" = 1 ] && [ "$2" = check ]; }; then
    echo "run.sh: failed: $*" >&2
    cat "$out.err" >&2
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

# The commands, by name: each writes its output to $WORK/out/<name>.
names=(registry-default regstore-default registry-delete-untagged regstore-delete-untagged floor-gc check-links floor-walk)
run() {
  local o="$WORK/out/$1"
  case $1 in
  registry-default) measure "$o" "$REGISTRY" garbage-collect --dry-run "$config" ;;
  registry-delete-untagged) measure "$o" "$REGISTRY" garbage-collect --dry-run --delete-untagged "$config" ;;
  regstore-default) measure "$o" "$WORK/bin/regstore" gc --dry-run --grace=-1s --workers="$WORKERS" --json "$root" ;;
  regstore-delete-untagged) measure "$o" "$WORK/bin/regstore" gc --dry-run --grace=-1s --workers="$WORKERS" --json --delete-untagged "$root" ;;
  floor-gc) measure "$o" "$WORK/bin/floor-gc" -workers 2 "$root" ;;
  check-links) measure "$o" "$WORK/bin/regstore" check --links-only --workers="$WORKERS" "$root" ;;
  floor-walk) measure "$o" "$WORK/bin/floor-walk" -workers 2 "$root" ;;
  esac
}

echo "== warm-up (page cache)"
find "$root" -type f -exec cat {} + >/dev/null
"$REGISTRY" garbage-collect --dry-run "$config" >/dev/null
"$WORK/bin/regstore" gc --dry-run --grace=-1s --json "$root" >/dev/null

# REPEAT rounds, each running every command once, in turn.
results="$WORK/out/results"
: >"$results"
for round in $(seq "$REPEAT"); do
  for name in "${names[@]}"; do
    echo "== round $round: $name"
    echo "$name $(run "$name")" >>"$results"
  done
done
# best NAME prints the best wall time, CPU time and peak RSS of NAME's runs.
best() {
  awk -v n="$1" '$1 == n { if (!s || $2 < w) w = $2; if (!s || $3 < c) c = $3; if (!s || $4 < r) r = $4; s = 1 } END { print w, c, r }' "$results"
}

declare -a rows
status=0
for mode in default --delete-untagged; do
  tag=${mode#--}
  read -r rw rc rr < <(best "registry-$tag")
  read -r sw sc sr < <(best "regstore-$tag")
  summary=$(grep -E '^[0-9]+ blobs marked, [0-9]+ blobs and [0-9]+ manifests eligible for deletion' "$WORK/out/registry-$tag" || true)
  if [ -z "$summary" ]; then
    echo "run.sh: no summary line in the registry's output" >&2
    exit 2
  fi
  read -r r_marked r_blobs r_manifests < <(echo "$summary" | awk '{ print $1, $4, $7 }')
  r_links=$(grep -c 'layer link eligible for deletion' "$WORK/out/registry-$tag" || true)
  read -r s_blobs s_manifests s_links s_marked < <("$WORK/bin/gen" -count "$WORK/out/regstore-$tag")

  agree=yes
  if [ "$r_blobs" != "$s_blobs" ] || [ "$r_manifests" != "$s_manifests" ]; then
    agree=NO
    status=1
  fi
  rows+=("$(printf '%-18s %-9s %8s %8s %11.1f %8s %9s %7s %8s' "$mode" registry "$rw" "$rc" "$(echo "$rr" | awk '{ print $1/1024 }')" "$r_blobs" "$r_manifests" "$r_links" "$r_marked")")
  rows+=("$(printf '%-18s %-9s %8s %8s %11.1f %8s %9s %7s %8s' "" regstore "$sw" "$sc" "$(echo "$sr" | awk '{ print $1/1024 }')" "$s_blobs" "$s_manifests" "$s_links" "$s_marked")")
  rows+=("$(awk -v rw="$rw" -v sw="$sw" -v rc="$rc" -v sc="$sc" -v rr="$rr" -v sr="$sr" -v agree="$agree" 'BEGIN {
    printf "%-18s registry/regstore: wall %.1fx, cpu %.1fx, RSS %.1fx; eligible blobs agree: %s", "", (sw > 0 ? rw / sw : 0), (sc > 0 ? rc / sc : 0), (sr > 0 ? rr / sr : 0), agree }')")
done

# The floors: each regstore command against the program doing only its
# unavoidable I/O.
declare -a frows
floorrow() { # floorrow LABEL NAME FLOOR
  local w c r fw fc fr
  read -r w c r < <(best "$2")
  read -r fw fc fr < <(best "$3")
  frows+=("$(awk -v l="$1" -v w="$w" -v c="$c" -v r="$r" -v fw="$fw" -v fc="$fc" -v fr="$fr" -v f="$3" 'BEGIN {
    printf "%-44s %8s %8s %11.1f   %s: wall %.2fx, cpu %.2fx, RSS %.1fx", l, w, c, r / 1024, f, (fw > 0 ? w / fw : 0), (fc > 0 ? c / fc : 0), (fr > 0 ? r / fr : 0) }')")
}
floorrow "regstore gc --dry-run" regstore-default floor-gc
floorrow "regstore gc --dry-run --delete-untagged" regstore-delete-untagged floor-gc
floorrow "registry garbage-collect --dry-run" registry-default floor-gc
floorrow "floor-gc (2 workers)" floor-gc floor-gc
floorrow "regstore check --links-only" check-links floor-walk
floorrow "floor-walk (2 workers)" floor-walk floor-walk

echo
echo "GC dry run, $params"
echo "tree: $files files, $dirs directories; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); best of $REPEAT; cache: $([ "$DROP_CACHES" = 1 ] && echo cold || echo warm)"
printf '%-18s %-9s %8s %8s %11s %8s %9s %7s %8s\n' mode tool wall_s cpu_s maxRSS_MiB blobs manifests links marked
for r in "${rows[@]}"; do echo "$r"; done
echo "(blobs, manifests, links: eligible for deletion; marked: manifests and blobs kept)"
echo
echo "Against the I/O floors (regstore --workers=$WORKERS; ratios are command/floor)"
printf '%-44s %8s %8s %11s   %s\n' command wall_s cpu_s maxRSS_MiB "vs floor"
for r in "${frows[@]}"; do echo "$r"; done
echo "floors: $(cat "$WORK/out/floor-gc")"
echo "        $(cat "$WORK/out/floor-walk")"
echo "outputs in $WORK/out$([ "$KEEP" = 1 ] || echo ' (removed on exit; set KEEP=1 to keep)')"
exit $status
