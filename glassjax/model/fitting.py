"""The energy fitting nets of DeepPot-SE as a Flax module.

Atomic energy of atom i with type t_i (DeePMD-kit v3 ``EnergyFittingNet`` + atomic model)::

    E_i = F_{t_i}(D_i) + bias_atom_e[t_i] + out_bias[t_i]

with one fitting net per type (``mixed_types`` False, the se_e2_a case) or a single shared
net (``mixed_types`` True).  The two biases are kept apart because DeePMD-kit's ``.dp``
files store both (``bias_atom_e`` is usually zero in v3 models, ``out_bias`` carries the
per-type energy shift); both are constants, not trained parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from glassjax.model.networks import FittingNet
from glassjax.model.typegroups import gather_rows, rows_of_type, scatter_rows


@dataclass(frozen=True)
class FittingConfig:
    """Hyper-parameters of the energy fitting nets (DeePMD-kit names).

    Attributes:
        neuron: hidden-layer widths (the paper: 240, 240, 240).
        resnet_dt: timestep vectors on the skip connections (DeePMD-kit default True).
        activation: activation function of the hidden layers.
        mixed_types: one net shared by all types (False: one net per type, se_e2_a's case).
        precision: parameter precision in the model file.
    """

    neuron: Tuple[int, ...] = (240, 240, 240)
    resnet_dt: bool = True
    activation: str = "tanh"
    mixed_types: bool = False
    precision: str = "float64"

    def __post_init__(self):
        object.__setattr__(self, "neuron", tuple(int(s) for s in self.neuron))


class EnergyFitting(nn.Module):
    """``__call__(d, center_types, static_types=None) -> (N,)`` net outputs (no biases).

    Args:
        d: (N, D) descriptors.
        center_types: (N,) int types (negative = padding; value then meaningless).
        static_types: optional numpy copy of the types, or a ``TypeCapacity``, for grouping
            by type (:mod:`glassjax.model.typegroups`).
    """

    config: FittingConfig
    ntypes: int
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, d, center_types, static_types: Optional[np.ndarray] = None, touch_all: bool = False):
        cfg = self.config
        n = d.shape[0]
        if cfg.mixed_types:
            net = FittingNet(cfg.neuron, 1, cfg.activation, cfg.resnet_dt, self.dtype, name="net_0")
            return net(d)[:, 0]
        nets = [FittingNet(cfg.neuron, 1, cfg.activation, cfg.resnet_dt, self.dtype, name=f"net_{t}")
                for t in range(self.ntypes)]
        out = jnp.zeros((n,), d.dtype)
        if static_types is not None and not touch_all:
            for t in range(self.ntypes):
                ids = rows_of_type(center_types, static_types, t, n)
                if ids is not None:
                    out = scatter_rows(out, ids, nets[t](gather_rows(d, ids))[:, 0])
        else:
            for t in range(self.ntypes):
                out = jnp.where(center_types == t, nets[t](d)[:, 0], out)
        return out
