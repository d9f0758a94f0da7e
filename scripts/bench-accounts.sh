#!/usr/bin/env bash
# Benchmark of a run over many accounts (README "Many accounts"; not part of `cargo test`).
# Needs /usr/bin/time (GNU time) and curl; talks to 127.0.0.1 only.
#
#   scripts/bench-accounts.sh                       # 100 accounts x 1,000 closes
#   BENCH_ACCOUNTS=10 BENCH_CLOSES=500 scripts/bench-accounts.sh
#
# One `wts-playbook sandbox --accounts N` process enforces the API's windows x 0.05
# (200/250ms + 1000/15s) per account (per token), as scripts/bench.sh section 4 does for one.
# The runner gets the same windows as --rate-limit. First one account alone (its wall time is
# the floor every account of the fleet has), then the whole fleet in one process:
# wall / one account's wall (target <= 1.05: the accounts run side by side), 429s answered by
# the sandbox (target 0), peak RSS of the runner (target <= 200 MB), CPU time (user + sys).
set -euo pipefail

cd "$(dirname "$0")/.."
ACCOUNTS=${BENCH_ACCOUNTS:-100}
CLOSES=${BENCH_CLOSES:-1000}
WINDOWS=200/250ms,1000/15s

for tool in /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y time curl)" >&2; exit 2; }
done
cargo build --release --quiet --bin wts-playbook
BIN=$PWD/target/release/wts-playbook

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fleet-bench.XXXXXX")
SANDBOX_PID=""
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

: >"$TMP/sandbox.log"
"$BIN" sandbox --listen 127.0.0.1:0 --accounts "$ACCOUNTS" --rate-limit "$WINDOWS" >"$TMP/sandbox.log" 2>&1 &
SANDBOX_PID=$!
ADDR=""
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$TMP/sandbox.log")
    [ -n "$ADDR" ] && break
    sleep 0.1
done
[ -n "$ADDR" ] || { echo "bench: the sandbox did not start" >&2; exit 1; }
# Every account sends to the sandbox (the accounts file names no base_url).
export WTS_BASE_URL=$ADDR

# The accounts file: each account's token in a file, its own input file of CLOSES sessions.
echo "name,token_file,input.x" >"$TMP/accounts.csv"
for i in $(seq 1 "$ACCOUNTS"); do
    printf 'token-acct-%s\n' "$i" >"$TMP/acct-$i.token"
    {
        echo "session_id"
        for j in $(seq 1 "$CLOSES"); do printf '00000000-0000-4000-8000-%06d%06d\n' "$i" "$j"; done
    } >"$TMP/acct-$i.csv"
    echo "acct-$i,acct-$i.token,acct-$i.csv" >>"$TMP/accounts.csv"
done
head -n 2 "$TMP/accounts.csv" >"$TMP/one.csv"
cat >"$TMP/pb.yaml" <<EOF
version: 1
name: bench-fleet
inputs:
  x: { csv: acct-1.csv, key: session_id }
settings: { concurrency: 16 }
steps:
  - id: close
    action: session.complete
    for_each: inputs.x
    with:
      session_id: "{{ row.session_id }}"
EOF

summary() { curl -fsS "$ADDR/__sandbox/summary?account=$1"; }
rate_limited_all() {
    local n=0
    for i in $(seq 1 "$ACCOUNTS"); do
        n=$((n + $(summary "acct-$i" | grep -o '"rateLimited":[0-9]*' | cut -d: -f2)))
    done
    echo "$n"
}

# timed LABEL CMD...: sets WALL USER SYS RSS_KB.
timed() {
    local label=$1
    shift
    if ! /usr/bin/time -f '%e %U %S %M' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err"; then
        echo "bench: $label failed:" >&2
        cat "$TMP/err" "$TMP/out" >&2
        exit 1
    fi
    read -r WALL USER SYS RSS_KB <"$TMP/time"
}

cd "$TMP"
echo "== one account, $CLOSES closes (windows $WINDOWS)" >&2
timed one "$BIN" run pb.yaml --accounts one.csv --rate-limit "$WINDOWS" --yes -q --report one.json
ONE=$WALL
echo "  wall $ONE s, user $USER s, sys $SYS s, peak RSS $((RSS_KB / 1024)) MB" >&2
curl -fsS -X POST "$ADDR/__sandbox/reset" >/dev/null

echo "== $ACCOUNTS accounts x $CLOSES closes, dry run (loading, checking, planning; nothing sent)" >&2
timed dry "$BIN" run pb.yaml --accounts accounts.csv --dry-run -q --report dry.json
DRY=$WALL

echo "== $ACCOUNTS accounts x $CLOSES closes, one process" >&2
timed fleet "$BIN" run pb.yaml --accounts accounts.csv --rate-limit "$WINDOWS" --yes -q --report fleet.json
SUCCEEDED=$(tail -n 1 fleet.json | awk -F'"succeeded":' '{ split($2, n, /[^0-9]/); print n[1]; exit }')
echo
echo "wts-playbook fleet benchmark ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-44s %s\n' "one account, $CLOSES closes: wall" "$ONE s"
printf '%-44s %s\n' "$ACCOUNTS accounts x $CLOSES closes: wall" "$WALL s (x$(awk "BEGIN { printf \"%.2f\", $WALL / $ONE }") one account's)"
printf '%-44s %s\n' "the same, dry run (nothing sent): wall" "$DRY s"
printf '%-44s %s\n' "succeeded" "$SUCCEEDED of $((ACCOUNTS * CLOSES))"
printf '%-44s %s\n' "429s answered by the sandbox" "$(rate_limited_all)"
printf '%-44s %s\n' "peak RSS of the runner" "$((RSS_KB / 1024)) MB"
printf '%-44s %s\n' "CPU time of the runner (user + sys)" "$(awk "BEGIN { printf \"%.1f\", $USER + $SYS }") s"
# The sandbox serves every account on the same cores: its CPU (both runs) bounds the wall time.
TICKS=$(getconf CLK_TCK)
printf '%-44s %s\n' "CPU time of the sandbox (both runs)" "$(awk -v t="$TICKS" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$SANDBOX_PID/stat") s"
