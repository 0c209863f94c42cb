"""Model deviation of an ensemble (DeePMD-kit's ``dp model-devi`` definitions).

For M models evaluated on the same frames (energies E^k, forces F^k_i, virials W^k)::

    devi_e      = std_k(E^k / N)                                    eV/atom
    sigma_f,i   = sqrt( sum_a var_k(F^k_ia) ) = |std_k(F^k_i)|      eV/Å, per atom
    max/min/avg_devi_f = max / min / mean over atoms i of sigma_f,i
    sigma_v     = std_k(W^k / N), per component (9)                 eV/atom
    max/min_devi_v = max / min over components;  avg_devi_v = |sigma_v| / 3

(std is the population standard deviation, numpy's default, as in DeePMD-kit.)  The 2024
paper's Fig. 2 shows the cumulative distributions of devi_e and max_devi_f over a data set.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import jax.numpy as jnp
import numpy as np


def model_deviation(energies, forces, virials=None, natoms=None) -> Dict[str, np.ndarray]:
    """Per-frame deviations.

    Args:
        energies: (M, F) total energies, eV.
        forces: (M, F, N, 3) forces, eV/Å (padding atoms must be masked out beforehand).
        virials: optional (M, F, 3, 3) extensive virials, eV.
        natoms: N used to normalise energies and virials (default: forces.shape[2]).

    Returns:
        dict of (F,) arrays: ``devi_e``, ``max_devi_f``, ``min_devi_f``, ``avg_devi_f`` and,
        with virials, ``max_devi_v``, ``min_devi_v``, ``avg_devi_v``; plus ``devi_f_atom``
        (F, N).
    """
    e = jnp.asarray(energies)
    f = jnp.asarray(forces)
    n = f.shape[2] if natoms is None else natoms
    out = {"devi_e": jnp.std(e / n, axis=0)}
    sig = jnp.linalg.norm(jnp.std(f, axis=0), axis=-1)  # (F, N)
    out.update(devi_f_atom=sig, max_devi_f=jnp.max(sig, -1), min_devi_f=jnp.min(sig, -1),
               avg_devi_f=jnp.mean(sig, -1))
    if virials is not None:
        v = jnp.asarray(virials).reshape(jnp.shape(virials)[0], jnp.shape(virials)[1], 9) / n
        sv = jnp.std(v, axis=0)
        out.update(max_devi_v=jnp.max(sv, -1), min_devi_v=jnp.min(sv, -1),
                   avg_devi_v=jnp.linalg.norm(sv, axis=-1) / 3.0)
    return {k: np.asarray(v) for k, v in out.items()}


def ensemble_predictions(models: Sequence, frames) -> Dict[str, np.ndarray]:
    """Stack energies/forces/virials of several ``(model, variables)`` on one system's frames."""
    from glassjax.train.evaluate import predict_frames

    preds = [predict_frames(m, v, frames) for m, v in models]
    return {k: np.stack([p[k] for p in preds]) for k in ("energy", "forces", "virial")}


COLUMNS = ("max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f", "devi_e")


def format_model_devi(devi: Dict[str, np.ndarray], steps=None) -> str:
    """DeePMD-kit's model_devi.out layout: step, then the seven columns."""
    nf = devi["devi_e"].shape[0]
    steps = np.arange(nf) if steps is None else np.asarray(steps)
    lines = ["#" + f"{'step':>11}" + "".join(f"{c:>19}" for c in COLUMNS)]
    for i in range(nf):
        vals = [devi.get(c, np.full(nf, np.nan))[i] for c in COLUMNS]
        lines.append(f"{int(steps[i]):12d}" + "".join(f"{x:19.6e}" for x in vals))
    return "\n".join(lines) + "\n"


def plot_cdf(path, devis: Dict[str, Dict[str, np.ndarray]]) -> None:
    """Cumulative distributions of devi_e and max_devi_f, one line per data set (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    from glassjax.atomic_write import atomic_path

    fig = Figure(figsize=(9, 3.6))
    ax = fig.subplots(1, 2)
    for name, d in devis.items():
        for a, key in zip(ax, ("devi_e", "max_devi_f")):
            x = np.sort(d[key])
            a.plot(x, np.arange(1, x.size + 1) / x.size, label=name[:30])
    ax[0].set_xlabel("energy deviation (eV/atom)")
    ax[1].set_xlabel("max force deviation (eV/Å)")
    for a, key in zip(ax, ("devi_e", "max_devi_f")):
        a.set_ylabel("cumulative fraction of frames")
        if any(np.any(np.asarray(d[key]) > 0) for d in devis.values()):  # one model: all zero
            a.set_xscale("log")
    ax[1].legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def devi_for_systems(models: Sequence, systems: List) -> Dict[str, Dict[str, np.ndarray]]:
    """Deviations for each Frames system: ``{system name: deviation dict}``."""
    out = {}
    for fr in systems:
        p = ensemble_predictions(models, fr)
        out[fr.name] = model_deviation(p["energy"], p["forces"], p["virial"], natoms=fr.natoms)
    return out
