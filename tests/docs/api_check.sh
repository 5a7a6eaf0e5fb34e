#!/usr/bin/env bash
# docs.api: runs Doxygen over the public headers with WARN_AS_ERROR (docs/api/Doxyfile.in), so
# an undocumented public symbol or a broken doc comment fails. Without doxygen it is skipped
# (exit 77), except under CI (CI set), where scripts/deps.sh installs it.
# Usage: api_check.sh DOXYGEN DOXYFILE OUT_DIR INCLUDE_DIR...
set -euo pipefail
doxygen=$1 doxyfile=$2 out=$3
shift 3
# Doxygen checks the members of a header only when the header itself is documented: each one
# must open with a comment that has @file.
undocumented=$(find "$@" -name '*.h' -exec grep -L '@file' {} + || true)
if [ -n "$undocumented" ]; then
	echo "docs.api: public headers without a /** @file ... */ comment (their symbols go unchecked):" >&2
	echo "$undocumented" >&2
	exit 1
fi
if [ -z "$doxygen" ] || [[ "$doxygen" == *NOTFOUND ]] || ! [ -x "$doxygen" ]; then
	if [ -n "${CI:-}" ]; then
		echo "docs.api: doxygen is missing (scripts/deps.sh installs it)" >&2
		exit 1
	fi
	echo "docs.api: skipped, no doxygen (apt-get install doxygen)"
	exit 77
fi
rm -rf "$out/html" "$out/warnings.log"
if ! "$doxygen" "$doxyfile" >"$out/doxygen.log" 2>&1; then
	echo "docs.api: doxygen failed; undocumented or badly documented public symbols:" >&2
	cat "$out/warnings.log" "$out/doxygen.log" >&2
	exit 1
fi
if [ -s "$out/warnings.log" ]; then
	cat "$out/warnings.log" >&2
	exit 1
fi
[ -f "$out/html/index.html" ] || { echo "docs.api: no $out/html/index.html" >&2; exit 1; }
echo "docs.api: the API reference builds without a warning ($out/html/index.html)"
