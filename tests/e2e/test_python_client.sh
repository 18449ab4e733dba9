#!/usr/bin/env bash
# test_python_client.sh — the Python client's own tests (pytest, in
# clients/python/tests) against this build's forqd. Debian's python3-pytest
# belongs to /usr/bin/python3, which another python3 on PATH (pyenv, a venv)
# may hide: the first python3 that has pytest runs them.
set -u
src=${FORQ_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
for py in /usr/bin/python3 python3; do
	if "$py" -c 'import pytest' 2>/dev/null; then
		exec "$py" -m pytest -q -p no:cacheprovider "$src/clients/python/tests"
	fi
done
echo "no python3 with pytest here: apt-get install python3-pytest python3-venv" >&2
exit 1
