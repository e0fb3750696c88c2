#!/usr/bin/env bash
# The test command: installs prerequisites, builds, runs every test against the real peer
# tools, and ends with one line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
results="$(pwd)/TestResults"
rm -rf "$results"
# The CLI tests run the native executable that ships (dotnet publish: native AOT), not the
# test build's treechunk.dll.
dotnet publish src/Treechunk.Cli -c Release --nologo -v quiet -o "$results/cli"
export TREECHUNK_CLI="$results/cli/treechunk"
set +e
dotnet test Treechunk.slnx --nologo --no-restore -c Release \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" "$@"
status=$?
set -e
trx=$(find "$results" -name 'results.trx' | head -n 1)
if [ -z "$trx" ]; then
  echo "0 passed, 1 failed, 0 skipped"
  echo "test.sh: no test results were written (build failure?)" >&2
  exit 1
fi
counters=$(grep -o '<Counters [^>]*>' "$trx")
get() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
passed=$(get passed); failed=$(get failed); total=$(get total); executed=$(get executed)
skipped=$(( total - executed ))
failed=$(( failed + $(get error) + $(get timeout) + $(get aborted) ))
# CI shows only the head and tail of the log: name each failure (and its first message lines)
# right before the count, so a red run says which test broke.
if [ "$failed" -ne 0 ]; then
  python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
root = ET.parse(sys.argv[1]).getroot()
for r in root.iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") not in ("Passed", "NotExecuted"):
        msg = r.findtext(".//t:Message", "", ns).strip().splitlines()
        print(f"FAILED {r.get('testName')} ({r.get('duration')})")
        for line in msg[:12]:
            print(f"    {line}")
PY
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
