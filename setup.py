"""Build the Cython core, or nothing when RINGQ_NO_EXTENSIONS is set.

Switches, all read from the environment:
  RINGQ_NO_EXTENSIONS=1  skip the extension; ringq then runs its pure-Python twin
  RINGQ_DEBUG=1          -O0 -g, assertions on, Cython line tracing off
  RINGQ_SANITIZE=address build with a sanitizer (address, undefined, ...); load libasan first
  RINGQ_FORCE_LOCK=1     take the native state lock even on GIL builds, to exercise the
                         free-threaded locking code on an ordinary CPython
  RINGQ_STRICT=1         every warning in code we write is an error: Cython's warnings on
                         _queue_c.pyx, -Wall -Wextra inside src/ringq/_sync.h (a pragma scope
                         there), and on GCC/clang the three warnings GCC 14+ already makes errors
                         (-Werror=incompatible-pointer-types, int-conversion,
                         implicit-function-declaration) for the whole file. .ci/run and the
                         wheel builds set it; Cython's generated boilerplate gets no -Werror=all.
"""
import os
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError


def flag(name):
    return os.environ.get(name, "") not in ("", "0")


HELP = """
ringq: cannot build its C core: {reason}
A source build needs a C compiler and the Python headers (Python.h). Two ways out:
  1. install them, then install ringq again. Debian/Ubuntu: sudo apt install gcc python3-dev;
     Fedora: sudo dnf install gcc python3-devel; Alpine: apk add build-base python3-dev;
     macOS: xcode-select --install; Windows: the Microsoft C++ Build Tools;
  2. or set RINGQ_NO_EXTENSIONS=1 and run the same pip install again: that installs the
     pure-Python twin (same API, slower, no compiler needed). In PowerShell:
     $env:RINGQ_NO_EXTENSIONS = "1"
"""


STRICT = flag("RINGQ_STRICT")
# The warnings that GCC 14+ and clang 16+ turn into errors by default: fatal on every
# compiler in a strict build, so an older one (GCC 12 here) cannot let them through.
STRICT_CFLAGS = [
    "-Werror=incompatible-pointer-types",
    "-Werror=int-conversion",
    "-Werror=implicit-function-declaration",
]


class BuildExt(build_ext):
    """build_ext that names the two ways out instead of a bare compiler traceback."""

    def build_extensions(self):
        if STRICT and self.compiler.compiler_type == "unix":  # GCC or clang, not MSVC
            for ext in self.extensions:
                ext.extra_compile_args = [*STRICT_CFLAGS, *ext.extra_compile_args]
        headers = sysconfig.get_paths()["include"]
        if os.name != "nt" and not os.path.exists(os.path.join(headers, "Python.h")):
            raise SystemExit(HELP.format(reason=f"Python.h is not in {headers}"))
        try:
            super().build_extensions()
        except (CCompilerError, ExecError, PlatformError) as error:
            raise SystemExit(HELP.format(reason=f"{type(error).__name__}: {error}")) from error

macros, cflags, ldflags = [], [], []
if flag("RINGQ_DEBUG"):
    cflags += ["-O0", "-g3", "-UNDEBUG"] if os.name != "nt" else ["/Od", "/Zi"]
if os.environ.get("RINGQ_SANITIZE"):
    san = f"-fsanitize={os.environ['RINGQ_SANITIZE']}"
    cflags += [san, "-fno-omit-frame-pointer", "-g"]
    ldflags += [san]
if flag("RINGQ_FORCE_LOCK"):
    macros.append(("RINGQ_FORCE_LOCK", "1"))
if STRICT and not flag("RINGQ_NO_EXTENSIONS"):
    macros.append(("RINGQ_STRICT", "1"))  # _sync.h: -Wall -Wextra are errors in its scope
    from Cython.Compiler import Options

    Options.warning_errors = True  # a Cython warning on _queue_c.pyx fails the build

core = Extension(
    "ringq._queue_c",
    ["src/ringq/_queue_c.pyx"],
    include_dirs=["src/ringq"],
    define_macros=macros,
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)

# ringq.ProcessQueue's core (Linux: robust mutex + futex; builds elsewhere and
# refuses to create a queue there). Its own C header is held to -Wall.
process_cflags = list(cflags)
if os.name != "nt" and sys.platform.startswith("linux"):
    process_cflags += ["-Wall"]
process = Extension(
    "ringq._process_c",
    ["src/ringq/_process_c.pyx"],
    depends=[f"src/ringq/_process_c/{name}" for name in sorted(os.listdir("src/ringq/_process_c"))],
    include_dirs=["src/ringq"],
    define_macros=macros,
    extra_compile_args=process_cflags,
    extra_link_args=ldflags,
)

if flag("RINGQ_NO_EXTENSIONS") or sys.implementation.name != "cpython":
    setup(ext_modules=[])
else:
    from Cython.Build import cythonize  # only needed when building the extension

    setup(
        cmdclass={"build_ext": BuildExt},
        ext_modules=cythonize(
            [core, process],
            language_level=3,
            compiler_directives={"embedsignature": True, "freethreading_compatible": True},
            force=STRICT,  # a strict build re-reads the .pyx, so its warnings are seen every time
        )
    )
