"""DeepPot-SE energy model (se_e2_a descriptor + per-type energy fitting), DeePMD-kit v3 compatible.

Two layers:

* :class:`DeepPotModule`, a Flax (linen) module: pair vectors in per-type sections ->
  atomic energies.  Its variables are ``{"params": ..., "constants": ...}``: ``params`` are
  the trainable weights (embedding and fitting nets), ``constants`` the statistics that
  training does not touch (``davg``/``dstd`` (T, S, 4), ``bias_atom_e`` and ``out_bias``
  (T,), eV, and ``out_std`` (T,) kept only for ``.dp`` export).
* :class:`DeepPot`, the user-facing model: configuration + module + pure energy functions::

      model = DeepPot(config)                     # or: model, variables = load_model("m.dp")
      variables = model.init(seed=0)
      e = model.energy(variables, positions, cell, types, nbrs)
      e, f, w = model.energy_forces_virial(variables, positions, cell, types, nbrs)

  ``positions`` (N, 3) Å, ``cell`` (3, 3) rows are vectors, ``types`` (N,) ints in the
  model's ``type_map`` (negative = padding atom: contributes nothing and is seen by no one).
  ``nbrs`` is a :class:`glassjax.neighbors.NeighborList` (built with cutoff >= rcut, any
  skin; used inside jit by the MD engine), precomputed :class:`~glassjax.model.nlist.Sections`,
  or None (outside jit: a list is built here).  Forces are -dE/dx and the virial
  -dE/d(strain) (extensive, eV, DeePMD sign), by :func:`glassjax.potential.energy_forces_virial`.

Speed: when ``types`` is a concrete (numpy or non-traced) array, atoms are grouped by type
with static indices, so each per-type net runs only on its atoms; with traced types (e.g.
padded training batches passed as jit arguments) every per-type net runs on every atom and
the result is selected, which is exact but slower.  Close over ``types`` in MD.

Precision: the model computes in ``dtype`` (chosen explicitly: ``DeepPot(config,
dtype="float32")``; default: float64 when JAX x64 is on, else float32); positions, cell and
variables are cast to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors as nbl
from glassjax.compile_cache import free_compiled_if_crowded
from glassjax.model import nlist as dpnl
from glassjax.model.descriptor import DescriptorConfig, DescriptorSeA
from glassjax.model.env_mat import environment_matrix, normalise
from glassjax.model.fitting import EnergyFitting, FittingConfig
from glassjax.model import pairtab
from glassjax.model.pairtab import ZBLConfig
from glassjax.model.typegroups import TypeCapacity, capacity_overflow


@dataclass(frozen=True)
class DeepPotConfig:
    """Descriptor + fitting configuration of a DeepPot-SE energy model."""

    descriptor: DescriptorConfig
    fitting: FittingConfig = field(default_factory=FittingConfig)
    zbl: Optional[ZBLConfig] = None     # DP + tabulated pair repulsion (DeePMD-kit's "zbl" model)

    @property
    def type_map(self):
        return self.descriptor.type_map

    @property
    def ntypes(self) -> int:
        return self.descriptor.ntypes

    @property
    def rcut(self) -> float:
        return float(self.descriptor.rcut)

    @property
    def sel(self):
        return self.descriptor.sel

    def to_dict(self) -> Dict[str, Any]:
        out = {"descriptor": {k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in dataclasses.asdict(self.descriptor).items()},
               "fitting": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in dataclasses.asdict(self.fitting).items()}}
        if self.zbl is not None:
            out["zbl"] = self.zbl.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DeepPotConfig":
        from glassjax.errors import ConfigError

        try:
            zbl = data.get("zbl")
            return cls(DescriptorConfig(**data["descriptor"]), FittingConfig(**data.get("fitting", {})),
                       None if zbl is None else ZBLConfig.from_dict(zbl))
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"invalid DeepPot configuration: {exc}") from None

    @classmethod
    def paper(cls, type_map=("Li", "B", "Si", "O"), sel=(40, 40, 40, 100)) -> "DeepPotConfig":
        """The 2022/2024 papers' size: rcut 6.0, rcut_smth 5.8, embedding [25, 50, 100],
        axis 16, fitting [240, 240, 240]."""
        return cls(DescriptorConfig(type_map=tuple(type_map), rcut=6.0, rcut_smth=5.8, sel=tuple(sel),
                                    neuron=(25, 50, 100), axis_neuron=16),
                   FittingConfig(neuron=(240, 240, 240)))


class DeepPotModule(nn.Module):
    """Atomic energies from pair vectors in per-type sections.

    ``__call__(rij, valid, types, static_types=None)``:
        rij (N, S, 3) Å, valid (N, S) bool, types (N,) int -> (N,) atomic energies, eV.
    """

    config: DeepPotConfig
    dtype: Any = jnp.float64

    @nn.compact
    def __call__(self, rij, valid, types, static_types=None, touch_all: bool = False,
                 return_descriptor: bool = False):
        dc = self.config.descriptor
        t_n, s_n = dc.ntypes, dc.nnei
        dt = self.dtype
        davg = self.variable("constants", "davg", lambda: jnp.zeros((t_n, s_n, 4), dt)).value
        dstd = self.variable("constants", "dstd", lambda: jnp.ones((t_n, s_n, 4), dt)).value
        bias_atom_e = self.variable("constants", "bias_atom_e", lambda: jnp.zeros((t_n,), dt)).value
        out_bias = self.variable("constants", "out_bias", lambda: jnp.zeros((t_n,), dt)).value
        self.variable("constants", "out_std", lambda: jnp.ones((t_n,), dt))
        env = environment_matrix(rij, valid, dc.rcut, dc.rcut_smth, dc.switch, dc.env_protection)
        rr = normalise(env, types, davg, dstd)
        d = DescriptorSeA(dc, dt, name="descriptor")(rr, types, static_types, touch_all)
        e = EnergyFitting(self.config.fitting, t_n, dt, name="fitting")(d, types, static_types, touch_all)
        real = types >= 0
        t = jnp.where(real, types, 0)
        if self.config.zbl is None:
            e = e + bias_atom_e[t] + out_bias[t]
        else:
            e = self._with_pair_table(rij, valid, t, e + bias_atom_e[t], out_bias[t])
        e = jnp.where(real, e, 0.0)
        if return_descriptor:
            return e, d
        return e

    def _with_pair_table(self, rij, valid, t, e_dp, out_bias_atom):
        """DeePMD-kit's DP + ZBL atomic energy (see :mod:`glassjax.model.pairtab`)."""
        zc = self.config.zbl
        dc = self.config.descriptor
        dt = self.dtype
        tab = self.variable("constants", "pairtab_data",
                            lambda: jnp.zeros((dc.ntypes, dc.ntypes, max(zc.nspline, 1), 4), dt)).value
        self.variable("constants", "pairtab_vdata", lambda: jnp.zeros((max(zc.nrows, 1), max(zc.ncols, 1)), dt))
        r = jnp.sqrt(jnp.sum(jnp.where(valid[..., None], rij, 1.0) ** 2, axis=-1))
        tj = jnp.asarray(np.repeat(np.arange(dc.ntypes), dc.sel), jnp.int32)      # (S,) section types
        e_pair = 0.5 * jnp.sum(pairtab.pair_energies(tab, zc, t, tj, r, valid), axis=-1)
        w = pairtab.zbl_weight(pairtab.softmin_distance(r, valid, zc.smin_alpha), zc.sw_rmin, zc.sw_rmax)
        return pairtab.combine(e_dp, e_pair, w, out_bias_atom)


def _static_types(types):
    if isinstance(types, jax.core.Tracer):
        return None
    return np.asarray(types)


def cast_variables(variables, dtype):
    """Cast every floating leaf of ``variables`` to ``dtype``."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x,
        variables)


class DeepPot:
    """A DeepPot-SE model: configuration, Flax module and pure energy functions."""

    def __init__(self, config: DeepPotConfig, dtype=None):
        from glassjax.precision import default_float, resolve_dtype

        self.config = config
        self.dtype = default_float() if dtype is None else resolve_dtype(
            dtype if isinstance(dtype, str) else jnp.dtype(dtype).name)
        self.module = DeepPotModule(config, self.dtype)

    # -- basic properties -------------------------------------------------------------
    @property
    def type_map(self):
        return self.config.type_map

    @property
    def rcut(self) -> float:
        return self.config.rcut

    @property
    def sel(self):
        return self.config.sel

    def with_dtype(self, dtype) -> "DeepPot":
        """The same model computing in another precision (cast variables with :func:`cast_variables`)."""
        return DeepPot(self.config, dtype)

    def types_from_species(self, species) -> np.ndarray:
        """(N,) int types for element symbols; raises ModelError for an element not in type_map."""
        from glassjax.errors import ModelError

        index = {s: i for i, s in enumerate(self.type_map)}
        missing = sorted({str(s) for s in species} - set(index))
        if missing:
            raise ModelError(f"elements {missing} are not in the model's type_map {list(self.type_map)}")
        return np.array([index[str(s)] for s in species], dtype=np.int32)

    # -- parameters -------------------------------------------------------------------
    def init(self, seed: int = 0):
        """Fresh variables ``{"params", "constants"}`` (DeePMD-kit's initialisation)."""
        s = self.config.descriptor.nnei
        rij = jnp.ones((1, s, 3), self.dtype)
        valid = jnp.zeros((1, s), bool)
        types = jnp.zeros((1,), jnp.int32)
        v = jax.jit(lambda key: self.module.init(key, rij, valid, types, None, True))(jax.random.PRNGKey(seed))
        v = nn.unbox(v)
        return {"params": dict(v["params"]), "constants": dict(v["constants"])}

    def n_params(self, variables) -> int:
        return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(variables["params"])))

    # -- neighbours -------------------------------------------------------------------
    def sections(self, positions, cell, types, nbrs=None) -> dpnl.Sections:
        """Per-type sections for this configuration (see :mod:`glassjax.model.nlist`)."""
        if isinstance(nbrs, dpnl.Sections):
            return nbrs
        if isinstance(nbrs, nbl.NeighborList):
            return dpnl.sections_from_neighbor_list(positions, cell, jnp.asarray(types), nbrs,
                                                    self.rcut, self.sel)
        if nbrs is None:
            if isinstance(positions, jax.core.Tracer) or isinstance(cell, jax.core.Tracer):
                from glassjax.errors import ConfigError

                raise ConfigError("DeepPot.energy inside jit/grad needs a neighbour list: pass a "
                                  "glassjax.neighbors.NeighborList or model.sections(...) as `nbrs`")
            return dpnl.build_sections(positions, cell, types, self.rcut, self.sel)
        from glassjax.errors import ConfigError

        raise ConfigError(f"nbrs must be a NeighborList, Sections or None, not {type(nbrs).__name__}")

    def neighbor_list(self, positions, cell, skin: float = 1.0, types=None, **kwargs):
        """Allocate a :class:`glassjax.neighbors.NeighborList` for this model (outside jit).

        Returns ``(neighbor_list, spec)``.  Unless ``capacity`` is given it is 1.2 times the
        largest neighbour count within ``rcut + skin`` rounded up to a multiple of 16, so
        that similar structures share compiled shapes.
        """
        mask = None if types is None else jnp.asarray(np.asarray(types) >= 0)
        positions = jnp.asarray(positions, self.dtype)
        cell = np.asarray(cell, dtype=np.float64)
        if kwargs.get("capacity") is None:
            images = nbl.images_needed(cell, self.rcut + skin + kwargs.get("image_margin", 0.0))
            probe = nbl.build(positions, jnp.asarray(cell, self.dtype),
                              nbl.NeighborSpec(self.rcut, skin, 1, images), mask)
            kwargs["capacity"] = int(16 * np.ceil((1.2 * int(probe.max_count) + 1) / 16))
        return nbl.allocate(positions, cell, cutoff=self.rcut, skin=skin, atom_mask=mask, **kwargs)

    # -- energies ---------------------------------------------------------------------
    # Each public method runs its traced implementation directly when called inside a
    # transformation (jit/grad/vmap), and otherwise through a jit-compiled copy cached per
    # (method, atom types): eager op-by-op evaluation of the model would be very slow.

    def _run(self, kind, variables, positions, cell, types, nbrs, **kw):
        impl = getattr(self, "_" + kind)
        if _is_traced(variables, positions, cell, types, nbrs):
            return impl(variables, positions, cell, types, nbrs, **kw)
        types_np = np.asarray(types, dtype=np.int32)
        positions = jnp.asarray(positions, self.dtype)
        cell = jnp.asarray(cell, self.dtype)
        if nbrs is None:
            nbrs, _ = self.neighbor_list(positions, cell, skin=0.0, types=types_np)
        key = (kind, types_np.tobytes(), tuple(sorted(kw.items())))
        cache = self.__dict__.setdefault("_jit_cache", {})
        fn = cache.get(key)
        if fn is None:
            if len(cache) > 32:
                cache.clear()
            # every compiled copy holds ~900 memory mappings: free old ones before the kernel's
            # limit turns the next compilation into a segfault (glassjax.compile_cache)
            free_compiled_if_crowded()
            fn = jax.jit(lambda v, x, c, nb: impl(v, x, c, types_np, nb, **kw))
            cache[key] = fn
        return fn(variables, positions, cell, nbrs)

    def _prepare(self, variables, positions, cell, types, nbrs, type_capacity=None):
        positions = jnp.asarray(positions, self.dtype)
        cell = jnp.asarray(cell, self.dtype)
        static = _static_types(types)
        if static is None and type_capacity is not None:
            static = TypeCapacity(_caps(type_capacity))
        types_j = jnp.asarray(types, jnp.int32)
        sec = self.sections(positions, cell, types_j, nbrs)
        rij = dpnl.section_pair_vectors(positions, cell, sec)
        return rij, sec, types_j, static

    def _atomic_energies(self, variables, positions, cell, types, nbrs, with_aux=False, type_capacity=None):
        rij, sec, types_j, static = self._prepare(variables, positions, cell, types, nbrs, type_capacity)
        e = self.module.apply(variables, rij, sec.valid, types_j, static)
        if with_aux:
            overflow = sec.overflow | capacity_overflow(types_j, static)
            return e, {"overflow": overflow, "counts": sec.counts}
        return e

    def atomic_energies(self, variables, positions, cell, types, nbrs=None, with_aux: bool = False,
                        type_capacity=None):
        """(N,) atomic energies, eV (zero for padding atoms).

        With ``with_aux`` also returns ``{"overflow": () bool, "counts": (N, T) int}``: overflow
        means a neighbour list or a ``sel`` section was too small (or a type outnumbers its
        ``type_capacity``) and the result is invalid.

        ``type_capacity``: optional per-type atom bound (T,) ints for traced ``types`` (e.g. a
        padded batch under ``vmap``): each type's nets then run on that many rows only
        (:mod:`glassjax.model.typegroups`) instead of every net on every atom.
        """
        return self._run("atomic_energies", variables, positions, cell, types, nbrs, with_aux=with_aux,
                         type_capacity=_caps(type_capacity))

    def _energy(self, variables, positions, cell, types, nbrs):
        return jnp.sum(self._atomic_energies(variables, positions, cell, types, nbrs))

    def energy(self, variables, positions, cell, types, nbrs=None):
        """Total energy, eV (a scalar in the model's dtype)."""
        return self._run("energy", variables, positions, cell, types, nbrs)

    def energy_fn(self, variables, types, strict: bool = True, type_capacity=None):
        """``fn(positions, cell, nbrs) -> E`` for :mod:`glassjax.potential` and the MD engine.

        ``strict`` (default): the energy is NaN when a type has more neighbours within rcut
        than ``sel`` (or the neighbour list overflowed), so the MD engine's blow-up check
        stops the run instead of continuing with a truncated environment, which DeePMD-kit
        does silently.  ``strict=False`` returns DeePMD-kit's truncated energy.
        ``type_capacity``: see :meth:`atomic_energies` (for traced ``types``).
        """

        def fn(positions, cell, nbrs=None):
            if not strict:
                return jnp.sum(self.atomic_energies(variables, positions, cell, types, nbrs,
                                                    type_capacity=type_capacity))
            e, aux = self.atomic_energies(variables, positions, cell, types, nbrs, with_aux=True,
                                          type_capacity=type_capacity)
            return jnp.sum(e) + jnp.where(aux["overflow"], jnp.nan, 0.0)

        return fn

    def _descriptor(self, variables, positions, cell, types, nbrs):
        rij, sec, types_j, static = self._prepare(variables, positions, cell, types, nbrs)
        _, d = self.module.apply(variables, rij, sec.valid, types_j, static, return_descriptor=True)
        return d

    def descriptor(self, variables, positions, cell, types, nbrs=None):
        """(N, M1*M2) descriptors (for stage-by-stage comparisons)."""
        return self._run("descriptor", variables, positions, cell, types, nbrs)

    def _energy_forces_virial(self, variables, positions, cell, types, nbrs, with_aux=False, type_capacity=None):
        positions = jnp.asarray(positions, self.dtype)
        cell = jnp.asarray(cell, self.dtype)

        def efn(x, c, e_strain):
            d = jnp.eye(3, dtype=c.dtype) + e_strain
            e, a = self._atomic_energies(variables, x @ d, c @ d, types, nbrs, with_aux=True,
                                         type_capacity=type_capacity)
            return jnp.sum(e), (a, e)

        zero = jnp.zeros((3, 3), cell.dtype)
        (energy, (a, atom_e)), (gx, ge) = jax.value_and_grad(efn, argnums=(0, 2), has_aux=True)(
            positions, cell, zero)
        if not with_aux:
            return energy, -gx, -ge
        return energy, -gx, -ge, {"overflow": a["overflow"], "counts": a["counts"], "atom_energy": atom_e}

    def energy_forces_virial(self, variables, positions, cell, types, nbrs=None, with_aux: bool = False,
                             type_capacity=None):
        """``(E, F (N, 3), W (3, 3))``: forces -dE/dx (eV/Å), virial -dE/d(strain) (eV, extensive),
        as :func:`glassjax.potential.energy_forces_virial` defines them.

        With ``with_aux`` a fourth item ``{"overflow", "counts", "atom_energy"}`` is returned.
        ``type_capacity``: see :meth:`atomic_energies` (for traced ``types``).
        """
        return self._run("energy_forces_virial", variables, positions, cell, types, nbrs, with_aux=with_aux,
                         type_capacity=_caps(type_capacity))


def _caps(type_capacity):
    """A hashable tuple of ints (or None) for the jit cache key."""
    if type_capacity is None:
        return None
    if isinstance(type_capacity, TypeCapacity):
        type_capacity = type_capacity.capacity
    return tuple(int(c) for c in type_capacity)


def _is_traced(*trees) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(trees))
