#!/usr/bin/env bash
# Release benchmarks of wts-playbook; the figures and how to read them are in BENCHMARKS.md.
# Not part of `cargo test`. Needs /usr/bin/time (GNU time) and curl; talks to 127.0.0.1 only.
#
#   scripts/bench.sh                  # everything (about a minute plus the release build)
#   BENCH_ROWS="1000000" scripts/bench.sh
#
# 1. dry run of a one-step playbook (session.complete over a CSV, key session_id) at each of
#    BENCH_ROWS rows: wall, rows/s, CPU, peak RSS; and `validate` (which checks, then plans every
#    row as the dry run does, writing nothing);
# 2. real runs against `wts-playbook sandbox --latency-ms 20`, no rate limit, N=BENCH_N at
#    concurrency 16 and 64: wall vs the ideal N x 20 ms / C, vs a bare HTTP client doing the same
#    (examples/runner_bench.rs), CPU per request and peak RSS of the runner; plus N=BENCH_FAST_N
#    with no latency (raw throughput);
# 3. a run with --rate-limit 100/s, N=BENCH_RATE_N, against a sandbox enforcing 100/1s: wall vs
#    N / R and the 429s the sandbox answered.
# 4. the API's windows x 0.05 (200/250ms + 1000/15s) enforced by the sandbox and set as
#    --rate-limit, 2,000 closes: wall vs the floor for 2,000 requests (16.0 s) and the 429s.
#
# 5. dry run of the templated playbook (key column, a `when`, two templated parameters, one
#    from `vars`) at each of BENCH_ROWS rows: rows/s and peak RSS.
#
# BENCH_SECTIONS="4" scripts/bench.sh runs only the sections listed. BENCH_BIN=PATH measures
# another build of the binary (an older commit's, to compare).
set -euo pipefail

cd "$(dirname "$0")/.."
ROWS=${BENCH_ROWS:-"1000000 2000000"}
N=${BENCH_N:-5000}
FAST_N=${BENCH_FAST_N:-20000}
RATE_N=${BENCH_RATE_N:-1000}
LATENCY_MS=20
SECTIONS=${BENCH_SECTIONS:-"1 2 3 4 5"}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }

for tool in /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y time curl)" >&2; exit 2; }
done

cargo build --release --quiet --bin wts-playbook --example gen_csv --example runner_bench
BIN=${BENCH_BIN:-$PWD/target/release/wts-playbook}
GEN=$PWD/target/release/examples/gen_csv
RAW=$PWD/target/release/examples/runner_bench

TMP=$(mktemp -d /tmp/wts-bench.XXXXXX)
SANDBOX_PIDS=()
cleanup() {
    for pid in "${SANDBOX_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

ROWS_OUT=()
row() { ROWS_OUT+=("$(printf '%-46s %s' "$1" "$2")"); echo "  $1: $2" >&2; }

# timed LABEL CMD...: runs CMD under GNU time; sets WALL USER SYS RSS_KB (stdout kept in $TMP/out).
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

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

playbook() { # playbook FILE CSV
    cat >"$1" <<EOF
version: 1
name: bench-close
inputs:
  x:
    csv: $2
    key: session_id
steps:
  - id: close
    action: session.complete
    for_each: inputs.x
    with:
      session_id: "{{ row.session_id }}"
EOF
}

templated() { # templated FILE CSV
    cat >"$1" <<EOF
version: 1
name: bench-tell
inputs:
  x:
    csv: $2
    key: session_id
vars:
  greeting: "Hello, your ticket"
steps:
  - id: tell
    action: session.send_text
    for_each: inputs.x
    when: row.status != "COMPLETED"
    with:
      session_id: "{{ row.session_id }}"
      text: "{{ vars.greeting }} {{ row.ticket }} is closed."
EOF
}

# sandbox ARGS...: starts a sandbox process on a free loopback port; sets ADDR.
sandbox() {
    local log=$TMP/sandbox.${#SANDBOX_PIDS[@]}.log
    "$BIN" sandbox --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    SANDBOX_PIDS+=("$!")
    ADDR=""
    for _ in $(seq 1 100); do
        ADDR=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$log")
        [ -n "$ADDR" ] && return 0
        sleep 0.1
    done
    echo "bench: the sandbox did not start" >&2
    exit 1
}

reset() { curl -fsS -X POST "$ADDR/__sandbox/reset" >/dev/null; }
rate_limited() { curl -fsS "$ADDR/__sandbox/summary" | grep -o '"rateLimited":[0-9]*' | cut -d: -f2; }

run_playbook() { # run_playbook LABEL PLAYBOOK ARGS...
    local label=$1 pb=$2
    shift 2
    WTS_BASE_URL=$ADDR WTS_API_TOKEN=bench timed "$label" \
        "$BIN" run "$pb" --yes -q --report "$TMP/report.json" "$@"
}

if want 1; then
echo "== 1. dry run" >&2
for n in $ROWS; do
    "$GEN" "$TMP/rows-$n.csv" "$n"
    playbook "$TMP/dry-$n.yaml" "$TMP/rows-$n.csv"
    timed "validate $n" "$BIN" validate "$TMP/dry-$n.yaml"
    validate_wall=$WALL validate_rss=$RSS_KB
    timed "dry run $n" "$BIN" run "$TMP/dry-$n.yaml" --dry-run -q --report "$TMP/report.json"
    row "dry run $n rows: wall (validation + run)" "$WALL s ($(calc '%.0f' "$n / $WALL") rows/s)"
    row "validate $n rows (checks + plans every row)" "$validate_wall s ($(calc '%.0f' "$n / $validate_wall") rows/s, peak $((validate_rss / 1024)) MB)"
    row "dry run $n rows: CPU user+sys" "$(calc '%.2f' "$USER + $SYS") s ($(calc '%.0f' "$n / ($USER + $SYS)") rows per CPU-second)"
    row "dry run $n rows: peak RSS" "$((RSS_KB / 1024)) MB"
    rm -f "$TMP/rows-$n.csv" "$TMP/report.json"
done

fi
if want 2; then
echo "== 2. sandbox, ${LATENCY_MS} ms latency, no rate limit" >&2
"$GEN" "$TMP/n.csv" "$N"
playbook "$TMP/n.yaml" "$TMP/n.csv"
sandbox --latency-ms "$LATENCY_MS"
for c in 16 64; do
    ideal=$(calc '%.3f' "$N * $LATENCY_MS / 1000 / $c")
    reset
    "$RAW" "$ADDR" "$N" "$c" "$LATENCY_MS" >"$TMP/raw"
    raw_wall=$(sed -n 's/.* wall \([0-9.]*\) s.*/\1/p' "$TMP/raw")
    reset
    run_playbook "run C=$c" "$TMP/n.yaml" --rate-limit off --concurrency "$c"
    row "run N=$N C=$c: wall (ideal $ideal s)" "$WALL s ($(calc '%+.1f' "($WALL / $ideal - 1) * 100") %)"
    row "run N=$N C=$c: bare HTTP client, same load" "$raw_wall s ($(calc '%+.1f' "($raw_wall / $ideal - 1) * 100") %)"
    row "run N=$N C=$c: runner CPU per request" "$(calc '%.0f' "($USER + $SYS) / $N * 1000000") us"
    row "run N=$N C=$c: runner peak RSS" "$((RSS_KB / 1024)) MB"
done

"$GEN" "$TMP/fast.csv" "$FAST_N"
playbook "$TMP/fast.yaml" "$TMP/fast.csv"
sandbox
reset
run_playbook "run fast" "$TMP/fast.yaml" --rate-limit off --concurrency 64
row "run N=$FAST_N C=64, no latency: throughput" "$(calc '%.0f' "$FAST_N / $WALL") req/s (wall $WALL s)"
row "run N=$FAST_N C=64, no latency: CPU/request" "$(calc '%.0f' "($USER + $SYS) / $FAST_N * 1000000") us"

fi
if want 3; then
echo "== 3. rate limit 100/s against a sandbox enforcing 100/1s" >&2
"$GEN" "$TMP/rate.csv" "$RATE_N"
playbook "$TMP/rate.yaml" "$TMP/rate.csv"
sandbox --latency-ms "$LATENCY_MS" --rate-limit 100/1s
for c in 16 64; do
    reset
    run_playbook "rate C=$c" "$TMP/rate.yaml" --rate-limit 100/s --concurrency "$c"
    ideal=$(calc '%.1f' "$RATE_N / 100")
    row "rate 100/s N=$RATE_N C=$c: wall (N/R $ideal s)" "$WALL s ($(calc '%+.1f' "($WALL / $ideal - 1) * 100") %), 429s seen by the sandbox: $(rate_limited)"
done

fi

if want 4; then
echo "== 4. the API's windows x 0.05 (200/250ms + 1000/15s), 2,000 closes" >&2
"$GEN" "$TMP/win.csv" 2000
playbook "$TMP/win.yaml" "$TMP/win.csv"
sandbox --rate-limit 200/250ms,1000/15s
run_playbook "windows" "$TMP/win.yaml" --rate-limit 200/250ms,1000/15s --concurrency 16
row "windows 200/250ms+1000/15s N=2000: wall (floor 16.0 s)" "$WALL s (x$(calc '%.3f' "$WALL / 16.0")), 429s seen by the sandbox: $(rate_limited)"
fi

if want 5; then
echo "== 5. dry run, templated: key column, when, two templated parameters (one from vars)" >&2
for n in $ROWS; do
    "$GEN" "$TMP/rows-$n.csv" "$n"
    templated "$TMP/tell-$n.yaml" "$TMP/rows-$n.csv"
    timed "templated dry run $n" "$BIN" run "$TMP/tell-$n.yaml" --dry-run -q --report "$TMP/report.json"
    row "templated dry run $n rows: wall" "$WALL s ($(calc '%.0f' "$n / $WALL") rows/s)"
    row "templated dry run $n rows: peak RSS" "$((RSS_KB / 1024)) MB"
    rm -f "$TMP/rows-$n.csv" "$TMP/report.json"
done
fi

echo
echo "wts-playbook benchmarks ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s\n' "${ROWS_OUT[@]}"
