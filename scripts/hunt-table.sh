#!/usr/bin/env bash
# The hunt against blind sampling, switch by switch: for each hunt seed, `sim hunt --swarm --bug B` guided
# and `--blind` (every run a fresh swarm world: swarm's own sampling, judged by the same code), each with
# the same wall-clock budget, alternating so that both see the same machine. Prints one markdown row per
# switch: how many hunts found it, the median wall time and the median runs to the finding (a hunt that
# found nothing counts as slower than any that did; the median is `>budget` when half or more found
# nothing), for the guided hunt and for the blind one.
#
# Usage: scripts/hunt-table.sh [SWITCH…]   (default: every switch)
# Env: HUNT_SEEDS (default 0..5), HUNT_BUDGET_S (default 60), JOBS (default: the machine's cores),
#      SIM (default: target/release/sim, built first), OUT (a directory to keep the JSON summaries in).
# From the repository root. Needs jq.
set -euo pipefail
if [ -z "${SIM:-}" ]; then
  cargo build --release -q -p sim
  SIM=target/release/sim
fi
seeds=${HUNT_SEEDS:-0..5}
budget=${HUNT_BUDGET_S:-60}
jobs=${JOBS:-$(nproc)}
from=${seeds%..*}
to=${seeds#*..}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${OUT:-$tmp/summaries}
mkdir -p "$out"
switches=("$@")
if [ ${#switches[@]} -eq 0 ]; then
  mapfile -t switches < <($SIM list bugs | awk '{print $1}')
fi

# The median of the numbers on stdin where "-" (not found) sorts last; "-" if half or more are "-".
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    m = v[int((NR + 1) / 2)]
    print m
  }'
}

echo "| switch | hunt: found | hunt: median s (runs) | blind: found | blind: median s (runs) |"
echo "|---|---|---|---|---|"
for b in "${switches[@]}"; do
  for s in $(seq "$from" $((to - 1))); do
    for mode in guided blind; do
      flag=""
      [ "$mode" = blind ] && flag="--blind"
      $SIM hunt --swarm --bug "$b" --seed "$s" --time-budget "$budget" --jobs "$jobs" $flag --json \
        --seed-dir "$tmp/found" 2>/dev/null | tail -1 > "$out/$b-$mode-$s.json" || true
    done
  done
  row="| \`$b\` |"
  for mode in guided blind; do
    n=$((to - from))
    found=$(cat "$out/$b-$mode-"*.json | jq -s '[.[] | select(.summary.findings > 0)] | length')
    # Not found: after every found one (the budget, plus one so that it sorts last).
    secs=$(cat "$out/$b-$mode-"*.json | jq -r --argjson b "$budget" \
      '.summary | if .findings > 0 then .wall_s else ($b + 1) end' | median)
    runs=$(cat "$out/$b-$mode-"*.json | jq -r '.summary | if .findings > 0 then .first_finding_run + 1 else 1e18 end' | median)
    if awk -v s="$secs" -v b="$budget" 'BEGIN { exit !(s > b) }'; then
      med=">$budget"
    else
      med=$(printf '%.1f (%s)' "$secs" "$runs")
    fi
    row="$row $found/$n | $med |"
  done
  echo "$row"
done
