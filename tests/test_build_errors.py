"""A source build without a C compiler or the Python headers fails with a clear message.

The message must name the two ways out: install a compiler and the headers, or set
RINGQ_NO_EXTENSIONS=1. Runs setup.py from a scratch copy of the source tree, so it
needs the repository (not an installed wheel) and Cython; skipped otherwise.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [
    pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "setup.py")),
                       reason="needs the source tree (setup.py), not an installed wheel"),
    pytest.mark.skipif(importlib.util.find_spec("Cython") is None, reason="needs Cython"),
    pytest.mark.skipif(sys.implementation.name != "cpython", reason="setup.py builds nothing here"),
    pytest.mark.skipif(os.name == "nt", reason="CC is not how MSVC is chosen"),
]


@pytest.fixture
def tree(tmp_path):
    """A scratch copy of what setup.py needs (the generated C too, if present: saves time)."""
    shutil.copy2(os.path.join(ROOT, "setup.py"), tmp_path)
    shutil.copy2(os.path.join(ROOT, "pyproject.toml"), tmp_path)
    shutil.copy2(os.path.join(ROOT, "README.md"), tmp_path)
    shutil.copytree(os.path.join(ROOT, "src"), tmp_path / "src",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return tmp_path


def build(tree, env_extra, prefix=()):
    env = dict(os.environ, **env_extra)
    env.pop("RINGQ_NO_EXTENSIONS", None)
    return subprocess.run(
        [*prefix, sys.executable, "setup.py", "build_ext", "--build-temp", "tmp", "--build-lib", "lib"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )


def assert_names_both_ways_out(proc, reason):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert f"ringq: cannot build its C core: {reason}" in proc.stderr, proc.stderr
    assert "C compiler and the Python headers" in proc.stderr
    assert "set RINGQ_NO_EXTENSIONS=1 and run the same pip install again" in proc.stderr
    assert "Traceback" not in proc.stderr  # a message, not a crash


def test_no_compiler(tree):
    proc = build(tree, {"CC": str(tree / "no-such-compiler")})
    assert_names_both_ways_out(proc, "CompileError")
    assert "no-such-compiler" in proc.stderr


def test_no_python_headers(tree):
    # Hide Python.h behind an empty tmpfs in a private mount namespace (Linux, and only
    # where this user may create one: root, or unprivileged user namespaces).
    headers = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(headers, "Python.h")):
        pytest.skip("this interpreter has no headers to hide")
    unshare = shutil.which("unshare")
    probe = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-r", "-m"]
    if not unshare or subprocess.run([*probe, "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a mount namespace here")
    script = f'mount -t tmpfs none "{headers}" && exec "$@"'
    proc = build(tree, {}, prefix=[*probe, "sh", "-c", script, "sh"])
    assert_names_both_ways_out(proc, f"Python.h is not in {headers}")


def test_a_working_compiler_still_builds(tree):
    # The control: the same scratch tree builds when nothing is missing.
    if shutil.which(sysconfig.get_config_var("CC").split()[0]) is None:
        pytest.skip("no C compiler here")
    proc = build(tree, {})
    assert proc.returncode == 0, proc.stderr
    assert any(name.startswith("_queue_c") for name in os.listdir(tree / "lib" / "ringq"))
