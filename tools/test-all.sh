#!/usr/bin/env bash
# `make test-all`: the whole test suite on every CPython the package claims (3.9+), each in its
# own virtualenv .venv-3.X made from that interpreter. A version with no interpreter on this
# machine is skipped with a note; any failed run (install or tests) fails the whole command.
# PYTHONS="3.9 3.13" picks some of them.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHONS="${PYTHONS:-3.9 3.10 3.11 3.12 3.13}"
PYENV_DIR="${PYENV_ROOT:-$HOME/.pyenv}"

# Prints the interpreter `python -c` calls X.Y, if it runs and is that version.
is_version() {
    local python="$1" want="$2" got
    got="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || return 1
    [ "$got" = "$want" ]
}

# The newest CPython X.Y found: pyenv's own answer, then pyenv's folders, then pythonX.Y on PATH.
find_python() {
    local want="$1" prefix candidate
    local pyenv_bin
    pyenv_bin="$(command -v pyenv 2>/dev/null || true)"
    [ -n "$pyenv_bin" ] || { [ -x "$PYENV_DIR/bin/pyenv" ] && pyenv_bin="$PYENV_DIR/bin/pyenv"; }
    if [ -n "$pyenv_bin" ] && prefix="$("$pyenv_bin" prefix "$want" 2>/dev/null)"; then
        candidate="$prefix/bin/python"
        if is_version "$candidate" "$want"; then echo "$candidate"; return 0; fi
    fi
    for dir in "$PYENV_DIR" /root/.pyenv; do
        for candidate in $(ls -d "$dir/versions/$want".*/bin/python 2>/dev/null | sort -rV); do
            if is_version "$candidate" "$want"; then echo "$candidate"; return 0; fi
        done
    done
    candidate="$(command -v "python$want" 2>/dev/null || true)"
    if [ -n "$candidate" ] && is_version "$candidate" "$want"; then echo "$candidate"; return 0; fi
    return 1
}

summary=()
failed=0
ran=0
for want in $PYTHONS; do
    venv=".venv-$want"
    if ! python="$(find_python "$want")"; then
        echo "== Python $want: no interpreter found (tried pyenv, $PYENV_DIR/versions, python$want); skipped"
        summary+=("$(printf '%-5s %-8s %s' "$want" skipped 'no interpreter found')")
        continue
    fi
    full="$("$python" -c 'import platform; print(platform.python_version())')"
    echo "== Python $full ($python) in $venv"
    start=$SECONDS
    # A venv left by another interpreter (say an older patch release, since removed) is made anew.
    if ! is_version "$venv/bin/python" "$want" \
        || [ "$("$venv/bin/python" -c 'import platform; print(platform.python_version())')" != "$full" ]; then
        rm -rf "$venv"
    fi
    if ! { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } \
        || ! "$venv/bin/python" -m pip install -q --upgrade pip \
        || ! "$venv/bin/python" -m pip install -q -e '.[test]'; then
        failed=1
        summary+=("$(printf '%-5s %-8s %s' "$want" FAILED "could not install ($full)")")
        continue
    fi
    ran=$((ran + 1))
    log="$venv/pytest.log"
    "$venv/bin/python" -m pytest -q 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    last="$(grep -E '(passed|failed|error|no tests ran)' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')"
    if [ "$status" -eq 0 ]; then verdict=ok; else verdict=FAILED; failed=1; fi
    summary+=("$(printf '%-5s %-8s %s (%s, %ds with install)' "$want" "$verdict" "$last" "$full" $((SECONDS - start)))")
done

echo
echo "== make test-all: one line per Python"
printf '%s\n' "${summary[@]}"
if [ "$ran" -eq 0 ]; then
    echo "no Python of $PYTHONS was found: nothing ran"
    exit 1
fi
exit "$failed"
