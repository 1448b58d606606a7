"""Never slow without saying so: the fallback to the twin warns, once, on CPython.

Each test imports ringq in a fresh interpreter where the compiled core is hidden by
an import hook (a meta path finder that raises ImportError, as a missing or
mismatched extension does), and checks what ``import ringq`` says.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import _helpers
import ringq
from ringq._queue import FALLBACK_WARNING_PREFIX

pytestmark = pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="only CPython has a compiled core to miss"
)

# The folder holding the ringq under test (src/ or site-packages): the child imports it.
RINGQ_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ringq.__file__)))

CHILD = """\
import json, sys, warnings

class HideCore:
    # Stands in for a missing extension (ImportError with .name set) or another failure.
    def find_spec(self, name, path=None, target=None):
        if name == "ringq._queue_c":
            raise {error}
        return None

sys.meta_path.insert(0, HideCore())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import ringq
    import ringq._queue  # a second import statement must not warn again
print(json.dumps({{
    "implementation": ringq.IMPLEMENTATION,
    "warnings": [[w.category.__name__, str(w.message), w.filename] for w in caught],
}}))
"""

MISSING = 'ImportError("No module named ringq._queue_c", name="ringq._queue_c")'
BROKEN = 'ImportError("undefined symbol: PyFoo_Bar (simulated ABI mismatch)", name="ringq._queue_c_other")'


def run(code, env_extra=None, args=()):
    env = dict(os.environ)
    env.pop("RINGQ_NO_EXTENSIONS", None)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONPATH"] = RINGQ_PARENT
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *args, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        cwd=os.path.dirname(RINGQ_PARENT),
    )


def run_child(error, env_extra=None):
    proc = run(CHILD.format(error=error), env_extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_missing_core_warns_once_with_reason_and_fix():
    result = run_child(MISSING)
    assert result["implementation"] == "python"
    assert len(result["warnings"]) == 1, result["warnings"]
    category, message, _ = result["warnings"][0]
    assert category == "RuntimeWarning"
    assert message.startswith(FALLBACK_WARNING_PREFIX)
    assert "no compiled core for this interpreter is installed" in message  # the reason
    assert "CPython %d.%d" % sys.version_info[:2] in message
    assert "C compiler and the Python headers" in message  # the fix
    assert "RINGQ_NO_EXTENSIONS=1" in message  # and how to choose the twin quietly


def test_broken_core_warning_names_the_import_error():
    result = run_child(BROKEN)
    assert result["implementation"] == "python"
    [[category, message, _]] = result["warnings"]
    assert category == "RuntimeWarning"
    assert "undefined symbol: PyFoo_Bar (simulated ABI mismatch)" in message


def test_no_warning_when_the_twin_is_chosen():
    result = run_child(MISSING, {"RINGQ_NO_EXTENSIONS": "1"})
    assert result == {"implementation": "python", "warnings": []}


def test_only_import_error_falls_back():
    # Anything else is a bug in the build or the environment: import ringq must fail.
    proc = run(CHILD.format(error='RuntimeError("not an ImportError")'))
    assert proc.returncode != 0
    assert "RuntimeError: not an ImportError" in proc.stderr


@pytest.mark.parametrize("how", ["-W", "filterwarnings"])
def test_documented_filters_silence_it(how):
    hide = CHILD.split("with warnings")[0]  # the import hook only, no recording
    if how == "-W":
        code, args = hide.format(error=MISSING) + "import ringq\n", ["-W", f"ignore:{FALLBACK_WARNING_PREFIX}"]
    else:
        code = hide.format(error=MISSING) + textwrap.dedent(f"""\
            warnings.filterwarnings("ignore", {FALLBACK_WARNING_PREFIX!r}, RuntimeWarning)
            import ringq
            """)
        args = []
    loud = run(hide.format(error=MISSING) + "import ringq\n")
    assert loud.returncode == 0 and "RuntimeWarning" in loud.stderr, loud.stderr  # the control
    quiet = run(code, args=args)
    assert quiet.returncode == 0, quiet.stderr
    assert "RuntimeWarning" not in quiet.stderr, quiet.stderr


def test_no_warning_when_the_core_loads():
    try:
        _helpers.import_compiled("ringq._queue_c")
    except ImportError:
        pytest.skip("the compiled core is not built here")
    proc = run("import ringq; assert ringq.IMPLEMENTATION == 'cython'", args=["-W", "error"])
    assert proc.returncode == 0, proc.stderr
