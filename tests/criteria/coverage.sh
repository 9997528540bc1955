#!/bin/sh
# Branch coverage of the pure criteria library by its own tests (must stay at 100 %).
# Run from the repository root:  sh tests/criteria/coverage.sh
set -e
BIN=${BIN:-.venv/bin}
"$BIN/coverage" run --branch --data-file=.coverage.criteria --source=daemon/criteria \
    -m pytest -q -p no:cacheprovider tests/criteria
"$BIN/coverage" report --data-file=.coverage.criteria -m --fail-under=100
rm -f .coverage.criteria
