"""The Table II sweep: build, melt-quench and NPT-equilibrate the papers' glasses in one batch.

The 2024 paper (Table II, :mod:`glassjax.md.compositions`) validates its potential by the
density and the fraction of four-coordinated boron (4B) of 18 lithium borate and
borosilicate glasses of about 300 atoms after melt-quench and NPT equilibration at 300 K.
:func:`table2_sweep` does all of them as one batched program (:mod:`glassjax.md.batch`):

1. :func:`glassjax.md.builder.build_glass` makes each random start (``n_atoms`` target,
   experimental density, seed ``seed + i`` for the i-th glass); the different atom counts
   are padded into one batch.
2. Melt-quench (``quench_ensemble``, NVT at the experimental density by default, or NPT at
   ``pressure``): hold at ``t_melt`` for ``melt_ps``, cool at ``rate_high`` K/ps (default
   ``rate``) to ``t_hold``, hold ``hold_ps`` there (skipped when 0), cool at ``rate`` to ``t_final``.
3. NPT at ``t_final`` and ``pressure`` (GPa) for ``npt_ps`` (isotropic MTK barostat).
4. Per glass: the density (g/cm^3), mean over the last ``average_ps`` of the NPT run, and
   4B = N4 = #B with 4 O neighbours within ``bo_cutoff`` (2.0 Å) / #B
   (:func:`glassjax.analysis.coordination.coordination_numbers`), averaged over the
   structures at the end of each chunk inside that window.

Output: rows (dicts) with the simulated values beside the experimental ones of Table II
(``density_exp`` g/cm^3, ``N4_exp`` = 4B % / 100), written as a CSV (``table2.csv``) when
``out_dir`` is given, with one ``npt.h5`` (H5MD, real atoms only) and ``melt_quench.csv`` /
``npt.csv`` thermo logs per glass in ``out_dir/<glass ID>/``.

Potentials: a :class:`glassjax.md.batch.BatchPotential`; :func:`glassjax.md.batch.teter_potential`
(default, Teter/Du, composition-dependent B-O term) or
:func:`glassjax.md.batch.deeppot_potential` (a DeepPot-SE model file).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors
from glassjax.analysis.coordination import coordination_numbers
from glassjax.atomic_write import atomic_path
from glassjax.errors import ConfigError
from glassjax.md import batch as B
from glassjax.md import integrators as I
from glassjax.md.builder import build_glass
from glassjax.md.compositions import TABLE_II
from glassjax.md.schedule import steps_for, temperature_schedule
from glassjax.neighbors import NeighborSpec

#: CSV columns of the sweep, in order.
COLUMNS = ("glass", "n_atoms", "SiO2_mol", "B2O3_mol", "Li2O_mol", "density_sim", "density_sim_std", "density_exp",
           "N4_sim", "N4_sim_std", "N4_exp")


class SweepResult(NamedTuple):
    """rows: one dict per glass (keys :data:`COLUMNS`); structures: the final ``ase.Atoms``
    (real atoms); thermo: the NPT thermo records (numpy, leading axis = glass)."""

    rows: List[Dict]
    structures: list
    thermo: Dict[str, np.ndarray]


def _n4_fn(bo_cutoff: float):
    cut = np.zeros((3, 3))
    cut[0, 1] = cut[1, 0] = bo_cutoff  # types: 0 = B, 1 = O, 2 = other

    def n4(positions, cell, types, nl, mask):
        cn = coordination_numbers(positions, cell, types, nl, cut, 3, atom_mask=mask)
        is_b = (types == 0) & mask
        return jnp.sum(is_b & (cn[:, 1] == 4)) / jnp.maximum(jnp.sum(is_b), 1)

    return n4


def batch_n4(state: I.MDState, bo_types, bo_cutoff: float = 2.0):
    """(B,) fraction of four-coordinated boron of every member of a batched state.

    ``bo_types``: (B, N) int, 0 = B, 1 = O, 2 = other (padding: any, masked by ``atom_mask``).
    """
    cells = B.to_host(state.cell)
    imgs = np.max([neighbors.images_needed(c, bo_cutoff) for c in cells], axis=0)
    spec = NeighborSpec(float(bo_cutoff), 0.0, 16, tuple(int(x) for x in imgs),
                        block=min(256, int(state.positions.shape[1])))
    nl = B.build_batch_lists(state.positions, state.cell, spec, state.atom_mask)
    if bool(jnp.any(nl.overflow)):  # more than 16 atoms within 2 Å: something is badly wrong
        raise ConfigError("batch_n4: more than 16 neighbours within the B-O cutoff")
    fn = jax.jit(jax.vmap(_n4_fn(float(bo_cutoff))))
    return B.to_host(fn(state.positions, state.cell, jnp.asarray(bo_types), nl, state.atom_mask))


def quench_schedule(dt: float, t_melt: float, melt_ps: float, rate: float, t_hold: float, hold_ps: float,
                    t_final: float, rate_high: Optional[float] = None) -> np.ndarray:
    """(S,) target temperature per step (K) of the sweep's melt-quench, before the NPT run.

    Hold ``t_melt`` for ``melt_ps``; with a plateau (``hold_ps > 0``) cool at ``rate_high``
    (default ``rate``) K/ps to ``t_hold``, hold it ``hold_ps``, then cool at ``rate`` to
    ``t_final``; without one cool straight to ``t_final`` at ``rate``.
    """
    if hold_ps > 0:
        hi = rate if rate_high is None else rate_high
        segs = [("hold", t_melt, melt_ps), ("rate", t_melt, t_hold, hi), ("hold", t_hold, hold_ps),
                ("rate", t_hold, t_final, rate)]
    else:
        segs = [("hold", t_melt, melt_ps), ("rate", t_melt, t_final, rate)]
    return temperature_schedule(segs, dt)


def table2_sweep(potential: Optional[B.BatchPotential] = None, names: Optional[Sequence[str]] = None,
                 n_atoms: int = 300, seed: int = 0, dt: float = 0.001, t_melt: float = 3000.0,
                 melt_ps: float = 10.0, rate: float = 10.0, t_hold: float = 1000.0, hold_ps: float = 0.0,
                 t_final: float = 300.0, npt_ps: float = 20.0, average_ps: Optional[float] = None,
                 rate_high: Optional[float] = None,
                 pressure: float = 0.0, tau_t: float = 0.1, tau_p: float = 1.0, quench_ensemble: str = "nvt",
                 skin: float = 1.0, chunk: int = 1000, every: int = 10, bo_cutoff: float = 2.0,
                 out_dir=None, mesh=None, progress: bool = True, density: Optional[float] = None,
                 relax_steps: int = 200, relax_fmax: float = 0.2) -> SweepResult:
    """Melt-quench and NPT-equilibrate Table II glasses in one batch; density and 4B per glass.

    Args:
        potential: :class:`glassjax.md.batch.BatchPotential` (default Teter/Du, 8 Å).
        names: Table II glass IDs (default: all 18).
        n_atoms: atom target per glass; seed: builder and velocity seed (glass i uses seed + i).
        dt: time step, ps.  t_melt (K), melt_ps (ps), rate (K/ps), t_hold (K), hold_ps (ps; 0 =
            a straight quench to t_final), t_final (K), npt_ps (ps), pressure (GPa).
        rate_high: cooling rate from t_melt down to the t_hold plateau, K/ps (default: ``rate``);
            ``rate`` is then the rate below it.  The papers cool at 10 K/ps to the 1000 K hold
            and at 2 K/ps below it.
        average_ps: averaging window at the end of the NPT run, ps (default: its second half).
        tau_t, tau_p: thermostat and barostat times, ps.
        quench_ensemble: ``"nvt"`` (fixed experimental density) or ``"npt"`` (at ``pressure``).
        skin: neighbour-list skin, Å.  chunk, every: steps per jitted chunk / per record.
        bo_cutoff: B-O bond cutoff for 4B, Å.
        out_dir: optional folder for ``table2.csv`` and per-glass trajectories and logs.
        mesh: optional :func:`glassjax.md.batch.device_mesh` to shard the glasses over devices.
        density: optional start density for every glass (g/cm^3; default: Table II's).
        relax_steps, relax_fmax: FIRE iterations (at most) and force threshold (eV/Å) of the
            relaxation of the random starts before the melt (:func:`glassjax.md.batch.batched_fire`,
            as ``glassjax demo`` and ``glassjax model check-melt`` relax theirs); 0 steps: none.

    Returns:
        :class:`SweepResult`.
    """
    potential = B.teter_potential() if potential is None else potential
    names = list(TABLE_II) if names is None else list(names)
    bad = [n for n in names if n not in TABLE_II]
    if bad:
        raise ConfigError(f"table2_sweep: {bad} are not Table II glasses; choose from {list(TABLE_II)}")
    if quench_ensemble not in ("nvt", "npt"):
        raise ConfigError(f"table2_sweep: quench_ensemble must be 'nvt' or 'npt', got {quench_ensemble!r}")
    if chunk % every:
        raise ConfigError(f"table2_sweep: chunk={chunk} must be a multiple of every={every}")
    quench_t = quench_schedule(dt, t_melt, melt_ps, rate, t_hold, hold_ps, t_final, rate_high)
    n_npt = steps_for(npt_ps, dt)
    avg_ps = npt_ps / 2.0 if average_ps is None else float(average_ps)
    if not 0 < avg_ps <= npt_ps:
        raise ConfigError(f"table2_sweep: average_ps must lie in (0, npt_ps={npt_ps}], got {avg_ps}")
    n_avg = max(1, steps_for(avg_ps, dt))
    if n_npt < every:
        raise ConfigError(f"table2_sweep: the NPT run ({n_npt} steps) is shorter than every={every}")

    # 1. random starts, one init per glass (unpadded), then one padded batch
    atoms = [build_glass(nm, n_atoms=n_atoms, seed=seed + i, density=density) for i, nm in enumerate(names)]
    n_max = max(len(a) for a in atoms)
    potential = potential.for_structures(atoms)  # DeepPot-SE: each type's nets on its own atoms only
    state, params, spec = B.init_batch(potential, atoms, t_melt, seed=seed, skin=skin)
    if relax_steps > 0:
        state, spec, residual, n_fire = B.batched_fire(potential.factory, state, params, spec, potential.shared,
                                                       fmax=relax_fmax, max_steps=int(relax_steps))
        if progress:
            print(f"relax: FIRE {n_fire} steps, largest residual force {float(np.max(residual)):.3f} eV/Å "
                  f"(target {relax_fmax:g})")
    bo_types = np.stack([B.pad_atoms(np.array([0 if s == "B" else 1 if s == "O" else 2
                                               for s in a.get_chemical_symbols()]), n_max, 2) for a in atoms])

    out = Path(out_dir) if out_dir is not None else None
    logs_q = logs_n = trajs = None
    if out is not None:
        from glassjax.md.trajectory import H5MDWriter, ThermoLog

        for nm in names:
            (out / nm).mkdir(parents=True, exist_ok=True)
        logs_q = [ThermoLog(out / nm / "melt_quench.csv") for nm in names]
        logs_n = [ThermoLog(out / nm / "npt.csv") for nm in names]
        trajs = [H5MDWriter(out / nm / "npt.h5", a.get_chemical_symbols(), a.get_masses())
                 for nm, a in zip(names, atoms)]
    try:
        # 2. melt-quench
        if quench_ensemble == "nvt":
            ens_q = I.nvt(dt, tau_t)
        else:
            ens_q = I.npt(dt, tau_t, tau_p)
        state, spec, _ = B.batched_simulate(potential.factory, state, params, spec, ens_q, quench_t,
                                            np.full(quench_t.shape, float(pressure)), shared=potential.shared,
                                            chunk=chunk, every=every, names=names, progress=progress, mesh=mesh,
                                            logs=logs_q)
        # 3. NPT at t_final; N4 at the end of every chunk inside the averaging window
        n4_samples: List[np.ndarray] = []
        first_avg = n_npt - n_avg

        def on_chunk(st, th):
            if int(B.to_host(st.step)[0]) - int(start_step[0]) > first_avg:
                n4_samples.append(batch_n4(st, bo_types, bo_cutoff))

        start_step = B.to_host(state.step)
        ens_n = I.npt(dt, tau_t, tau_p)
        state, spec, th = B.batched_simulate(potential.factory, state, params, spec, ens_n, np.full(n_npt, t_final),
                                             np.full(n_npt, float(pressure)), shared=potential.shared, chunk=chunk,
                                             every=every, names=names, progress=progress, mesh=mesh,
                                             trajectories=trajs, logs=logs_n, on_chunk=on_chunk)
    finally:
        for w in (logs_q or []) + (logs_n or []) + (trajs or []):
            w.close()
    if not n4_samples:
        n4_samples.append(batch_n4(state, bo_types, bo_cutoff))
    n4 = np.stack(n4_samples)  # (samples, B)
    in_window = th["step"] > first_avg
    dens = th["density"][:, in_window]

    rows = []
    structures = []
    final_pos, final_cell = B.to_host(state.positions), B.to_host(state.cell)
    for i, (nm, a) in enumerate(zip(names, atoms)):
        g = TABLE_II[nm]
        rows.append({"glass": nm, "n_atoms": len(a), "SiO2_mol": g.sio2, "B2O3_mol": g.b2o3, "Li2O_mol": g.li2o,
                     "density_sim": float(np.mean(dens[i])), "density_sim_std": float(np.std(dens[i])),
                     "density_exp": g.density, "N4_sim": float(np.mean(n4[:, i])),
                     "N4_sim_std": float(np.std(n4[:, i])), "N4_exp": g.b4 / 100.0})
        final = a.copy()
        final.positions = final_pos[i, :len(a)]
        final.cell = final_cell[i]
        final.wrap()
        structures.append(final)
    if out is not None:
        write_csv(out / "table2.csv", rows)
        write_summary(out / "table2_summary.csv", sweep_summary(rows))
    return SweepResult(rows=rows, structures=structures, thermo=th)


def family(name: str) -> str:
    """``"LBS"`` (lithium borosilicate) or ``"LB"`` (lithium borate) from a Table II glass ID."""
    return "LBS" if name.startswith("LBS") else "LB"


def sweep_summary(rows: Sequence[Dict]) -> List[Dict]:
    """Per glass family: mean simulated-minus-experimental density and N4, beside the paper's MLP.

    Returns one dict per family present (``family``, ``n_glasses``, ``density_dev_mean``,
    ``density_dev_paper_mlp`` (g/cm^3, the 2024 paper at 2 K/ps), ``density_rel_dev_mean``,
    ``N4_dev_mean``, ``N4_rmse``, ``N4_dev_mean_high`` (mean N4 deviation of the glasses with
    experimental 4B > 40 %, where the paper's MLP underestimates; NaN when there are none)).
    """
    from glassjax.md.compositions import PAPER_MLP_DENSITY_DEVIATION

    out = []
    for fam in ("LBS", "LB"):
        sel = [r for r in rows if family(str(r["glass"])) == fam]
        if not sel:
            continue
        d_sim = np.array([float(r["density_sim"]) for r in sel])
        d_exp = np.array([float(r["density_exp"]) for r in sel])
        n_sim = np.array([float(r["N4_sim"]) for r in sel])
        n_exp = np.array([float(r["N4_exp"]) for r in sel])
        high = n_exp > 0.40
        out.append({"family": fam, "n_glasses": len(sel),
                    "density_dev_mean": float(np.mean(d_sim - d_exp)),
                    "density_dev_paper_mlp": PAPER_MLP_DENSITY_DEVIATION[fam],
                    "density_rel_dev_mean": float(np.mean((d_sim - d_exp) / d_exp)),
                    "N4_dev_mean": float(np.mean(n_sim - n_exp)),
                    "N4_rmse": float(np.sqrt(np.mean((n_sim - n_exp) ** 2))),
                    "N4_dev_mean_high": float(np.mean((n_sim - n_exp)[high])) if high.any() else float("nan")})
    return out


def write_summary(path, summary: Sequence[Dict]) -> None:
    """Write :func:`sweep_summary` rows as CSV, atomically."""
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", newline="") as fh:
            if summary:
                w = csv.DictWriter(fh, fieldnames=list(summary[0]))
                w.writeheader()
                for r in summary:
                    w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})


def write_csv(path, rows: Sequence[Dict]) -> None:
    """Write sweep rows (keys :data:`COLUMNS`) atomically."""
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})
