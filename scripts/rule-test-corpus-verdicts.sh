#!/bin/sh
# Records promtool's verdict (exit code) on every test file of
# tests/rule-test-corpus/ in tests/rule-test-corpus/verdicts.txt, one
# "file exit_code" line each. Run it after adding or changing a corpus file;
# the integration test `rule_tests` checks that `bellwether test rules` gives
# the same verdicts (and that promtool still does).
#
# Needs promtool 2.42 (Debian's prometheus package). File names end in
# -pass.yml or -fail.yml; the script refuses a verdict that contradicts the name.
set -eu
cd "$(dirname "$0")/../tests/rule-test-corpus"
promtool --version 2>&1 | head -1 | grep -q 'version 2\.42\.' || {
    echo "rule-test-corpus-verdicts.sh: needs promtool 2.42" >&2
    exit 1
}
out=verdicts.txt.new
: > "$out"
status=0
for f in *.yml; do
    code=0
    promtool test rules "$f" > /dev/null 2>&1 || code=$?
    case "$f" in
        *-pass.yml) want=0 ;;
        *-fail.yml) want=1 ;;
        *) want=$code ;;
    esac
    if [ "$code" != "$want" ]; then
        echo "$f: promtool exits $code, but the file name says $want" >&2
        status=1
    fi
    echo "$f $code" >> "$out"
done
mv "$out" verdicts.txt
echo "$(wc -l < verdicts.txt) verdicts written to tests/rule-test-corpus/verdicts.txt"
exit $status
