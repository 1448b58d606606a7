"""Every Python example in README.md and docs/*.md runs, with both implementations.

The rules (what runs, what is a sketch, how Redis examples get their server) are in
tests/_docblocks.py and on the docs' start page. A failure names the page and line.
"""
import json
import os
import subprocess
import sys

import pytest

import _docblocks
import _helpers
import _redis_server

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_run_doc_blocks.py")
TIMEOUT = 120  # under the suite watchdog (tests/conftest.py, 240 s)

pytestmark = pytest.mark.skipif(not _docblocks.docs_present(), reason=_docblocks.SKIP_REASON)


def _sessions():
    cases = []
    for path in _docblocks.doc_files():
        found = _docblocks.blocks(path)
        for session in ("main", "redis"):
            chosen = [b for b in found if b.runs and b.marker != "script"
                      and (b.marker == "redis") == (session == "redis")]
            if chosen:
                cases.append(pytest.param(path, session, chosen, id=f"{path}-{session}"))
        for b in found:
            if b.runs and b.marker == "script":
                cases.append(pytest.param(path, f"script-{b.line}", [b], id=f"{path}-script-{b.line}"))
    return cases


SESSIONS = _sessions()


@pytest.fixture
def redis_url(tmp_path_factory):
    """A fresh redis-server per page and implementation: no stream is left from another run."""
    reason = _redis_server.skip_reason()
    if reason:
        pytest.skip(f"the Redis examples need a real server: {reason}")
    with _redis_server.RedisServer(tmp_path_factory.mktemp("docs-redis")) as server:
        yield server.url


def run_script(block, impl, cwd):
    """A ``<!-- script -->`` block: a program of its own, run from its own file."""
    script = os.path.join(str(cwd), "example.py")
    with open(script, "w", encoding="utf-8") as f:
        # Blank lines first, so a traceback's line numbers are the page's.
        f.write("\n" * (block.line - 1) + block.source)
        f.write("\nif __name__ == '__main__':\n    import ringq as _ringq\n"
                "    print(f'ringq implementation: {_ringq.IMPLEMENTATION}')\n")
    return subprocess.run([sys.executable, script], env=_helpers.child_env(impl), cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


def run_blocks(path, chosen, impl, cwd, extra_env=None):
    env = _helpers.child_env(impl)
    env.update(extra_env or {})
    job = {"path": path, "blocks": [[b.line, b.source] for b in chosen]}
    return subprocess.run([sys.executable, RUNNER], input=json.dumps(job), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("path, session, chosen", SESSIONS)
def test_doc_examples_run(request, impl, tmp_path, path, session, chosen):
    if session.startswith("script-"):
        proc = run_script(chosen[0], impl, tmp_path)
        assert proc.returncode == 0, (f"the program at {path}:{chosen[0].line} failed ({impl}):\n"
                                      f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        assert f"ringq implementation: {impl}" in proc.stdout
        return
    extra = {}
    if session == "redis":
        extra["REDIS_URL"] = request.getfixturevalue("redis_url")
    proc = run_blocks(path, chosen, impl, tmp_path, extra)
    assert proc.returncode == 0, (f"an example in {path} failed ({impl}); the last '---' line names "
                                  f"the block:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    assert f"ringq implementation: {impl}" in proc.stdout  # the twin really ran where asked
    assert proc.stdout.count("--- ") == len(chosen)


def test_the_runner_reports_a_failing_block_with_its_page_line(tmp_path):
    # The check can fail: a broken example fails the test and names its line.
    page = _docblocks.Block("README.md", 40, "python", "x = 1\nassert x == 2\n", "")
    proc = run_blocks("README.md", [page], "python", tmp_path)
    assert proc.returncode != 0
    assert 'File "README.md", line 41' in proc.stderr


def test_blocks_are_found_and_marked(tmp_path):
    source = ("text\n\n```python\nprint(1)\n```\n<!-- sketch -->\n```python\nsketch()\n```\n\n"
              "<!-- requires: redis -->\n\n```python\nr()\n```\n```bash\nls\n```\n"
              "<!-- script -->\n```python\nmain()\n```\n")
    (tmp_path / "page.md").write_text(source, encoding="utf-8")
    found = _docblocks.blocks("page.md", root=str(tmp_path))
    assert [(b.line, b.language, b.marker, b.runs) for b in found] == [
        (4, "python", "", True), (8, "python", "sketch", False), (14, "python", "redis", True),
        (17, "bash", "", False), (21, "python", "script", True)]


def test_every_page_has_examples_that_run_and_no_unlabelled_fence():
    pages = _docblocks.doc_files()
    assert "README.md" in pages and "docs/api.md" in pages
    unlabelled = [f"{b.path}:{b.line - 1}" for p in pages for b in _docblocks.blocks(p) if not b.language]
    assert not unlabelled, f"fences without a language (say python, bash or text): {unlabelled}"
    every = [b for p in pages for b in _docblocks.blocks(p) if b.language in _docblocks.RUN_LANGUAGES]
    sketches = [b for b in every if b.marker == "sketch"]
    assert len(sketches) * 4 < len(every), (
        f"{len(sketches)} of {len(every)} Python blocks are sketches: sketches are the exception")
