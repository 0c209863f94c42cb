"""ASE calculator for glassjax DeepPot-SE models (and DeePMD-kit ``.dp`` files).

    from glassjax.calculator import GlassJaxCalculator
    atoms.calc = GlassJaxCalculator("model.dp")        # or a checkpoint, or (model, variables)
    atoms.calc = GlassJaxCalculator()                  # the shipped default potential (glassjax.pretrained)
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()

ASE conventions: energy in eV, forces eV/Å, stress in eV/Å^3 with ASE's sign (``stress =
-virial / V``, negative under compression) in Voigt order xx, yy, zz, yz, xz, xy.  The
model computes in float64 when JAX x64 is on (``glassjax.precision.enable_x64()``), else
float32, unless ``dtype`` is given.

The neighbour list (:mod:`glassjax.neighbors`, multi-image, any cell size and shape) is
kept between calls and rebuilt when atoms or the cell moved by more than half the skin, or
when the atoms changed.  A neighbour count above the model's ``sel`` raises
:class:`glassjax.errors.ModelError` (DeePMD-kit would silently drop neighbours).
Fully periodic cells and fully non-periodic molecules (placed in a large empty box) are
supported; mixed periodicity is not.
"""

from __future__ import annotations


import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from glassjax.errors import ModelError


class GlassJaxCalculator(Calculator):
    """ASE calculator: energy, free_energy, energies (per atom), forces, stress."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model=None, variables=None, dtype=None, skin: float = 1.0, **kwargs):
        """``model``: a ``.dp`` file, a glassjax checkpoint, ``(DeepPot, variables)``, a DeepPot
        with ``variables``, or ``None`` / ``"default"`` for the shipped default potential
        (:func:`glassjax.pretrained.default_model_path`, member 0 of its ensemble)."""
        super().__init__(**kwargs)
        from glassjax.model import DeepPot, cast_variables, load_model

        if model is None or (isinstance(model, str) and model == "default"):
            from glassjax.pretrained import resolve_model

            model = resolve_model(model)
        if isinstance(model, tuple):
            model, variables = model
        if isinstance(model, DeepPot):
            if variables is None:
                raise ModelError("GlassJaxCalculator(model) with an in-memory DeepPot needs its variables")
            if dtype is not None:
                model = model.with_dtype(dtype)
            variables = cast_variables(variables, model.dtype)
        else:
            model, variables = load_model(model, dtype=dtype)
        self.model = model
        self.variables = variables
        self.skin = float(skin)
        self._nl = None
        self._spec = None
        self._key = None

    # ------------------------------------------------------------------------------
    def _geometry(self, atoms):
        pos = atoms.get_positions()
        pbc = np.asarray(atoms.get_pbc(), bool)
        if pbc.all():
            return pos, np.asarray(atoms.get_cell()[:], float)
        if pbc.any():
            raise ModelError(f"mixed periodicity {pbc.tolist()} is not supported: use a fully periodic "
                             "cell or none")
        # a molecule: an empty box wide enough that no image is within rcut (+ skin)
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        width = hi - lo + 2.0 * (self.model.rcut + self.skin) + 1.0
        return pos - lo, np.diag(width)

    def _neighbors(self, pos, cell, types):
        import jax.numpy as jnp

        from glassjax import neighbors as nbl

        x = jnp.asarray(pos, self.model.dtype)
        c = jnp.asarray(cell, self.model.dtype)
        if self._nl is not None and self._nl.idx.shape[0] == len(pos):
            if not bool(nbl.needs_rebuild(self._nl, x, c, self._spec)):
                return self._nl
            nl = nbl.build(x, c, self._spec)
            if not bool(nl.overflow):
                self._nl = nl
                return nl
        self._nl, self._spec = self.model.neighbor_list(pos, cell, skin=self.skin, types=types)
        # check sel on every fresh list before compiling the energy (cheap, clear error early)
        sec = self.model.sections(x, c, jnp.asarray(types), self._nl)
        if bool(sec.overflow) and not bool(self._nl.overflow):
            self._raise_sel(sec.counts)
        return self._nl

    def _raise_sel(self, counts):
        counts = np.asarray(counts).max(axis=0)
        raise ModelError(
            f"an atom has more neighbours within rcut={self.model.rcut} Å than the model's sel "
            f"{list(self.model.sel)} allows (largest counts per type: {counts.tolist()}, "
            f"type_map {list(self.model.type_map)}); DeePMD-kit would silently drop them. The "
            "structure is denser than the training data, or sel must be raised and the model retrained")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        import jax.numpy as jnp

        atoms = self.atoms
        types = self.model.types_from_species(atoms.get_chemical_symbols())
        pos, cell = self._geometry(atoms)
        if self._key != types.tobytes():
            self._nl, self._key = None, types.tobytes()
        for attempt in range(2):
            nl = self._neighbors(pos, cell, types)
            # compiled once per (model, atom types, list shape), cached on the model
            e, f, w, aux = self.model.energy_forces_virial(self.variables, jnp.asarray(pos, self.model.dtype),
                                                           jnp.asarray(cell, self.model.dtype), types, nl,
                                                           with_aux=True)
            if not bool(nl.overflow):
                break
            self._nl = None  # list overflowed on reuse: reallocate once
        if bool(nl.overflow):
            raise ModelError("the neighbour list overflowed even after reallocation")
        if bool(aux["overflow"]):
            self._raise_sel(aux["counts"])
        volume = abs(np.linalg.det(cell))
        w = np.asarray(w, dtype=np.float64)
        energy = float(e)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = np.asarray(aux["atom_energy"], dtype=np.float64)
        self.results["forces"] = np.asarray(f, dtype=np.float64)
        if atoms.get_pbc().all():
            s = -w / volume
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a periodic cell")


class PotentialCalculator(Calculator):
    """ASE calculator around any glassjax potential: ``energy_fn(positions, cell, nl) -> E``.

    For the classical Teter/Du potential, an ensemble mean, or any energy function the MD
    engine runs (``GlassJaxCalculator`` is the specialised one for DeepPot-SE models).

    Args:
        make_energy_fn: ``make_energy_fn(symbols) -> energy_fn``; called again whenever the
            atoms' species change (e.g. ``lambda s: teter_du_energy_fn(s, table)``).
        cutoff: the potential's cutoff, Å (the neighbour list is built for cutoff + skin).
        skin: neighbour-list skin, Å; the list is rebuilt only when atoms moved too far.

    Results: energy (eV), forces (eV/Å), stress (ASE convention, eV/Å^3, Voigt order) from
    the virial by strain differentiation (:func:`glassjax.potential.energy_forces_virial`).
    Atoms must be fully periodic.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, make_energy_fn, cutoff: float, skin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.make_energy_fn = make_energy_fn
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self._species = None
        self._efv = None
        self._nl = self._spec = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        import jax
        import jax.numpy as jnp

        from glassjax import neighbors as nbl
        from glassjax.potential import energy_forces_virial

        super().calculate(atoms, properties, system_changes)
        if not self.atoms.get_pbc().all():
            raise ModelError("PotentialCalculator needs a fully periodic cell")
        species = tuple(self.atoms.get_chemical_symbols())
        if species != self._species:
            efn = self.make_energy_fn(list(species))
            self._efv = jax.jit(lambda x, c, nl: energy_forces_virial(efn, x, c, nl))
            self._species, self._nl = species, None
        pos = jnp.asarray(self.atoms.get_positions())
        cell = jnp.asarray(np.asarray(self.atoms.get_cell()[:], dtype=float))
        if self._nl is not None and bool(nbl.needs_rebuild(self._nl, pos, cell, self._spec)):
            self._nl = nbl.build(pos, cell, self._spec)
        if self._nl is None or bool(self._nl.overflow):
            self._nl, self._spec = nbl.allocate(pos, cell, cutoff=self.cutoff, skin=self.skin)
        e, f, w = self._efv(pos, cell, self._nl)
        w = np.asarray(w, dtype=np.float64)
        s = -w / abs(np.linalg.det(np.asarray(cell)))
        self.results.update(energy=float(e), free_energy=float(e), forces=np.asarray(f, dtype=np.float64),
                            stress=np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]))
