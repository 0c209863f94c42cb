"""Is a potential safe to melt on?  A short hot NVT run from a freshly built random glass.

A low held-out force error does not make a potential usable: a model that was never shown
two atoms closer than a bond length can pull them together in a 2500-3000 K melt, where
random starting structures and hot collisions reach such distances within picoseconds
(glassjax's third default-potential candidate did: two atoms 0.125 Å apart by step 500).
:func:`hot_melt_check` runs exactly what a melt-quench starts with:

1. build a random glass of ``composition`` (``n_atoms``, Table II density when known),
2. FIRE-relax it ``relax_steps`` steps,
3. NVT (Nose-Hoover chain) at ``temperature`` K for ``ps`` ps, 1 fs steps,

and reports whether the MD engine's blow-up checks (non-finite values, two atoms closer
than 0.5 Å, a neighbour section overflowing ``sel``) stopped it, or the thermostat lost
control: the mean temperature of the second half of the run more than ``t_tolerance``
(default 25 %) above the target (a short run may still be below it while it equilibrates;
runaway heating is the failure), which is what a model with a spurious deep well does
behind a repulsive wall (atoms fall in, the energy goes into heat faster than the
thermostat removes it, and the integrator stops conserving energy).  It writes into a
temporary folder unless ``workdir`` is given.  ``glassjax model check-melt`` runs it.

:func:`relax_check` is the cheaper companion: random starts of all 18 Table II glasses,
FIRE-relaxed together; a model with a spurious short-range well pulls atoms together
already there (the fifth default candidate, v8, relaxed two B atoms of a Li2O-B2O3 start to
0.08 Å).  ``glassjax model check-relax`` runs it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np


@dataclass
class MeltCheck:
    """Outcome of :func:`hot_melt_check`."""

    ok: bool
    composition: str
    n_atoms: int
    temperature: float
    steps: int
    message: str


def hot_melt_check(model, composition: str = "Li2O-2B2O3", n_atoms: int = 300, temperature: float = 3000.0,
                   ps: float = 2.0, seed: int = 0, relax_steps: int = 200, dt: float = 0.001,
                   precision: str = "float32", t_tolerance: float = 0.25, workdir=None, progress: bool = False,
                   log: Callable[[str], None] = lambda s: None) -> MeltCheck:
    """Run the check for a model file (``.dp`` or checkpoint) or ``"default"``; see the module doc.

    ``precision``: of the MD (float32 as ``glassjax demo`` and most production runs; float64
    needs JAX x64 mode)."""
    from glassjax.demo import build_density, potential_entry, to_toml
    from glassjax.errors import SimulationError
    from glassjax.md import recipe as R

    density, _ = build_density(composition)
    steps = int(round(ps / dt))
    recipe = {
        "potential": potential_entry(str(model)),
        "system": {"composition": composition, "n_atoms": int(n_atoms), "density": float(density), "seed": int(seed)},
        "run": {"output": ".", "chunk": min(500, steps), "every": min(50, steps), "seed": int(seed),
                "precision": str(precision)},
        "stage": [{"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": int(relax_steps)},
                  {"name": "hot", "ensemble": "nvt", "dt": dt, "tau_t": 0.1,
                   "temperature": [["hold", float(temperature), float(ps)]],
                   "initial_temperature": float(temperature)}],
    }
    with tempfile.TemporaryDirectory(prefix="glassjax_meltcheck_") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "recipe.toml"
        path.write_text(to_toml(recipe, header=f"hot-melt check of {model}"))
        rec = R.load_recipe(path)
        try:
            out, atoms = R.run_stages(rec, 0, progress=progress, log=log)
        except SimulationError as exc:
            return MeltCheck(False, composition, int(n_atoms), float(temperature), steps, str(exc))
        t_run = _temperatures(out / "2_hot" / "thermo.csv")
    ok, what = temperature_verdict(t_run, temperature, t_tolerance)
    if not ok:
        keep = "" if workdir is not None else " (keep the run with `glassjax model check-melt ... -o DIR`)"
        return MeltCheck(False, composition, len(atoms), float(temperature), steps,
                         f"{composition}: the thermostat lost control: {what}; the model has a spurious well "
                         f"(look for unphysically short bonds in the trajectory{keep})")
    return MeltCheck(True, composition, len(atoms), float(temperature), steps,
                     f"{composition}: {len(atoms)} atoms stayed intact for {ps:g} ps at {temperature:g} K ({what})")


def temperature_verdict(t_run, target: float, tolerance: float = 0.25):
    """``(ok, summary)``: is the mean of the second half of the temperature log ``t_run`` (K)
    at most ``(1 + tolerance) * target``?  (Below the target is fine: a short run may still be
    equilibrating.)  An empty log is not ok."""
    t_run = np.asarray(t_run, dtype=float)
    if t_run.size == 0:
        return False, "no temperatures were logged"
    t_mean = float(np.mean(t_run[t_run.size // 2:]))
    summary = f"second-half mean {t_mean:.0f} K, highest {float(np.max(t_run)):.0f} K, target {target:g} K"
    return bool(t_mean <= (1.0 + tolerance) * target), summary


def _temperatures(thermo_csv: Path) -> np.ndarray:
    """The T_K column of a glassjax thermo log (empty if the file is missing)."""
    if not Path(thermo_csv).is_file():
        return np.zeros(0)
    import csv

    with open(thermo_csv, newline="") as f:
        return np.array([float(row["T_K"]) for row in csv.DictReader(f)])


# ----------------------------------------------------------------------------- relaxation check

#: Closest distance (Å) any two atoms of an oxide glass may have after relaxing a random start:
#: below the shortest real bond (B-O ~1.37 Å in BO3, ~1.47 Å in BO4) by a wide margin.
RELAX_FLOOR = 1.0


@dataclass
class RelaxCheck:
    """Outcome of :func:`relax_check`: ``rows`` has one dict per glass (glass, atoms,
    residual force eV/Å, closest pair, its distance Å); ``structures`` the relaxed glasses."""

    ok: bool
    rows: list
    structures: list
    message: str


def closest_pair(atoms, cutoff: float = 2.5):
    """``(distance Å, "A-B")`` of the closest two atoms of a periodic structure (ASE's
    neighbour list within ``cutoff``; ``(inf, "")`` if no pair is that close)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    if d.size == 0:
        return float("inf"), ""
    k = int(np.argmin(d))
    sym = atoms.get_chemical_symbols()
    return float(d[k]), "-".join(sorted((sym[int(i[k])], sym[int(j[k])])))


def relax_verdict(rows, floor: float = RELAX_FLOOR):
    """``(ok, message)``: is every glass's closest pair at least ``floor`` Å apart?"""
    bad = [r for r in rows if r["closest_A"] < floor]
    if not bad:
        worst = min(rows, key=lambda r: r["closest_A"])
        return True, (f"{len(rows)} glasses relaxed, closest pair {worst['closest_A']:.2f} Å "
                      f"({worst['pair']} in {worst['glass']}), floor {floor:g} Å")
    what = "; ".join(f"{r['glass']}: {r['pair']} {r['closest_A']:.2f} Å" for r in bad)
    return False, (f"relaxing random starts pulled atoms closer than {floor:g} Å ({what}): the model has a "
                   f"spurious short-range well; MD from such a start collapses")


def relax_check(model="default", names=None, n_atoms: int = 150, seed: int = 0, fmax: float = 0.2,
                steps: int = 200, floor: float = RELAX_FLOOR, precision: str = "float32",
                progress: bool = False) -> RelaxCheck:
    """FIRE-relax random starts of many glasses at once and look for collapsed pairs.

    A potential with a spurious short-range well (an attraction where the teacher data had
    no atoms, e.g. between two B or two O below ~1.3 Å) pulls atoms of a random start into
    it while relaxing; a melt started there blows up within picoseconds.  This check builds
    every glass of ``names`` (default: the 18 Table II glasses, ``n_atoms`` each, glass i
    with builder seed ``seed + i``), relaxes all of them in one batched FIRE loop
    (:func:`glassjax.md.batch.batched_fire`, at most ``steps`` iterations to ``fmax``
    eV/Å) and fails if any two atoms end closer than ``floor`` Å.  It is cheaper than a
    hot melt and covers every composition the Table II sweep starts from.

    ``precision``: float32 (as the sweep) or float64 (needs JAX x64 mode).
    """
    import jax.numpy as jnp

    from glassjax.md import batch as B
    from glassjax.md.builder import build_glass
    from glassjax.md.compositions import TABLE_II
    from glassjax.pretrained import resolve_model

    names = list(TABLE_II) if names is None else list(names)
    if precision == "float64" and jnp.zeros(()).dtype != jnp.float64:
        from glassjax.errors import ConfigError

        raise ConfigError("relax_check: precision float64 needs JAX x64 mode (glassjax --x64)")
    pot = B.deeppot_potential(resolve_model(model), dtype=precision)
    atoms = [build_glass(nm, n_atoms=n_atoms, seed=seed + i) for i, nm in enumerate(names)]
    pot = pot.for_structures(atoms)
    state, params, spec = B.init_batch(pot, atoms, 0.0, seed=seed, dtype=precision)
    state, spec, residual, _ = B.batched_fire(pot.factory, state, params, spec, pot.shared, fmax=fmax,
                                              max_steps=int(steps))
    pos = B.to_host(state.positions)
    rows, relaxed = [], []
    for k, (nm, a) in enumerate(zip(names, atoms)):
        r = a.copy()
        r.positions = pos[k, :len(a)].astype(float)
        d, pair = closest_pair(r)
        rows.append({"glass": nm, "atoms": len(a), "residual_fmax": float(residual[k]), "pair": pair,
                     "closest_A": d})
        relaxed.append(r)
        if progress:
            print(f"  {nm:14s} {len(a):4d} atoms  residual {residual[k]:6.2f} eV/Å  closest {pair} {d:.2f} Å")
    ok, message = relax_verdict(rows, floor)
    return RelaxCheck(ok, rows, relaxed, message)
