#!/usr/bin/env bash
# docs.man: docs/jobq.1 has a `.SS VERB` section for every verb `jobq --help` lists, and, when
# groff is installed (Debian groff-base), renders without a warning.
# Usage: man_check.sh JOBQ MAN_PAGE
set -euo pipefail
jobq=$1 page=$2
verbs=$("$jobq" --help | awk '/^Verbs:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }')
[ -n "$verbs" ] || { echo "docs.man: no verbs in \`jobq --help\`" >&2; exit 1; }
missing=()
for v in $verbs; do
	grep -Eq "^\.SS \"?$v(\"| |$)" "$page" || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "docs.man: $page has no .SS section for: ${missing[*]}" >&2
	exit 1
fi
if command -v groff >/dev/null 2>&1; then
	warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
	if [ -n "$warnings" ]; then
		echo "docs.man: groff warns about $page:" >&2
		echo "$warnings" >&2
		exit 1
	fi
	rendered="and renders without a warning"
else
	rendered="(groff not installed: not rendered)"
fi
echo "docs.man: $(echo "$verbs" | wc -w) verbs, each with its section in $page $rendered"
