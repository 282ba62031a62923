#!/usr/bin/env bash
# Issue 10's sweep measurements (README, "Sweep: every crash point"): for every storage switch, one sweep
# of one world with the switch on (it must fail) and the same sweep with no switch (it must not).
# A host script around the release `sim` binary. Usage: scripts/sweep-switches.sh [SWITCH…]
# Output: one line per switch; the full sweep output under $OUT (default /tmp/sweep-switches). About 80 min
# on two cores (the twelve-group world of register-after-init alone takes 30).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/sweep-switches}
mkdir -p "$OUT"
cargo build --release -q -p sim
SIM=target/release/sim

# switch | scenario | seed | sweep options (what makes the world small enough to sweep whole)
WORLDS='
indexes-badmatch|recovery/corrupt-snapshot-indexes|0|--set safety_ms=1500 --set snapshot_interval=10
indexes-missing-trusted|recovery/corrupt-snapshot-indexes|0|--set safety_ms=1500 --set snapshot_interval=10
wal-recovery-rescan|recovery/segment-writer-deletes-mid-recovery|0|--set safety_ms=1500
segref-tuple-delete|recovery/crash-between-segment-flush-and-wal-delete|0|--set safety_ms=1500
config-orphan-registration|recovery/crash-between-registration-and-config|0|--set safety_ms=1500
registration-not-synced|recovery/crash-between-registration-and-config|0|--set safety_ms=1500
register-after-init|membership/new-server-during-wal-rollover|0|--set safety_ms=800 --set groups=12 --set group_stagger_ms=100 --set wal_max_size_bytes=2048
config-no-dir-sync|recovery/config-dir-entry-lost|0|--set safety_ms=1500
accept-no-parent-sync|recovery/power-loss-during-snapshot-install|0|--set safety_ms=3000
wal-unlink-no-dir-sync|recovery/segment-writer-deletes-mid-recovery|0|--set safety_ms=1500 --keep-planned-crashes
segment-index-unchecked|recovery/torn-segment-index|0|--set safety_ms=1500
segment-zero-header-fatal|recovery/torn-wal-tail|0|--set safety_ms=1500 --set snapshot_interval=0 --set segment_max_count=8 --set wal_max_size_bytes=4096
snapshot-before-written|recovery/snapshot-ahead-of-slow-wal|0|--to-ms 1500
snapshot-over-written-log|recovery/follower-crash-under-overtaking|0|--set safety_ms=1500 --to-ms 400 --horizon-ms 1000 --node 1
stale-tail-resurrected|recovery/stale-leader-installs-snapshot|0|--keep-planned-crashes
wal-zero-checksum-unchecked|recovery/config-dir-entry-lost|0|--set safety_ms=1500
'
want=("$@")
printf '%-28s %-52s %8s %8s %7s  %s\n' switch world points images failed "first failure (switch on) / no-switch failures"
while IFS='|' read -r bug scenario seed opts; do
    [ -z "$bug" ] && continue
    if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $bug "* ]]; then continue; fi
    key=$(echo "$scenario-$seed-$opts" | tr -c 'a-zA-Z0-9-' '_')
    # shellcheck disable=SC2086
    if [ ! -f "$OUT/none-$key.txt" ]; then
        "$SIM" sweep --scenario "$scenario" --seed "$seed" $opts --seed-dir "$OUT/seeds" >"$OUT/none-$key.txt" 2>&1 || true
    fi
    # shellcheck disable=SC2086
    "$SIM" sweep --scenario "$scenario" --seed "$seed" $opts --bug "$bug" --seed-dir "$OUT/seeds" >"$OUT/$bug.txt" 2>&1 || true
    head=$(grep '^swept' "$OUT/$bug.txt" || echo "swept: (no summary)")
    points=$(echo "$head" | sed -E 's/.*: ([0-9]+) crash points.*/\1/')
    images=$(echo "$head" | sed -E 's/.* ([0-9]+) distinct images run.*/\1/')
    failed=$(echo "$head" | sed -E 's/.* ([0-9]+) failures.*/\1/')
    first=$(grep -m1 '^  [a-z-]*:' "$OUT/$bug.txt" | sed -E 's/^ +//' || true)
    none=$(grep '^swept' "$OUT/none-$key.txt" | sed -E 's/.* ([0-9]+) failures.*/\1/')
    printf '%-28s %-52s %8s %8s %7s  %s / %s\n' "$bug" "$scenario $seed" "$points" "$images" "$failed" "${first:-none}" "$none"
done <<<"$WORLDS"
