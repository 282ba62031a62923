#!/usr/bin/env bash
# Measures issue 8's figures for each bug switch that has a targeted scenario: targeted fraction (seeds 0..100,
# switch on), no false alarm (0..1000, switch off), needs the fault (0..1000, switch on, the scenario's faults
# off), with the checkers that fired. Swarm seeds-to-first-find: scripts/pr589.sh swarm.
# Usage: scripts/pr589.sh [targeted|swarm] [SWITCH...]   (from the repository root, after cargo build --release -p sim)
set -euo pipefail
sim=${SIM:-./target/release/sim}
out=${OUT:-/tmp/pr589}
mkdir -p "$out"
mode=${1:-targeted}; shift || true

# A switch's targeted scenario: the one whose `targets:` names it with the fewest targets (as `cargo xtask
# bench` chooses); empty if none does.
scenario_of() {
  $sim list scenarios | awk -v bug="$1" '
    /^[^ ]/ { name = $1 }
    /^ *targets: / { sub(/^ *targets: /, ""); n = split($0, t, ", ");
                     for (k = 1; k <= n; k++) if (t[k] == bug && (best == "" || n < fewest)) { best = name; fewest = n } }
    END { print best }'
}

# The faults a scenario injects, all off: its plan, its random faults and every message fault.
faults_off=(--set 'fault_plan=[]' --set fault_every_ms=0 --set message_loss_percent=0
            --set message_duplicate_percent=0 --set message_reorder_percent=0)

summary() { # FILE: "failed/total [checker×n ...]"
  local total failed checkers
  total=$(grep -c '"seed"' "$1" || true)
  failed=$(grep -c '"outcome":"\(violation\|panic\)"' "$1" || true)
  checkers=$(jq -r 'select(.outcome != "pass") | .checker' "$1" | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
  echo "$failed/$total ${checkers}"
}

switches=("$@")
[ ${#switches[@]} -gt 0 ] || mapfile -t switches < <($sim list bugs)

for bug in "${switches[@]}"; do
  if [ "$mode" = swarm ]; then
    start=$(date +%s.%N)
    $sim explore --swarm --bug "$bug" --seeds 0..10000 --stop-on-failure --seed-dir "$out/found" \
      --out "$out/$bug-swarm.jsonl" >"$out/$bug-swarm.log" 2>&1 || true
    end=$(date +%s.%N)
    first=$(jq -r 'select(.outcome != "pass") | .seed' "$out/$bug-swarm.jsonl" | head -1)
    run=$(grep -c '"seed"' "$out/$bug-swarm.jsonl" || true)
    checker=$(jq -r 'select(.outcome != "pass") | .checker' "$out/$bug-swarm.jsonl" | head -1)
    printf '%s\tswarm first=%s seeds_run=%s checker=%s wall=%.1fs\n' "$bug" "${first:-none}" "$run" "$checker" \
      "$(echo "$end - $start" | bc)"
    continue
  fi
  s=$(scenario_of "$bug")
  [ -n "$s" ] || continue
  $sim explore --scenario "$s" --bug "$bug" --seeds 0..100 --seed-dir "$out/found" \
    --out "$out/$bug-targeted.jsonl" >/dev/null 2>&1 || true
  $sim explore --scenario "$s" --seeds 0..1000 --seed-dir "$out/found" \
    --out "$out/$bug-off.jsonl" >/dev/null 2>&1 || true
  $sim explore --scenario "$s" --bug "$bug" "${faults_off[@]}" --seeds 0..1000 --seed-dir "$out/found" \
    --out "$out/$bug-nofault.jsonl" >/dev/null 2>&1 || true
  printf '%s\t%s\ttargeted %s\tswitch-off %s\tfaults-off %s\n' "$bug" "$s" \
    "$(summary "$out/$bug-targeted.jsonl")" "$(summary "$out/$bug-off.jsonl")" "$(summary "$out/$bug-nofault.jsonl")"
done
