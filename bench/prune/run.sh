#!/usr/bin/env bash
# Side-by-side retention-planning benchmark, in one run on one tree: the
# route API-based tools take against a registry v3 serving the tree on
# loopback (catalog, tags/list, HEAD per tag, GET per manifest and config;
# bench/prune/main.go "api"), against regstore's prune plan on the same
# tree ("plan", in-process retain.Decide; and the regstore prune --dry-run
# command as a whole, with and without planning the garbage collection
# after the prune; and gc.Mark alone for scale). Policy: keep-last KEEP per
# repository, no grace window.
#
# The tree is bench/gc's (regstoretest.Generate: 1000 repositories x 20
# tags by default). Settings (environment):
#   REPOS=1000 MANIFESTS=20 TAGS=20 LAYERS=5 BLOBSIZE=256 SHARED=0.3
#   UNTAGGED=0.25 SEED=1   the tree (see bench/gc/run.sh)
#   KEEP=5                 keep-last
#   CONC="1 8"             concurrency levels of the API client
#   REPEAT=3               runs per measurement; the best is reported
#   WORK=<dir>             where the tree and binaries go (a tree generated
#                          with the same settings there is reused)
#   REGISTRY=<path>        the distribution v3 registry binary
#
# Quick check: REPOS=50 REPEAT=1 bench/prune/run.sh
set -euo pipefail

REPOS=${REPOS:-1000} MANIFESTS=${MANIFESTS:-20} TAGS=${TAGS:-20} LAYERS=${LAYERS:-5}
BLOBSIZE=${BLOBSIZE:-256} SHARED=${SHARED:-0.3} UNTAGGED=${UNTAGGED:-0.25} SEED=${SEED:-1}
KEEP=${KEEP:-5} CONC=${CONC:-"1 8"} REPEAT=${REPEAT:-3}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"
REGISTRY=${REGISTRY:-$(command -v registry || true)}
if [ -z "$REGISTRY" ] || [ ! -x "$REGISTRY" ]; then
  echo "run.sh: the registry binary is missing: go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2" >&2
  exit 2
fi
if [ -n "${WORK:-}" ]; then KEEPWORK=1; else WORK=$(mktemp -d /tmp/regstore-prunebench.XXXXXX); KEEPWORK=0; fi
mkdir -p "$WORK/bin" "$WORK/out"
regpid=""
cleanup() {
  if [ -n "$regpid" ]; then kill "$regpid" 2>/dev/null || true; wait "$regpid" 2>/dev/null || true; fi
  if [ "$KEEPWORK" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== building into $WORK/bin"
(cd "$repo" && go build -o "$WORK/bin/regstore" ./cmd/regstore && go build -o "$WORK/bin/gen" ./bench/gc &&
  go build -o "$WORK/bin/prune" ./bench/prune)

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
echo "   $(find "$root" -type f | wc -l) files"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/config.yml" <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $root}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}, readonly: {enabled: true}}
http: {addr: 127.0.0.1:$port}
EOC
OTEL_TRACES_EXPORTER=none "$REGISTRY" serve "$WORK/config.yml" >"$WORK/out/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; then break; fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || { echo "run.sh: the registry did not start" >&2; cat "$WORK/out/registry.log" >&2; exit 2; }
echo "== registry v3 (pid $regpid) on 127.0.0.1:$port"

echo "== warm-up (page cache)"
find "$root" -type f -exec cat {} + >/dev/null
"$WORK/bin/prune" plan -root "$root" -keep-last "$KEEP" >/dev/null

# best NAME CMD... runs CMD REPEAT times; prints the fastest run's JSON.
best() {
  local name=$1 i
  shift
  for i in $(seq "$REPEAT"); do
    "$@" >>"$WORK/out/$name.jsonl"
  done
  python3 - "$WORK/out/$name.jsonl" <<'EOP'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(json.dumps(min(runs, key=lambda r: r["seconds"])))
EOP
}
# cli [FLAGS] prints the regstore prune --dry-run command's wall time as JSON.
cli() {
  local s e
  s=$(date +%s.%N)
  "$WORK/bin/regstore" prune --dry-run --json --keep-last "$KEEP" --grace=-1s "$@" "$root" >"$WORK/out/cli.json"
  e=$(date +%s.%N)
  python3 - "$WORK/out/cli.json" "$s" "$e" "$*" <<'EOP'
import json, sys
p = json.load(open(sys.argv[1]))
tags = p["tags"]
print(json.dumps({"mode": ("regstore prune --dry-run " + sys.argv[4]).strip(), "repositories": len({t["repository"] for t in tags}),
  "tags": len(tags), "remove": sum(t["action"] == "remove" for t in tags), "bytes": p["bytes"] or 0,
  "seconds": float(sys.argv[3]) - float(sys.argv[2])}))
EOP
}

rm -f "$WORK/out/"*.jsonl
declare -a rows
rows+=("$(best plan-nobytes "$WORK/bin/prune" plan -root "$root" -keep-last "$KEEP" -nobytes)")
rows+=("$(best plan "$WORK/bin/prune" plan -root "$root" -keep-last "$KEEP")")
rows+=("$(best cli-nobytes cli --no-bytes)")
rows+=("$(best cli cli)")
rows+=("$(best mark "$WORK/bin/prune" mark -root "$root")")
for c in $CONC; do
  echo "== API route, $c at once"
  rows+=("$(best "api-c$c" "$WORK/bin/prune" api -url "http://127.0.0.1:$port" -c "$c" -keep-last "$KEEP")")
done

echo
echo "Retention plan, keep-last $KEEP, $params"
echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); best of $REPEAT; warm page cache"
printf '%s\n' "${rows[@]}" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
ref = {r["mode"]: r["seconds"] for r in rows}
print("%-34s %6s %7s %7s %9s %12s %9s   %s" % ("route", "repos", "tags", "remove", "requests", "gc bytes", "wall_s", "API route (c1, c8) / this"))
apis = [r for r in rows if r["mode"].startswith("api")]
for r in rows:
    ratios = ", ".join("%.0fx" % (a["seconds"] / r["seconds"]) for a in apis) if not r["mode"].startswith("api") else ""
    print("%-34s %6d %7d %7d %9s %12s %9.3f   %s" % (r["mode"], r["repositories"], r["tags"], r["remove"],
        r.get("requests", "") or "", r.get("bytes", "") or "", r["seconds"], ratios))
'
