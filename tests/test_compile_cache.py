"""glassjax.compile_cache: compiled functions are dropped before the process runs out of
memory mappings (vm.max_map_count), and what is recompiled gives the same numbers.

The reference for the mapping count is the kernel's own list (/proc/self/maps) read
line by line here; the reference for the energies is the first evaluation.
"""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest

from glassjax import compile_cache

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")


def _maps():
    return len(Path("/proc/self/maps").read_text().splitlines())


@pytest.fixture(scope="module")
def lb_frames(test_data):
    """Three Li-B-O glass frames of different sizes (each size compiles anew)."""
    a = ase.io.read(test_data / "md_models" / "lb_glass_start.extxyz")
    return [a[: len(a) - k] for k in (0, 2, 4)]


def test_limit_and_count_are_the_kernels():
    assert compile_cache.memory_map_limit() == int(Path("/proc/sys/vm/max_map_count").read_text())
    assert abs(compile_cache.memory_map_count() - _maps()) <= 2     # the two reads see the same process


def test_deeppot_frees_compiled_copies_when_crowded(test_data, lb_frames, monkeypatch):
    import jax

    from glassjax.calculator import GlassJaxCalculator

    jax.clear_caches()
    calc = GlassJaxCalculator(str(test_data / "md_models" / "teter_distilled_lb.dp"))

    def energy(a):
        a = a.copy()
        a.calc = calc
        return a.get_potential_energy(), a.get_forces()

    n0 = _maps()
    e0, f0 = energy(lb_frames[0])
    per_compile = _maps() - n0
    assert per_compile > 100            # XLA:CPU maps each compiled function's kernels apart
    energy(lb_frames[1])
    assert _maps() - n0 > 1.5 * per_compile          # uncrowded: both copies kept

    # a limit the process already exceeds: the next new shape first drops the old copies
    monkeypatch.setattr(compile_cache, "memory_map_limit", lambda: 2 * n0)
    n1 = _maps()
    energy(lb_frames[2])
    assert _maps() < n1                 # two copies freed, one compiled
    assert not compile_cache.free_compiled_if_crowded(limit=10 * _maps())
    e, f = energy(lb_frames[0])         # recompiled: the same numbers
    assert e == pytest.approx(e0, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(f, f0, rtol=1e-10, atol=1e-12)
    assert compile_cache.free_compiled_if_crowded(limit=_maps())
