"""In MD, a DeepPot-SE whose sel is too small for the structure must not run on silently."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest

from glassjax import neighbors
from glassjax.model import load_model
from glassjax.potential import energy_forces_virial


def test_strict_energy_fn_is_nan_when_sel_truncates(test_data):
    d = test_data / "deepmd_models"
    case = np.load(d / "lbs_pair_smallsel__lbs_small_cubic.npz", allow_pickle=False)
    model, variables = load_model(d / "lbs_pair_smallsel.dp")
    types = np.asarray(case["atype"])
    pos, cell = jnp.asarray(case["positions"]), jnp.asarray(case["cell"])
    nl, _ = neighbors.allocate(pos, np.asarray(cell), cutoff=model.rcut, skin=0.5)
    # not strict: DeePMD-kit's truncated energy (the reference), with finite forces
    loose = model.energy_fn(variables, types, strict=False)
    e, f, _ = energy_forces_virial(loose, pos, cell, nl)
    assert float(e) == pytest.approx(float(case["energy"]), abs=1e-9)
    assert np.all(np.isfinite(np.asarray(f)))
    # strict (the default for MD): NaN, which the MD runner's blow-up check turns into an error
    strict = jax.jit(model.energy_fn(variables, types))
    assert np.isnan(float(strict(pos, cell, nl)))
