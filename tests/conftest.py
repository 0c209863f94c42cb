"""Shared pytest configuration.

Tests run in float64 (an explicit choice made here, never by importing glassjax); a test
that checks float32 behaviour asks for it with explicit dtypes.
"""

from __future__ import annotations

import os
from pathlib import Path

# Test speed: the suite's small systems spend most of their time compiling, and XLA's CPU
# backend optimisations cost more compile time than they save in run time there (measured:
# -17 to -21 % CPU time on the MD, training, demo and implicit-solve tests).  A test-suite
# choice made here, before JAX starts a backend, never by importing glassjax; an XLA_FLAGS
# already set by the caller is kept (and wins if it sets the same flag).  Subprocesses that
# set XLA_FLAGS themselves append to os.environ["XLA_FLAGS"].
_FAST = "--xla_backend_optimization_level=0"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), _FAST]))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
# ../shared/fixtures beside the checkout; GLASSJAX_FIXTURES overrides.
SHARED_FIXTURES = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
B2O3_DIR = SHARED_FIXTURES / "deepmd_npy" / "b2o3_boroxol_jncasr"


# Every XLA:CPU executable keeps its JIT-compiled kernels in memory mappings of its own (a
# DeepPot energy/force/virial function: about 900).  A pytest-xdist worker runs hundreds of
# tests in one process and keeps what they compiled, so it used to reach the kernel's
# vm.max_map_count (65530) about 70 % into the suite, and the next compilation segfaulted
# inside XLA.  Dropping JAX's caches frees them; functions recompile where used again.
@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    from glassjax.compile_cache import free_compiled_if_crowded

    free_compiled_if_crowded(0.4)


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Folder of small, licensed test files shipped with the project (see its SOURCES.md)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def b2o3_dir() -> Path:
    """The unlicensed real B2O3 DFT set, used in place; the test skips when it is absent."""
    if not B2O3_DIR.is_dir():
        pytest.skip(f"B2O3 fixture set not found at {B2O3_DIR} (it is never copied into the project)")
    return B2O3_DIR


@pytest.fixture(scope="session")
def teacher_script():
    """``teacher_script(name)``: import ``train/teacher/<name>.py`` as a module (the scripts
    import each other by bare name, so their folder is on ``sys.path`` while one loads)."""
    import importlib.util
    import sys

    folder = REPO / "train" / "teacher"

    def load(name):
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            return mod
        finally:
            sys.path.pop(0)

    return load
