"""Build the notebooks in ``notebooks/`` from their plain-Python sources in ``_build/src/``.

The sources use the "percent" cell format (as jupytext / VS Code / Spyder read it)::

    # %% [markdown]
    # # A title
    # Some text.

    # %%
    code = 1

Each ``# %%`` line starts a code cell, ``# %% [markdown]`` a markdown cell whose lines lose
their leading ``# ``.  The notebooks are written without outputs (commit-ready), with the
``python3`` kernel, atomically.  Run from anywhere::

    python notebooks/_build/make_notebooks.py            # all sources
    python notebooks/_build/make_notebooks.py 01_quickstart
    python notebooks/_build/make_notebooks.py --check    # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
NOTEBOOKS = HERE.parent


def parse_cells(text: str):
    """``[(kind, source), ...]`` with kind ``"code"`` or ``"markdown"``, from percent-format text."""
    cells, kind, lines = [], None, []

    def flush():
        if kind is not None:
            body = "\n".join(lines).strip("\n")
            if body:
                cells.append((kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
            continue
        if kind == "markdown":
            if line.startswith("# "):
                line = line[2:]
            elif line.strip() == "#":
                line = ""
        if kind is not None:
            lines.append(line)
    flush()
    return cells


def build(src: Path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, body in parse_cells(src.read_text()):
        nb.cells.append(nbformat.v4.new_code_cell(body) if kind == "code" else nbformat.v4.new_markdown_cell(body))
    # stable cell ids: the diff of a rebuilt notebook shows only what changed
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{src.stem.split('_')[0]}-{i:03d}"
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="source stems (default: all in _build/src)")
    ap.add_argument("--check", action="store_true", help="only check that the notebooks are up to date")
    args = ap.parse_args(argv)
    srcs = [SRC / f"{n}.py" for n in args.names] if args.names else sorted(SRC.glob("*.py"))
    stale = []
    for src in srcs:
        target = NOTEBOOKS / f"{src.stem}.ipynb"
        text = nbformat.writes(build(src)) + "\n"
        if args.check:
            if not target.is_file() or target.read_text() != text:
                stale.append(target.name)
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        tmp.replace(target)
        print(f"wrote {target.relative_to(NOTEBOOKS.parent)}")
    if stale:
        print("out of date (run notebooks/_build/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
