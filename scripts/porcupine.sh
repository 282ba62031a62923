#!/usr/bin/env bash
# Builds bench/porcupine-driver, the Go program that times Porcupine (github.com/anishathalye/porcupine, a
# Go linearizability checker) on history files in our JSON-lines format, so `cargo xtask bench` can
# compare our checker against it on the same files. Comparison only: Porcupine is not part of this
# repository; bring your own checkout of it. The build is offline (GOPROXY=off): the driver's go.mod is
# generated in a scratch directory with a `replace` pointing at the checkout, which needs no other module.
#
# Usage: scripts/porcupine.sh build PORCUPINE_CHECKOUT OUT_BINARY
# Exit status 3 (with a one-line message) if `go` or the checkout is missing.
set -euo pipefail
usage="usage: scripts/porcupine.sh build PORCUPINE_CHECKOUT OUT_BINARY"
[ "$#" -eq 3 ] && [ "$1" = build ] || { echo "$usage" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
checkout=$2
out=$3

command -v go >/dev/null || { echo "porcupine.sh: no 'go' on PATH (e.g. apt-get install golang-go)" >&2; exit 3; }
[ -f "$checkout/go.mod" ] && grep -q '^module github.com/anishathalye/porcupine$' "$checkout/go.mod" \
  || { echo "porcupine.sh: no Porcupine checkout at '$checkout'" >&2; exit 3; }
checkout=$(cd "$checkout" && pwd)
case $out in /*) ;; *) out=$PWD/$out ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here/bench/porcupine-driver/main.go" "$tmp/"
cat >"$tmp/go.mod" <<MOD
module porcupinedriver

go 1.16

require github.com/anishathalye/porcupine v0.0.0

replace github.com/anishathalye/porcupine => $checkout
MOD
mkdir -p "$(dirname "$out")"
cd "$tmp"
GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOWORK=off GOTOOLCHAIN=local go build -trimpath -o "$out" .
