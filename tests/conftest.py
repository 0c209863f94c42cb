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
# already set by the caller is kept (and wins if it sets the same flag).
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
