"""Model errors on a dataset, per system (the papers' Table S1) and parity plots.

:func:`predict_frames` evaluates a model on all frames of a system in jitted, vmapped
batches (one neighbour spec per system, so shapes stay fixed); :func:`error_table` turns
predictions and labels into per-system errors:

    energy  MAE / RMSE per atom (eV/atom)      forces  MAE / RMSE / max |dF| component (eV/Å)
    virial  MAE / RMSE per atom (eV/atom)      (only where the data carry the label)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors as nbl


def predict_frames(model, variables, frames, batch: int = 8) -> Dict[str, np.ndarray]:
    """Energy (F,), forces (F, N, 3) and virial (F, 3, 3) of ``model`` on one system's frames.

    Raises :class:`glassjax.errors.ModelError` if an element is missing from the model's
    type map or a frame has more neighbours than the model's ``sel`` (DeePMD-kit would
    silently drop them).  The compiled evaluator is shared by every model of the same
    configuration (e.g. ensemble members) on systems of the same composition and size.
    """
    from glassjax.errors import ModelError

    types = tuple(int(t) for t in model.types_from_species(frames.species))
    dtype = model.dtype
    images = tuple(int(i) for i in np.max([nbl.images_needed(c, model.rcut) for c in frames.cells], axis=0))
    counts = [int(nbl.allocate(jnp.asarray(frames.positions[f], dtype), frames.cells[f], cutoff=model.rcut,
                               skin=0.0, capacity=1)[0].max_count)
              for f in sorted({0, frames.nframes // 2, frames.nframes - 1})]
    # capacity rounded up so that similar systems share one compiled evaluator
    capacity = int(8 * math.ceil(1.5 * max(counts) / 8)) + 8
    spec = nbl.NeighborSpec(float(model.rcut), 0.0, capacity, images)
    fn = _predictor(model.config, jnp.dtype(dtype).name, spec, types)
    v = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype) if np.issubdtype(np.asarray(x).dtype, np.floating)
                               else x, variables)
    out_e, out_f, out_w = [], [], []
    for s in range(0, frames.nframes, batch):
        pos = jnp.asarray(frames.positions[s:s + batch], dtype)
        cell = jnp.asarray(frames.cells[s:s + batch], dtype)
        e, f, w, ovf = fn(v, pos, cell)
        if bool(jnp.any(ovf)):
            bad = s + int(np.argmax(np.asarray(ovf)))
            raise ModelError(f"{frames.source[bad]}: more neighbours within rcut={model.rcut} Å than the "
                             f"model's sel {list(model.sel)} (or the list capacity); this model cannot "
                             "describe that frame faithfully")
        out_e.append(np.asarray(e))
        out_f.append(np.asarray(f))
        out_w.append(np.asarray(w))
    return {"energy": np.concatenate(out_e), "forces": np.concatenate(out_f), "virial": np.concatenate(out_w)}


@functools.lru_cache(maxsize=16)
def _predictor(config, dtype: str, spec, types: tuple):
    """Jitted ``fn(variables, positions (B, N, 3), cells (B, 3, 3)) -> (E, F, W, overflow)``."""
    from glassjax.model.deeppot import DeepPot
    from glassjax.model.nlist import sections_from_neighbor_list

    model = DeepPot(config, dtype=dtype)
    types_np = np.asarray(types, dtype=np.int32)
    types_j = jnp.asarray(types_np)

    def one(variables, pos, cell):
        nl = nbl.build(pos, cell, spec)
        sec = sections_from_neighbor_list(pos, cell, types_j, nl, model.rcut, model.sel)
        e, f, w = model.energy_forces_virial(variables, pos, cell, types_np, sec)
        return e, f, w, sec.overflow | nl.overflow

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))


@dataclass
class SystemErrors:
    name: str
    formula: str
    nframes: int
    natoms: int
    e_mae: float = float("nan")
    e_rmse: float = float("nan")
    f_mae: float = float("nan")
    f_rmse: float = float("nan")
    f_max: float = float("nan")
    v_mae: float = float("nan")
    v_rmse: float = float("nan")


def system_errors(frames, pred) -> SystemErrors:
    """Errors of predictions ``pred`` (from :func:`predict_frames`) against ``frames``' labels."""
    out = SystemErrors(frames.name, frames.formula, frames.nframes, frames.natoms)
    n = frames.natoms
    if frames.energy is not None:
        de = (pred["energy"] - frames.energy) / n
        out.e_mae, out.e_rmse = float(np.mean(np.abs(de))), float(np.sqrt(np.mean(de**2)))
    if frames.forces is not None:
        df = pred["forces"] - frames.forces
        out.f_mae, out.f_rmse = float(np.mean(np.abs(df))), float(np.sqrt(np.mean(df**2)))
        out.f_max = float(np.max(np.abs(df)))
    if frames.virial is not None:
        dv = (pred["virial"] - frames.virial) / n
        out.v_mae, out.v_rmse = float(np.mean(np.abs(dv))), float(np.sqrt(np.mean(dv**2)))
    return out


def format_table(rows: List[SystemErrors]) -> str:
    head = (f"{'system':<34} {'frames':>6} {'atoms':>5}  {'E MAE':>9} {'E RMSE':>9}  {'F MAE':>8} "
            f"{'F RMSE':>8} {'F max':>8}  {'V MAE':>9} {'V RMSE':>9}")
    units = f"{'':<34} {'':>6} {'':>5}  {'meV/atom':>9} {'meV/atom':>9}  {'eV/Å':>8} {'eV/Å':>8} {'eV/Å':>8}  " \
            f"{'meV/atom':>9} {'meV/atom':>9}"
    lines = [head, units, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name[:34]:<34} {r.nframes:>6} {r.natoms:>5}  {1e3 * r.e_mae:9.3f} {1e3 * r.e_rmse:9.3f}  "
                     f"{r.f_mae:8.4f} {r.f_rmse:8.4f} {r.f_max:8.3f}  {1e3 * r.v_mae:9.3f} {1e3 * r.v_rmse:9.3f}")
    return "\n".join(lines)


def write_csv(path, rows: List[SystemErrors]) -> None:
    import csv
    import dataclasses
    import io

    from glassjax.atomic_write import write_text_atomic

    buf = io.StringIO()
    fields = [f.name for f in dataclasses.fields(SystemErrors)]
    w = csv.writer(buf)
    w.writerow([f + _UNITS.get(f, "") for f in fields])
    for r in rows:
        w.writerow([getattr(r, f) for f in fields])
    write_text_atomic(path, buf.getvalue())


_UNITS = {"e_mae": "_eV_per_atom", "e_rmse": "_eV_per_atom", "f_mae": "_eV_per_A", "f_rmse": "_eV_per_A",
          "f_max": "_eV_per_A", "v_mae": "_eV_per_atom", "v_rmse": "_eV_per_atom"}


def parity_plot(path, pairs, title: Optional[str] = None) -> None:
    """Energy-per-atom and force-component parity plots (PNG), one colour per system.

    ``pairs`` is a list of ``(frames, pred)``.
    """
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    from glassjax.atomic_write import atomic_path

    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots(1, 2)
    for fr, pred in pairs:
        if fr.energy is not None:
            ax[0].plot(fr.energy / fr.natoms, pred["energy"] / fr.natoms, ".", ms=3, label=fr.name[:30])
        if fr.forces is not None:
            ax[1].plot(fr.forces.ravel(), pred["forces"].ravel(), ".", ms=1, alpha=0.4, label=fr.name[:30])
    for a, lab in zip(ax, ("energy (eV/atom)", "force component (eV/Å)")):
        lo, hi = a.get_xlim()
        a.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        a.set_xlabel(f"DFT {lab}")
        a.set_ylabel(f"model {lab}")
    ax[0].legend(fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
