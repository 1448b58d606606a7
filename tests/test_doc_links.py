"""Every relative link in README.md and docs/*.md resolves: the file exists, and an
anchor (#...) names a heading of the page it points to (GitHub's heading ids, which
the docs site's toc extension gives the same headings)."""
import os
import re

import pytest

import _docblocks

ROOT = _docblocks.ROOT
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCED = re.compile(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")

pytestmark = pytest.mark.skipif(not _docblocks.docs_present(), reason=_docblocks.SKIP_REASON)


def heading_ids(text):
    """GitHub's ids for the Markdown headings of *text* (duplicates get -1, -2...)."""
    ids, seen = set(), {}
    for line in FENCED.sub("", text).split("\n"):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def links(text):
    text = INLINE_CODE.sub("", FENCED.sub("", text))
    return [m.group(1) for m in LINK.finditer(text)]


def broken_links(path, root=ROOT):
    """The relative links of *path* (relative to *root*) that do not resolve."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        text = f.read()
    broken = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(root, os.path.dirname(path), file_part)) if file_part \
            else os.path.join(root, path)
        if not os.path.exists(full):
            broken.append(f"{target} (no file {os.path.relpath(full, root)})")
            continue
        if anchor and full.endswith(".md"):
            with open(full, encoding="utf-8") as f:
                if anchor not in heading_ids(f.read()):
                    broken.append(f"{target} (no heading #{anchor} in {os.path.relpath(full, root)})")
    return broken


def test_the_checker_finds_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Moving from `janus`, or asyncio.Queue\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#moving-from-janus-or-asyncioqueue) [gone](docs/b.md) "
        "[bad](docs/a.md#nowhere) [self](#top) `[code](docs/c.md)` [web](https://x.org/y)\n"
        "```text\n[in a block](docs/d.md)\n```\n# Top\n")
    assert broken_links("README.md", str(tmp_path)) == [
        "docs/b.md (no file docs/b.md)", "docs/a.md#nowhere (no heading #nowhere in docs/a.md)"]


@pytest.mark.parametrize("path", _docblocks.doc_files())
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_at_most_250_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().rstrip("\n").split("\n")) <= 250


# --- the `python -m ringq bench` commands the docs quote ---------------------------------

BENCH_COMMAND = re.compile(r"python -m ringq bench(?![-\w])([^`\n|;&)]*)")


def bench_commands(text):
    """The argument strings of every `python -m ringq bench ...` in *text* (code included)."""
    return [m.group(1).strip() for m in BENCH_COMMAND.finditer(text)]


def bench_command_errors(arguments):
    """Why `python -m ringq bench ARGUMENTS` would be refused, or None (nothing is run)."""
    import shlex

    from ringq import __main__ as cli
    from ringq.bench import registry

    # "N" stands for a number in prose (`--rounds N`); a comment ends the command.
    words = ["5" if w == "N" else w for w in shlex.split(arguments, comments=True)]
    try:
        args = cli.build_parser().parse_args(["bench", *words])
    except SystemExit:
        return f"the parser refuses: {arguments}"
    # Every name the runner accepts: queue workloads, contests and contest groups.
    known = set(registry.WORKLOADS) | set(registry.CONTESTS) | set(registry.ALIASES)
    names = [n.strip() for value in (args.workload or []) for n in value.split(",")]
    unknown = [n for n in names if n and n not in known]
    return f"unknown workload(s) {unknown} in: {arguments}" if unknown else None


def test_the_bench_command_check_can_fail():
    assert bench_commands("run `python -m ringq bench --workload pair,nope` and\n"
                          "python -m ringq bench-async --rounds 5") == ["--workload pair,nope"]
    assert "unknown workload(s) ['nope']" in bench_command_errors("--workload pair,nope")
    assert "refuses" in bench_command_errors("--rounds 2")
    assert bench_command_errors("--rounds N   # the minimum is 5") is None
    assert bench_command_errors("--workload priority,broadcast --rounds 9 --json run-N.json") is None
    for group in ("process", "processes", "toolkit", "async", "pool-map,loop-lag"):
        assert bench_command_errors(f"--workload {group} --rounds 5") is None


@pytest.mark.parametrize("path", _docblocks.doc_files())
def test_quoted_bench_commands_name_real_workloads_and_options(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    errors = [e for e in map(bench_command_errors, bench_commands(text)) if e]
    assert errors == []
