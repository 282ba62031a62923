#!/usr/bin/env bash
# Every bug switch, measured the same way: how many of its targeted scenario's seeds find it, and the first
# swarm seed that finds it with no hint (and the wall time to get there). The table `sim list bugs` and
# `sim list scenarios` (each scenario's `targets`) define; a switch no scenario targets shows `-` there.
#
# Usage: scripts/switch-table.sh [SWITCH…]   (default: every switch)
# Env: TARGETED_SEEDS (default 0..100), SWARM_SEEDS (default 0..5000), SWARM_BUDGET_S (default 120).
# From the repository root; builds the release `sim`. Prints one markdown row per switch. Needs jq.
set -euo pipefail
cargo build --release -q -p sim
sim=target/release/sim
targeted_seeds=${TARGETED_SEEDS:-0..100}
swarm_seeds=${SWARM_SEEDS:-0..5000}
budget=${SWARM_BUDGET_S:-120}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
switches=("$@")
if [ ${#switches[@]} -eq 0 ]; then
  mapfile -t switches < <($sim list bugs)
fi
# switch → the scenario that targets it (the one with the fewest targets when several do), from
# `sim list scenarios` (a name line, then an indented `targets:` line).
declare -A target_of fewest
scenario=""
while IFS= read -r line; do
  if [[ "$line" =~ ^[a-z] ]]; then
    scenario="$line"
  elif [[ "$line" =~ ^\ +targets:\ (.*)$ ]]; then
    IFS=', ' read -r -a ts <<< "${BASH_REMATCH[1]}"
    for t in "${ts[@]}"; do
      [ -n "$t" ] || continue
      if [ -z "${target_of[$t]:-}" ] || [ "${#ts[@]}" -lt "${fewest[$t]}" ]; then
        target_of[$t]="$scenario"
        fewest[$t]=${#ts[@]}
      fi
    done
  fi
done < <($sim list scenarios)

echo "| switch | targeted scenario | targeted ($targeted_seeds) | checkers | swarm: first seed ($swarm_seeds), wall |"
echo "|---|---|---|---|---|"
for b in "${switches[@]}"; do
  s=${target_of[$b]:-}
  if [ -n "$s" ]; then
    $sim explore --scenario "$s" --bug "$b" --seeds "$targeted_seeds" --out "$tmp/targeted.jsonl" \
      --seed-dir "$tmp" >/dev/null 2>&1 || true
    found=$(jq -s '[.[] | select(.outcome != "pass")] | length' "$tmp/targeted.jsonl")
    total=$(jq -s 'length' "$tmp/targeted.jsonl")
    checkers=$(jq -rs '[.[] | select(.outcome != "pass") | .checker] | group_by(.) | map("\(.[0]) ×\(length)") | join(", ")' "$tmp/targeted.jsonl")
    targeted="$found/$total"
  else
    s="-"; targeted="-"; checkers="-"
  fi
  start=$(date +%s.%N)
  $sim explore --swarm --bug "$b" --seeds "$swarm_seeds" --stop-on-failure --time-budget "$budget" \
    --out "$tmp/swarm.jsonl" --seed-dir "$tmp" >/dev/null 2>&1 || true
  first=$(jq -rs '. as $all | ([$all[] | select(.outcome != "pass")][0]) as $f
    | if $f == null then "none in \($all | length) seeds" else "\($f.seed) (`\($f.checker)`)" end' "$tmp/swarm.jsonl")
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  printf '| `%s` | `%s` | %s | %s | %s, %.0f s |\n' "$b" "$s" "$targeted" "${checkers:-}" "$first" "$wall"
done
