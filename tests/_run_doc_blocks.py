"""Child process of tests/test_docs.py: run a page's Python blocks in one namespace.

Reads JSON from stdin: {"path": ..., "blocks": [[line, source], ...]}. Each block is
compiled with the Markdown file as its file name and its own line numbers, so a
traceback points at the line of the page. Prints "ringq implementation: NAME" last.
"""
import ast
import asyncio
import inspect
import json
import sys


def main():
    job = json.load(sys.stdin)
    namespace = {"__name__": "__main__"}
    for line, source in job["blocks"]:
        code = compile("\n" * (line - 1) + source, job["path"], "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        print(f"--- {job['path']}:{line}", flush=True)
        if code.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(code, namespace))
        else:
            exec(code, namespace)
    import ringq

    print(f"ringq implementation: {ringq.IMPLEMENTATION}", flush=True)


if __name__ == "__main__":
    main()
