#!/bin/sh
# Generate the man pages parmod(8) and parmod-plan(8) from the programs' own
# --help text, wrapped in roff by a template per page
# (packaging/man/NAME.8.in: NAME, SYNOPSIS, DESCRIPTION, EXIT STATUS, FILES,
# SEE ALSO; @SYNOPSIS@ and @HELP@ are filled in from --help).
#
#   packaging/man/gen-man.sh [--parmod BIN] [--parmod-plan BIN] [-o DIR]
#
# Defaults: the binaries under target/ (x86_64 musl build), output build/man/.
# A parmod built for another architecture cannot run here: its --help is then
# taken from the same source, the USAGE string in src/runtime/args.rs.
# SYNOPSIS is the "usage:" block of --help (the first lines, up to the first
# blank or unindented line), the help text goes verbatim into DESCRIPTION.
set -eu

me=$(basename "$0")
die() { echo "$me: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PARMOD=$repo/target/x86_64-unknown-linux-musl/release/parmod
PARMOD_PLAN=$repo/target/x86_64-unknown-linux-musl/host/parmod-plan
OUT=$repo/build/man
while [ $# -gt 0 ]; do
    case "$1" in
        --parmod) PARMOD=$2; shift 2 ;;
        --parmod-plan) PARMOD_PLAN=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
# Reproducible dates: SOURCE_DATE_EPOCH, else the last commit, else today.
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
    DATE=$(git -C "$repo" log -1 --format=%cs 2>/dev/null || date -u +%Y-%m-%d)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gen-man.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

# help NAME BIN > file
help_text() {
    if "$2" --help > "$TMP/h" 2>/dev/null && [ -s "$TMP/h" ]; then
        cat "$TMP/h"
    elif [ "$1" = parmod ]; then
        # Between `pub const USAGE: &str = "\` and the closing `";`.
        sed -n '/^pub const USAGE: &str = "\\$/,/^";$/p' "$repo/src/runtime/args.rs" | sed '1d;$d' |
            sed 's/\\"/"/g; s/\\\\/\\/g'
    else
        die "cannot run $2 --help"
    fi
}

# roff-escape: backslashes, then a leading . or ' (control characters).
esc() { sed 's/\\/\\e/g; s/^\([.'"'"']\)/\\\&\1/'; }

gen() { # NAME BIN
    name=$1 bin=$2
    help_text "$name" "$bin" > "$TMP/$name.help"
    [ -s "$TMP/$name.help" ] || die "empty --help from $bin"
    # The usage block: "usage: X" or "usage:" and its indented continuation lines.
    awk '
        NR == 1 { sub(/^usage: */, ""); if ($0 != "") print; next }
        /^[ \t]/ { print; next }
        { exit }
    ' "$TMP/$name.help" > "$TMP/$name.use"
    # Drop the indentation the continuation lines share.
    ind=$(awk '/^[ \t]/ { match($0, /^ */); print RLENGTH }' "$TMP/$name.use" | sort -n | head -n1)
    sed "s/^ \{0,${ind:-0}\}//" "$TMP/$name.use" | esc |
        awk 'BEGIN { print ".nf" } { print } END { print ".fi" }' > "$TMP/$name.syn"
    esc < "$TMP/$name.help" > "$TMP/$name.body"
    awk -v syn="$TMP/$name.syn" -v body="$TMP/$name.body" -v ver="$VERSION" -v date="$DATE" '
        function slurp(f,   l, s) { s = ""; while ((getline l < f) > 0) s = s (s == "" ? "" : "\n") l; close(f); return s }
        BEGIN { S = slurp(syn); H = slurp(body) }
        $0 == "@SYNOPSIS@" { print S; next }
        $0 == "@HELP@" { print H; next }
        { gsub(/@VERSION@/, ver); gsub(/@DATE@/, date); print }
    ' "$here/$name.8.in" > "$OUT/$name.8.tmp"
    mv "$OUT/$name.8.tmp" "$OUT/$name.8"
    echo "$me: $OUT/$name.8" >&2
}

mkdir -p "$OUT"
gen parmod "$PARMOD"
gen parmod-plan "$PARMOD_PLAN"
