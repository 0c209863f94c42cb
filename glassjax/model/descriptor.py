"""The se_e2_a (DeepPot-SE) descriptor as a Flax module.

Given the normalised environment matrix ``R`` (N, S, 4) split into per-type sections of
width ``sel[t]`` (:mod:`glassjax.model.nlist`), the embedding matrix ``G`` has one row per
slot, ``G_j = N_e(R_j0)`` (the embedding net of the neighbour type, or of the (centre,
neighbour) type pair when ``type_one_side`` is False), and (DeePMD-kit v3,
``deepmd/dpmodel/descriptor/se_e2_a.py``; Zhang et al. 2018, Eq. of D^i)::

    T = G^T R / sum(sel)                  (M1, 4)
    D = T T_<^T                           (M1, M2),  T_< = first M2 = axis_neuron rows of T

flattened row-major to ``M1 * M2`` features.  Every slot counts, empty ones included (their
normalised rows are ``-davg/dstd``), exactly as in DeePMD-kit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from glassjax.model.networks import EmbeddingNet
from glassjax.model.typegroups import gather_rows, rows_of_type, scatter_rows


@dataclass(frozen=True)
class DescriptorConfig:
    """Hyper-parameters of se_e2_a (names as in DeePMD-kit's input script).

    Attributes:
        type_map: element of each type, e.g. ``("Li", "B", "Si", "O")``.
        rcut: cutoff radius, Å.
        rcut_smth: where the switch starts, Å.
        sel: maximum neighbours of each type within ``rcut`` (section widths).
        neuron: embedding-net widths M1 = neuron[-1].
        axis_neuron: M2, columns of the sub-matrix G_<.
        type_one_side: one embedding net per neighbour type (True) or per (centre,
            neighbour) type pair (False; DeePMD-kit's input default).
        resnet_dt: timestep vectors on the embedding-net skip connections.
        activation: activation function of the embedding nets.
        switch: ``"quintic"`` (DeePMD-kit) or ``"cosine"`` (the 2022 paper's Eq. 2).
        env_protection: DeePMD-kit's ``env_protection`` p (1/(r+p)); 0 by default.
        set_davg_zero: keep davg at zero when computing statistics.
        precision: precision of the parameters in the model file (``float64``/``float32``).
    """

    type_map: Tuple[str, ...]
    rcut: float = 6.0
    rcut_smth: float = 0.5
    sel: Tuple[int, ...] = ()
    neuron: Tuple[int, ...] = (25, 50, 100)
    axis_neuron: int = 16
    type_one_side: bool = False
    resnet_dt: bool = False
    activation: str = "tanh"
    switch: str = "quintic"
    env_protection: float = 0.0
    set_davg_zero: bool = False
    precision: str = "float64"

    def __post_init__(self):
        from glassjax.errors import ConfigError

        object.__setattr__(self, "type_map", tuple(str(t) for t in self.type_map))
        object.__setattr__(self, "sel", tuple(int(s) for s in self.sel))
        object.__setattr__(self, "neuron", tuple(int(s) for s in self.neuron))
        if len(self.sel) != len(self.type_map):
            raise ConfigError(f"descriptor sel {list(self.sel)} must have one entry per type in "
                              f"type_map {list(self.type_map)}")
        if not 0 <= self.rcut_smth < self.rcut:
            raise ConfigError(f"descriptor needs 0 <= rcut_smth < rcut (got rcut_smth={self.rcut_smth}, "
                              f"rcut={self.rcut})")
        if not self.neuron or not 0 < self.axis_neuron <= self.neuron[-1]:
            raise ConfigError(f"descriptor axis_neuron={self.axis_neuron} must be in 1..neuron[-1]="
                              f"{self.neuron[-1] if self.neuron else None}")
        if self.switch not in ("quintic", "cosine"):
            raise ConfigError(f"unknown switch {self.switch!r}: use 'quintic' or 'cosine'")

    @property
    def ntypes(self) -> int:
        return len(self.type_map)

    @property
    def nnei(self) -> int:
        return int(sum(self.sel))

    @property
    def dim_out(self) -> int:
        return self.neuron[-1] * self.axis_neuron

    @property
    def n_embeddings(self) -> int:
        return self.ntypes if self.type_one_side else self.ntypes ** 2

    def embedding_index(self, center_type: int, neighbor_type: int) -> int:
        """Index of the embedding net in DeePMD-kit's collection (``ti + tt * ntypes``)."""
        if self.type_one_side:
            return neighbor_type
        return center_type + neighbor_type * self.ntypes

    @property
    def sel_bounds(self):
        c = np.concatenate([[0], np.cumsum(self.sel)]).astype(int)
        return [(int(c[t]), int(c[t + 1])) for t in range(self.ntypes)]


def _contract(g, rr):
    """(B, s, M1), (B, s, 4) -> (B, M1, 4): sum over slots of G_jm R_jc."""
    return jnp.einsum("bsm,bsc->bmc", g, rr)


class DescriptorSeA(nn.Module):
    """se_e2_a descriptor.  ``__call__(rr, center_types, static_types=None)``.

    Args:
        rr: (N, S, 4) normalised environment matrix in per-type sections.
        center_types: (N,) int types (negative = padding; output row is then garbage-free
            but meaningless and is masked by the energy model).
        static_types: optional numpy (N,) copy of the types (atoms grouped by type with
            static indices, fast) or a :class:`glassjax.model.typegroups.TypeCapacity`
            (traced types, each net runs on at most ``capacity[t]`` rows, as fast); when
            None every net runs on every atom and the results are selected by type.

    Returns:
        (N, M1 * M2) descriptor.
    """

    config: DescriptorConfig
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, rr, center_types, static_types: Optional[np.ndarray] = None, touch_all: bool = False):
        cfg = self.config
        ntypes = cfg.ntypes
        m1 = cfg.neuron[-1]
        n = rr.shape[0]
        nets = [EmbeddingNet(cfg.neuron, cfg.activation, cfg.resnet_dt, self.dtype, name=f"embedding_{k}")
                for k in range(cfg.n_embeddings)]
        bounds = cfg.sel_bounds

        def section_sum(rows, ti):
            """rows: (B, S, 4) -> (B, M1, 4), with the nets of centre type ti."""
            out = jnp.zeros((rows.shape[0], m1, 4), rows.dtype)
            for tt, (a, b) in enumerate(bounds):
                if b == a:
                    continue
                sec = rows[:, a:b, :]
                g = nets[cfg.embedding_index(ti, tt)](sec[..., 0:1])
                out = out + _contract(g, sec)
            return out

        if cfg.type_one_side:
            gr = section_sum(rr, 0)
        elif static_types is not None and not touch_all:
            gr = jnp.zeros((n, m1, 4), rr.dtype)
            for ti in range(ntypes):
                ids = rows_of_type(center_types, static_types, ti, n)
                if ids is not None:
                    gr = scatter_rows(gr, ids, section_sum(gather_rows(rr, ids), ti))
        else:
            gr = jnp.zeros((n, m1, 4), rr.dtype)
            for ti in range(ntypes):
                gr = jnp.where((center_types == ti)[:, None, None], section_sum(rr, ti), gr)
        gr = gr / cfg.nnei
        d = jnp.einsum("nmc,nac->nma", gr, gr[:, :cfg.axis_neuron, :])
        return d.reshape(n, m1 * cfg.axis_neuron)
