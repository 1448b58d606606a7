"""Read the fenced code blocks of the Markdown docs (README.md, docs/*.md), for the tests.

The rules, which docs/index.md states for writers:

* A ```` ```python ```` block is an example: tests/test_docs.py runs it.
* A block preceded by ``<!-- sketch -->`` (or ``<!-- sketch: why -->``) on the line
  before its fence only sketches (a signature listing, a fragment): it is shown, not
  run. Sketches are the exception.
* A block preceded by ``<!-- requires: redis -->`` runs against a real redis-server,
  whose URL the test gives the block in the ``REDIS_URL`` environment variable (the
  test skips, with the reason, where no server can be started).
* A block preceded by ``<!-- script -->`` is a whole program: it runs alone, from a file
  of its own, as ``python example.py`` (what the spawn and forkserver start methods
  need, since their children import the program's ``__main__`` from its file).
* Other languages (``bash``, ``text``, ``toml``...) are shell commands, program output
  or files, not Python examples: they are not run. A fence without a language is an
  error: say what the block is.

The Python blocks of one page run in order, in one namespace, in one fresh
interpreter per implementation (like a reader pasting them into one session); the
redis blocks of a page run in a second interpreter of their own. A block may use
top-level ``await``: it then runs in ``asyncio.run``.
"""
import os
import re
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_LANGUAGES = {"python", "py"}
MARKER = re.compile(r"^\s*<!--\s*(sketch|script|requires:\s*redis)\b.*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass
class Block:
    path: str          # relative to the repository root
    line: int          # 1-based line of the first line of code (after the fence)
    language: str
    source: str
    marker: str        # "", "sketch", "script" or "redis"

    @property
    def runs(self):
        return self.language in RUN_LANGUAGES and self.marker != "sketch"


def doc_files():
    """README.md and every Markdown page under docs/, as paths relative to the root.

    Empty where the tests run without the repository around them (cibuildwheel and
    scripts/check-wheels.sh copy tests/ alone): the doc tests then skip.
    """
    paths = ["README.md"] if os.path.exists(os.path.join(ROOT, "README.md")) else []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "docs")):
        for name in sorted(files):
            if name.endswith(".md"):
                paths.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return sorted(set(paths), key=lambda p: (p != "README.md", p))


def docs_present():
    return os.path.exists(os.path.join(ROOT, "README.md")) and os.path.isdir(os.path.join(ROOT, "docs"))


#: For the doc tests' modules.
SKIP_REASON = "README.md and docs/ are not here (the tests run without the repository around them)"


def blocks(path, root=ROOT):
    """Every fenced block of *path* (relative to *root*), in order."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = []
    i = 0
    previous = ""  # the last non-blank line before the current one
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, fence, language = match.group(1), match.group(2), match.group(3).lower()
        marker = ""
        m = MARKER.match(previous)
        if m:
            marker = m.group(1) if m.group(1) in ("sketch", "script") else "redis"
        body = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                      and lines[j].strip().strip(fence[0]) == ""):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: a code fence that never closes")
        found.append(Block(path, i + 2, language, "\n".join(body) + "\n", marker))
        previous = lines[j]
        i = j + 1
    return found
