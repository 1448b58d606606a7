"""Line counts of seed 003's async examples: ringq (examples/) against the stdlib (here).

Counts lines of code: not blank, not only a comment, not in the module docstring.
Run: python benchmarks/seed003_stdlib/count_lines.py
"""
import ast
import io
import os
import tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
NAMES = ["async_bounded_queue", "async_worker_pool", "async_backpressure", "async_adaptive_rate",
         "async_request_queue"]


def code_lines(path):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    doc = ast.parse(source).body[0]
    skip = set(range(doc.lineno, doc.end_lineno + 1)) if isinstance(doc, ast.Expr) else set()
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - skip)


def main():
    print(f"{'example':24} {'ringq':>6} {'stdlib':>7}")
    for name in NAMES:
        ours = code_lines(os.path.join(EXAMPLES, name + ".py"))
        theirs = code_lines(os.path.join(HERE, name + ".py"))
        print(f"{name:24} {ours:6} {theirs:7}")


if __name__ == "__main__":
    main()
