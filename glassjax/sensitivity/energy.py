"""Energy functions with their parameters as an argument: ``energy_of(theta, positions, cell, nl)``.

The sensitivity modules differentiate with respect to ``theta``; glassjax's MD engine uses
``energy_fn(positions, cell, nl)``.  This module turns a DeepPot-SE model into the former.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def deeppot_energy_of(model, variables, types, strict: bool = True) -> Callable:
    """``energy_of(theta, positions, cell, nl) -> E`` (eV) of a :class:`glassjax.model.DeepPot`.

    ``theta`` is ``variables["params"]`` (the trainable Flax parameters, differentiable);
    ``variables["constants"]`` (descriptor normalisation, energy bias) stay fixed.  ``types``:
    (N,) int model types.  ``strict``: NaN energy when ``sel`` truncates a neighbourhood (see
    :meth:`DeepPot.energy_fn`).  Create it once and reuse it: jitted drivers compile once per
    ``energy_of`` object.
    """
    fixed = {k: v for k, v in variables.items() if k != "params"}
    types = np.asarray(types, dtype=np.int32)

    def energy_of(theta, positions, cell, nl):
        return model.energy_fn({**fixed, "params": theta}, types, strict=strict)(positions, cell, nl)

    return energy_of
