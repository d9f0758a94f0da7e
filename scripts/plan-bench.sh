#!/usr/bin/env bash
# Plan and apply, measured (issue 13). Not a test: prints figures for the closing note.
#
# 1. `plan` of a list-driven playbook over N listed sessions (default 5,000), against a sandbox
#    enforcing the API's windows x 0.05 (200/250ms + 1000/15s, as scripts/bench.sh section 4),
#    with the same --rate-limit: reads spent and wall time.
# 2. `apply` of that plan (refresh reads + N transfers) against a plain `run` of the same
#    writes (the reverse move: its own listing + N transfers), same limits: the overhead.
# 3. The same comparison without any rate limit (concurrency 64), where the runner's own cost
#    shows. BENCH_SECTIONS="2" runs only that one ("1": only the rate-limited one).
#
# The N sessions are put in a fresh department first, through the API, by five runs in
# parallel with five tokens (the sandbox limits per token).
set -euo pipefail

cd "$(dirname "$0")/.."
N=${BENCH_N:-5000}
LIMIT="200/250ms,1000/15s"
FROM=66666666-6666-4666-8666-000000000001
TO=66666666-6666-4666-8666-000000000002

for tool in /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "plan-bench: $tool is missing (apt-get install -y time curl)" >&2; exit 2; }
done
# BIN=PATH uses a binary already built (default: build the release binary).
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --locked --bin wts-playbook
    BIN=$PWD/target/release/wts-playbook
fi

TMP=$(mktemp -d /tmp/wts-plan-bench.XXXXXX)
SANDBOX_PIDS=()
cleanup() {
    for pid in "${SANDBOX_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# sandbox ARGS...: a sandbox process on a free loopback port; sets ADDR.
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
    echo "plan-bench: the sandbox did not start" >&2
    exit 1
}

# timed CMD...: sets WALL (seconds).
timed() {
    if ! /usr/bin/time -f '%e' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err"; then
        echo "plan-bench: failed: $*" >&2
        cat "$TMP/err" "$TMP/out" >&2
        exit 1
    fi
    WALL=$(cat "$TMP/time")
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
requests() { curl -fsS "$ADDR/__sandbox/summary" | grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2; }
limited() { curl -fsS "$ADDR/__sandbox/summary" | grep -o '"rateLimited":[0-9]*' | head -1 | cut -d: -f2; }

# move_playbook FILE FROM TO: list every session being served in FROM, move each to TO.
move_playbook() {
    cat >"$1" <<EOF
version: 1
name: bench-move
steps:
  - id: listed
    action: session.list
    paginate: all
    with: { status: [IN_PROGRESS], department_id: $2, page_size: 100 }
  - id: move
    action: session.transfer
    for_each: steps.listed.output.items
    with: { session_id: "{{ item.id }}", new_department_id: $3 }
EOF
}

# seed: N sessions in FROM (a transfer names a session for the first time: it is created,
# IN_PROGRESS), five runs in parallel with five tokens.
seed() {
    local pids=()
    for part in 0 1 2 3 4; do
        {
            echo session_id
            for ((i = part; i < N; i += 5)); do printf '77777777-7777-4777-8777-%012d\n' "$i"; done
        } >"$TMP/seed-$part.csv"
        cat >"$TMP/seed-$part.yaml" <<EOF
version: 1
name: bench-seed-$part
inputs: { s: { csv: seed-$part.csv, key: session_id } }
steps:
  - id: into
    action: session.transfer
    for_each: inputs.s
    with: { session_id: "{{ row.session_id }}", new_department_id: $FROM }
EOF
        WTS_BASE_URL=$ADDR WTS_API_TOKEN=seed-$part "$BIN" run "$TMP/seed-$part.yaml" --yes -q \
            --rate-limit "$1" --concurrency 32 --report "$TMP/seed-$part.json" >/dev/null &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
}

# compare LABEL RATE CONCURRENCY SANDBOX_ARGS...: plan, apply, then the plain run of the same writes.
compare() {
    local label=$1 rate=$2 conc=$3
    shift 3
    sandbox "$@"
    echo "== $label: seeding $N sessions" >&2
    seed "$rate"
    move_playbook "$TMP/there.yaml" "$FROM" "$TO"
    move_playbook "$TMP/back.yaml" "$TO" "$FROM"
    local before after
    before=$(requests)
    WTS_BASE_URL=$ADDR WTS_API_TOKEN=bench-plan timed "$BIN" plan "$TMP/there.yaml" -q \
        --rate-limit "$rate" --concurrency "$conc" --out "$TMP/there.plan.jsonl"
    after=$(requests)
    local plan_wall=$WALL plan_reads=$((after - before))
    local writes
    writes=$(tail -n 1 "$TMP/there.plan.jsonl" | grep -o '"writes":[0-9]*' | cut -d: -f2)
    echo "  $label: plan over $N listed sessions: $plan_reads read request(s) (the sandbox's count), $writes writes planned, wall $plan_wall s" >&2

    before=$(requests) before_429=$(limited)
    WTS_BASE_URL=$ADDR WTS_API_TOKEN=bench-plan timed "$BIN" apply "$TMP/there.plan.jsonl" -q \
        --report "$TMP/apply-$conc.json"
    after=$(requests)
    local apply_wall=$WALL apply_requests=$((after - before)) apply_429=$(($(limited) - before_429))

    before=$(requests) before_429=$(limited)
    WTS_BASE_URL=$ADDR WTS_API_TOKEN=bench-run timed "$BIN" run "$TMP/back.yaml" -q --yes \
        --rate-limit "$rate" --concurrency "$conc" --report "$TMP/run-$conc.json"
    after=$(requests)
    local run_wall=$WALL run_requests=$((after - before)) run_429=$(($(limited) - before_429))
    echo "  $label: apply: $apply_requests requests (refresh reads + writes; $apply_429 answered 429), wall $apply_wall s" >&2
    echo "  $label: run of the same writes: $run_requests requests (its listing + writes; $run_429 answered 429), wall $run_wall s" >&2
    echo "  $label: apply over run: $(calc '%+.1f' "($apply_wall / $run_wall - 1) * 100") %" >&2
}

SECTIONS=${BENCH_SECTIONS:-"1 2"}
[[ " $SECTIONS " == *" 1 "* ]] && compare "windows x 0.05" "$LIMIT" 16 --rate-limit "$LIMIT"
[[ " $SECTIONS " == *" 2 "* ]] && compare "no rate limit" off 64
true
