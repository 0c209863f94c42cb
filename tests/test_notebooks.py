"""Execute every notebook in notebooks/ at its CI size (GLASSJAX_NOTEBOOK_SIZE=ci).

Each notebook runs top to bottom in a fresh ``python3`` kernel with nbclient, in a temporary
working directory (its outputs land in ``tmp_path/notebook_out``); any error in any cell fails
the test with the cell's traceback.  Notebooks are collected by glob, so new ones (e.g.
03_sensitivity.ipynb) are picked up automatically; one test per notebook, so pytest-xdist
spreads them over workers.

Also checked: the committed notebooks carry no outputs, and they are in sync with their
sources in notebooks/_build/src/ (when a source exists).
"""

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 600  # s per cell: CI size cells take seconds; this only catches hangs


def _kernel_env(tmp_path):
    env = dict(os.environ)
    env.update(GLASSJAX_NOTEBOOK_SIZE="ci", GLASSJAX_NOTEBOOK_OUT=str(tmp_path / "notebook_out"),
               GLASSJAX_REPO=str(REPO), MPLBACKEND="Agg", JAX_PLATFORMS=env.get("JAX_PLATFORMS", "cpu"))
    # CI-size notebooks spend most of their time compiling: XLA's backend optimisation off
    # compiles about twice as fast (the sensitivity notebook: 360 s -> 160 s on 2 cores)
    if "xla_backend_optimization_level" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]))
    # the kernel runs the package from this checkout even without an editable install
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def test_notebooks_found():
    names = [p.name for p in NOTEBOOKS]
    for expected in ("01_quickstart.ipynb", "02_batch_compositions.ipynb", "04_uncertainty.ipynb"):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "GLASSJAX_NOTEBOOK_SIZE" in first_code.source, f"{path.name}: the size switch must be in the first code cell"


@pytest.mark.parametrize("path", sorted((NOTEBOOK_DIR / "_build" / "src").glob("*.py")),
                         ids=lambda p: p.stem)
def test_notebook_matches_its_source(path):
    sys.path.insert(0, str(NOTEBOOK_DIR / "_build"))
    try:
        import make_notebooks
    finally:
        sys.path.pop(0)
    target = NOTEBOOK_DIR / f"{path.stem}.ipynb"
    assert target.is_file(), f"{target.name} missing: run python notebooks/_build/make_notebooks.py"
    built = nbformat.writes(make_notebooks.build(path)) + "\n"
    assert target.read_text() == built, f"{target.name} is out of date: run python notebooks/_build/make_notebooks.py"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    env = _kernel_env(tmp_path)
    try:
        client.execute(env=env, cwd=str(tmp_path))
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed at CI size:\n{exc}", pytrace=False)
    # every code cell ran, and the notebook wrote its outputs under the temporary folder only
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip())
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "notebook_out").is_dir()
