#!/usr/bin/env bash
# Re-finds the seed files in seeds/ that no longer find what they expect. A change to the engine or to
# raft-core can move a finding to another seed or crash point (a fault that now falls one call later, a
# new fault class drawn from the same stream): the file still replays its own world, which now passes.
# For each drifted file this re-runs the command its note names — an exploration to its first failure,
# a sweep to its first failing image of the expected checker, a hunt to its first finding — writes the new
# file in its place (its name carries the new seed or crash point), and re-shrinks its `-shrunk` partner from it. A drifted
# `-shrunk` file whose partner still finds its bug is re-shrunk alone.
#
# A finding a wide swarm made (one seed in tens of thousands) is rarely re-found by its note's command.
# With SAME_WORLD_SEEDS=A..B, each file is re-found instead by exploring the seeds A..B of the world the
# file stores — every knob set (`--set`) as it was, only the seed (so the random faults) changing.
#
# Usage: scripts/refind-seeds.sh [FILE...]   (default: every file `sim replay --check` fails)
# From the repository root; builds the release `sim` (or uses the binary `SIM` names, so that building
# something else meanwhile cannot change it). Prints what it replaced; `git status seeds/` shows it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SIM:-}" ]; then
  cargo build --release -q -p sim
  SIM=target/release/sim
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

drifted() {
  for f in seeds/*.json; do
    "$SIM" replay --check "$f" >/dev/null 2>&1 || echo "$f"
  done
}

# The command in a note: the text between the first pair of backticks, without its leading `sim`.
command_of() { jq -r .note "$1" | sed -n 's/^[^`]*`sim \([^`]*\)`.*/\1/p'; }

# FILE: re-runs what found it; prints the new file's path (in $work), or nothing.
refind() {
  local file=$1 cmd out checker
  cmd=$(command_of "$file")
  checker=$(jq -r .expect.checker "$file")
  out="$work/$(basename "$file" .json)"
  mkdir -p "$out"
  read -r -a args <<<"$cmd"
  if [ -n "${SAME_WORLD_SEEDS:-}" ]; then
    local sets=() bugs=()
    # A knob absent from an older file has its serde default there (`scenarios/src/spec.rs`), which
    # swarm would otherwise draw anew.
    local defaults='{"value_size_max_bytes": 8, "disk_error_weight": 0, "slow_disk_weight": 0,
      "wal_recovery_cut_percent": 0, "membership_change_weight": 0, "log_restart_ms": 0}'
    mapfile -t sets < <(jq -r --argjson d "$defaults" '($d + .world) | del(.fault_plan, .seed)
      | to_entries[] | "--set=\(.key)=\(.value | tostring)"' "$file")
    mapfile -t bugs < <(jq -r '.bugs[] | "--bug=\(.)"' "$file")
    args=(explore --scenario swarm --seeds "$SAME_WORLD_SEEDS" "${sets[@]}" "${bugs[@]}")
  fi
  case "${args[0]}" in
    explore)
      "$SIM" "${args[@]}" --stop-on-failure --seed-dir "$out" >"$out/log" 2>&1 || true ;;
    run)
      # One seed named: explore on from it, the same scenario, switches and knobs.
      local seed scenario rest=()
      for ((k = 1; k < ${#args[@]}; k++)); do
        case "${args[k]}" in
          --seed) seed=${args[k + 1]}; k=$((k + 1)) ;;
          --scenario) scenario=${args[k + 1]}; k=$((k + 1)) ;;
          *) rest+=("${args[k]}") ;;
        esac
      done
      "$SIM" explore --scenario "$scenario" --seeds "$seed..$((seed + 500))" "${rest[@]}" \
        --stop-on-failure --seed-dir "$out" >"$out/log" 2>&1 || true ;;
    sweep)
      "$SIM" "${args[@]}" --seed-dir "$out" >"$out/log" 2>&1 || true ;;
    hunt)
      # The hunt its note names, for its whole budget (its first finding may be one with the switches
      # off), with the file's switches (a hunt with no switch may have found what a switch now restores).
      local hunt=()
      for a in "${args[@]}"; do [ "$a" = --keep-going ] || hunt+=("$a"); done
      bugs=()
      printf '%s\n' "${hunt[@]}" | grep -q -- '^--bug' || mapfile -t bugs < <(jq -r '.bugs[] | "--bug=\(.)"' "$file")
      "$SIM" "${hunt[@]}" "${bugs[@]}" --keep-going --seed-dir "$out" >"$out/log" 2>&1 || true ;;
    *) echo "  $file: cannot re-run \`sim $cmd\`" >&2; return ;;
  esac
  # Only a file that names the same switches finds the same bug. One that names none found a failure
  # with every switch off: not this file's, and worth a look — it goes to seeds/open/.
  local same=() bugs_of
  bugs_of=$(jq -c '.bugs | sort' "$file")
  for f in "$out"/*.json; do
    [ -e "$f" ] || continue
    if [ "$(jq -c '.bugs | sort' "$f")" = "$bugs_of" ]; then
      same+=("$f")
    elif [ "$(jq -c .bugs "$f")" = "[]" ]; then
      cp "$f" seeds/open/
      echo "  FOUND WITH THE SWITCHES OFF: seeds/open/$(basename "$f")" >&2
    fi
  done
  # The first that expects the same checker, else the first.
  for f in "${same[@]}"; do
    if [ "$(jq -r .expect.checker "$f")" = "$checker" ]; then echo "$f"; return; fi
  done
  [ ${#same[@]} -gt 0 ] && echo "${same[0]}"
  true
}

files=("$@")
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(drifted)
for file in "${files[@]}"; do
  case "$file" in
    *-shrunk.json)
      partner=${file%-shrunk.json}.json
      # Its partner is re-found (and this re-shrunk) below, or still good: re-shrink from it now.
      if [ -e "$partner" ] && ! printf '%s\n' "${files[@]}" | grep -qx "$partner"; then
        "$SIM" shrink "$partner" -o "$file" >/dev/null
        echo "re-shrunk $file"
      fi
      continue ;;
  esac
  new=$(refind "$file")
  if [ -z "$new" ]; then
    echo "NOT RE-FOUND: $file (see \`sim $(command_of "$file")\`)"
    continue
  fi
  dest="seeds/$(basename "$new")"
  shrunk=${file%.json}-shrunk.json
  git rm -q "$file" 2>/dev/null || rm -f "$file"
  cp "$new" "$dest"
  echo "$file -> $dest"
  if [ -e "$shrunk" ]; then
    git rm -q "$shrunk" 2>/dev/null || rm -f "$shrunk"
    "$SIM" shrink "$dest" -o "${dest%.json}-shrunk.json" >/dev/null
    echo "  re-shrunk ${dest%.json}-shrunk.json"
  fi
done
