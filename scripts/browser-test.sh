#!/usr/bin/env bash
# Tests a history page (sim/src/history/page.html filled with data) in a real headless Chromium: loads the
# file, lets its script run, dumps the resulting DOM and checks the attributes the script leaves on <body>
# (data-rendered="ok" or "error: MESSAGE", data-key-count, data-op-count, data-lanes, data-failing).
# A real browser because the page is only its script: what matters is that the script parses the embedded
# JSON and renders without throwing, in the engine people open it in. Checking the template's text, or
# running the script under a fake DOM, would not see a JSON escape the browser rejects, a script element
# closed early by data, or an API the fake DOM has and the browser lacks (or the reverse).
#
# Usage: scripts/browser-test.sh [--screenshot OUT.png] [--show ATTR]... [--fragment F] PAGE.html EXPECT...
#   EXPECT is attr=value for a <body> attribute, e.g. data-rendered=ok data-lanes=3 data-failing=7, or
#   attr>=N for a count that must be at least N.
#   --screenshot also saves a 1400x900 screenshot of the page, for a human to look at.
#   --show prints an attribute's value without checking it (a measurement such as data-load-ms).
#   --fragment opens PAGE.html#F (a page's own options, e.g. select=power cut).
# Any uncaught script error the browser logs fails the test, whatever the page's attributes say.
# Prints one line per check; exits 1 on any mismatch (showing the dumped <body> tag), 2 on bad usage.
# Installs Debian's `chromium` (as root, or through sudo) when it is not on PATH.
set -euo pipefail

usage() { echo "usage: $0 [--screenshot OUT.png] PAGE.html attr=value..." >&2; exit 2; }

screenshot=
fragment=
shows=()
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --screenshot) [ $# -ge 2 ] || usage; screenshot=$2; shift 2 ;;
        --screenshot=*) screenshot=${1#--screenshot=}; shift ;;
        --show) [ $# -ge 2 ] || usage; shows+=("$2"); shift 2 ;;
        --fragment) [ $# -ge 2 ] || usage; fragment=$2; shift 2 ;;
        -h|--help) usage ;;
        *) args+=("$1"); shift ;;
    esac
done
[ ${#args[@]} -ge 1 ] || usage
page=${args[0]}
expects=("${args[@]:1}")
[ -f "$page" ] || { echo "no such page: $page" >&2; exit 2; }
for e in ${expects[@]+"${expects[@]}"}; do
    [[ $e == *=* ]] || { echo "not attr=value or attr>=N: $e" >&2; usage; }
done

# Chromium: a Debian package, installed as root or through sudo (as .ci/run installs its tools).
need_package() { # COMMAND PACKAGE
    command -v "$1" >/dev/null && return
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$2" ||
        { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q --no-install-recommends "$2"; }
}
need_package chromium chromium

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
url="file://$(printf '%s' "$abs" | sed -e 's/%/%25/g' -e 's/ /%20/g' -e 's/#/%23/g' -e 's/?/%3F/g')"
[ -z "$fragment" ] || url="$url#$(printf '%s' "$fragment" | sed -e 's/%/%25/g' -e 's/ /%20/g')"

# A fresh profile per run, no network, no first-run or background work; the virtual time budget lets the
# page's script (and any timers) finish before the DOM is dumped.
run_chromium() { # EXTRA-FLAG...
    mkdir -p "$work/profile-$1"
    timeout 180 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile-$1" --virtual-time-budget=5000 --enable-logging=stderr --v=0 "${@:2}" "$url"
}

if ! run_chromium dump --dump-dom >"$work/dom.html" 2>"$work/chromium.err"; then
    echo "chromium failed on $url:" >&2
    tail -n 20 "$work/chromium.err" >&2
    exit 1
fi

# The body start tag: the first after </head> (the head may mention "<body>" in a comment or script).
body=$(awk 'found { print; next } { i = index($0, "</head>"); if (i) { found = 1; print substr($0, i) } }' \
    "$work/dom.html" | grep -o '<body[^>]*>' | head -n 1 || true)
if [ -z "$body" ]; then
    echo "no <body> tag in the DOM chromium dumped for $url; its stderr:" >&2
    tail -n 20 "$work/chromium.err" >&2
    exit 1
fi

# The value of a body attribute as the browser serialized it (entities decoded); fails when absent.
attr() { # NAME
    local raw
    raw=$(printf '%s\n' "$body" | grep -o " $1=\"[^\"]*\"" | head -n 1) || return 1
    raw=${raw#* "$1"=\"}
    raw=${raw%\"}
    printf '%s' "$raw" | sed -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&nbsp;/ /g' -e 's/&amp;/\&/g'
}

failed=0
# Uncaught errors, as chromium logs the page's console: `…:CONSOLE…] "Uncaught TypeError: …", source: …`.
if grep -E 'CONSOLE[^]]*\] "Uncaught' "$work/chromium.err" >&2; then
    echo "FAIL  the page threw (above)"
    failed=1
fi
for s in ${shows[@]+"${shows[@]}"}; do
    echo "      $s=$(attr "$s" || echo '(absent)')"
done
for e in ${expects[@]+"${expects[@]}"}; do
    if [[ $e == *'>='* ]]; then
        name=${e%%>=*} want=${e#*>=}
        if got=$(attr "$name") && [[ $got =~ ^[0-9]+$ ]] && [ "$got" -ge "$want" ]; then
            echo "ok    $name=$got (at least $want)"
        else
            echo "FAIL  $name: expected at least $want, got '${got:-absent}'"
            failed=1
        fi
        continue
    fi
    name=${e%%=*} want=${e#*=}
    if got=$(attr "$name"); then
        if [ "$got" = "$want" ]; then
            echo "ok    $name=$got"
        else
            echo "FAIL  $name: expected '$want', got '$got'"
            failed=1
        fi
    else
        echo "FAIL  $name: expected '$want', attribute absent"
        failed=1
    fi
done
[ ${#expects[@]} -gt 0 ] || echo "body: $body"

if [ -n "$screenshot" ]; then
    out=$(cd "$(dirname "$screenshot")" && pwd)/$(basename "$screenshot")
    if run_chromium shot --hide-scrollbars --window-size=1400,900 --screenshot="$out" \
        >/dev/null 2>"$work/chromium-shot.err" && [ -s "$out" ]; then
        echo "screenshot: $out"
    else
        echo "chromium could not take the screenshot $out:" >&2
        tail -n 20 "$work/chromium-shot.err" >&2
        failed=1
    fi
fi

if [ "$failed" -ne 0 ]; then
    echo "dumped body tag: $body" >&2
    exit 1
fi
