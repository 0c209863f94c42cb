"""Active learning, exploration step: MD with the current ensemble, frames it disagrees on.

One round of the DP-GEN loop for the default potential (``docs/default_potential.md``)::

    explore.py (this)  ->  label.py (teacher labels)  ->  generate.py --to-h5  ->  glassjax train

For every composition: a glass is built at its experimental density, relaxed, melt-quenched
with member 0 of the ensemble (``--models``, default: the shipped default potential) and
then compressed triaxially and stretched uniaxially at 300 K (``glassjax.md.deform``).  The
ensemble deviation (``glassjax.uncertainty.deviation_along``) is computed on every recorded
frame of the three runs; frames with ``trust_lo <= max_devi_f < trust_hi`` (eV/Å) are the
*candidates* (DP-GEN's rule: below is accurate, above is failed and left out), and at most
``--max-frames`` of them per run, evenly spread, are written to
``OUT/candidates/<glass>_<segment>.extxyz`` with ``segment`` and ``temperature`` in each
frame's ``info``, the input format of ``label.py``.  ``OUT/summary.csv`` counts accurate /
candidate / failed frames per glass and run.  A glass whose ``OUT/<glass>/done.json`` exists is
skipped (resume by re-running).

    python train/teacher/explore.py --out al_round1                       # all Table II glasses
    python train/teacher/explore.py --out al_round1 --compositions LB70 LBS-10-50-40 --quick
    python train/teacher/label.py al_round1/candidates --out al_round1/labels
    python train/teacher/generate.py --to-h5 al_round1.h5 al_round1/labels

Trust levels: DeePMD/DP-GEN use ~0.1-0.3 eV/Å for DFT-quality models; the first shipped
ensemble's members differ by 0.6-0.9 eV/Å on a 300 K glass, so its defaults are 0.8 / 1.5.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclass
class Schedule:
    """Exploration MD (times ps, temperatures K, strain rates 1/ps)."""

    n_atoms: int = 100
    t_melt: float = 2500.0
    melt_ps: float = 2.0
    quench_ps: float = 5.0
    glass_ps: float = 1.0
    dt: float = 0.001
    every: int = 50
    compress_rate: float = -0.05
    compress_to: float = -0.20
    tension_rate: float = 0.05
    tension_to: float = 0.20
    snapshot: float = 0.01  # strain between deformation frames

    @classmethod
    def quick(cls) -> "Schedule":
        return cls(n_atoms=60, melt_ps=0.2, quench_ps=0.3, glass_ps=0.1, every=20, compress_rate=-0.5,
                   compress_to=-0.05, tension_rate=0.5, tension_to=0.05, snapshot=0.01)


def _recipe(name: str, model: Path, schedule: Schedule, seed: int, density: Optional[float]) -> Dict:
    from glassjax.md.compositions import TABLE_II

    rho = density if density is not None else (TABLE_II[name].density if name in TABLE_II else None)
    if rho is None:
        raise SystemExit(f"explore: {name!r} is not a Table II glass; give --density for it")
    s = schedule
    return {
        "potential": {"type": "model", "model": str(model)},
        "system": {"composition": name, "n_atoms": s.n_atoms, "density": rho, "seed": seed},
        "run": {"output": "md", "chunk": s.every * 10, "every": s.every, "precision": "float32"},
        "stage": [{"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": 500},
                  {"name": "melt_quench", "ensemble": "nvt", "dt": s.dt, "tau_t": 0.1,
                   "initial_temperature": s.t_melt,
                   "temperature": [["hold", s.t_melt, s.melt_ps], ["ramp", s.t_melt, 300.0, s.quench_ps],
                                   ["hold", 300.0, s.glass_ps]]}],
    }


def _candidates(models, traj: Path, out: Path, segment: str, trust_lo: float, trust_hi: float,
                max_frames: int) -> Dict[str, int]:
    from glassjax.uncertainty import deviation_along, flag_frames, write_flagged

    devi = deviation_along(models, traj)
    flags = flag_frames(devi, trust_lo, trust_hi)
    n = write_flagged(out, traj, flags, which="candidate", devi=devi, max_frames=max_frames,
                      info={"segment": segment})
    return {"frames": int(len(devi["max_devi_f"])), "accurate": int(len(flags["accurate"])),
            "candidate": int(len(flags["candidate"])), "failed": int(len(flags["failed"])), "written": n,
            "max_devi_f_median": float(np.median(devi["max_devi_f"]))}


def explore_glass(name: str, models: Sequence[Path], out: Path, schedule: Schedule, trust_lo: float,
                  trust_hi: float, max_frames: int, seed: int = 0, density: Optional[float] = None,
                  progress: bool = True) -> List[Dict]:
    """Explore one glass (see the module docstring); returns one summary row per run."""
    from glassjax.demo import to_toml
    from glassjax.md import deform as D
    from glassjax.md import integrators as I
    from glassjax.md.recipe import load_recipe, make_potential, run_stages
    from glassjax.md.trajectory import load_checkpoint

    gdir = out / name
    gdir.mkdir(parents=True, exist_ok=True)
    cand = out / "candidates"
    cand.mkdir(exist_ok=True)
    (gdir / "recipe.toml").write_text(to_toml(_recipe(name, Path(models[0]), schedule, seed, density),
                                              header=f"active-learning exploration: {name}"))
    recipe = load_recipe(gdir / "recipe.toml")
    md_dir, glass = run_stages(recipe, progress=progress, log=lambda m: None)
    mq = md_dir / "2_melt_quench"
    state, spec, _ = load_checkpoint(mq / "checkpoint.npz")
    energy_fn, _, _ = make_potential(recipe["potential"], glass, name, state.positions.dtype)
    runs = {"melt_quench": mq / "trajectory.h5"}
    s = schedule
    for seg, mode, rate, target in (("compressed", "triaxial", s.compress_rate, s.compress_to),
                                    ("stretched", "uniaxial", s.tension_rate, s.tension_to)):
        d = gdir / seg
        params = D.deform_params(axis=2, rate=rate, temperature=300.0, dtype=state.positions.dtype)
        deformation = D.Deformation(mode, "fixed") if mode == "uniaxial" else D.Deformation(mode)
        D.run_deformation(energy_fn, state, spec, I.nvt(s.dt, 0.1), deformation, params, target_strain=target,
                          record_strain_interval=s.snapshot / 2, snapshot_strain_interval=s.snapshot, out_dir=d,
                          symbols=glass.get_chemical_symbols(), progress=progress)
        runs[seg] = d / "trajectory.h5"
    rows = []
    for seg, traj in runs.items():
        r = _candidates(models, traj, cand / f"{name}_{seg}.extxyz", seg, trust_lo, trust_hi, max_frames)
        rows.append({"glass": name, "segment": seg, **r})
    (gdir / "done.json").write_text(json.dumps({"rows": rows, "schedule": asdict(schedule),
                                                "trust": [trust_lo, trust_hi]}, indent=1))
    return rows


def write_summary(path: Path, rows: Sequence[Dict]) -> None:
    from glassjax.atomic_write import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    ap.add_argument("--models", nargs="+", type=Path, default=None,
                    help="ensemble members (.dp); member 0 drives the MD (default: the shipped default potential)")
    ap.add_argument("--compositions", nargs="+", default=None, help="Table II glass IDs (default: all 18)")
    ap.add_argument("--density", type=float, default=None, help="g/cm^3 for a glass outside Table II")
    ap.add_argument("--trust-lo", type=float, default=0.8, help="eV/Å: below = accurate")
    ap.add_argument("--trust-hi", type=float, default=1.5, help="eV/Å: at or above = failed")
    ap.add_argument("--max-frames", type=int, default=20, help="candidates kept per run (DP-GEN fp_task_max)")
    ap.add_argument("--n-atoms", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny glasses and short runs (minutes on a CPU)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    from glassjax.md.compositions import TABLE_II
    from glassjax.pretrained import default_ensemble_paths

    models = args.models or default_ensemble_paths()
    if len(models) < 2:
        ap.error("--models: an ensemble needs at least 2 members")
    schedule = Schedule.quick() if args.quick else Schedule()
    if args.n_atoms:
        schedule.n_atoms = args.n_atoms
    names = args.compositions or list(TABLE_II)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: List[Dict] = []
    for k, name in enumerate(names):
        done = args.out / name / "done.json"
        if done.is_file():
            rows += json.loads(done.read_text())["rows"]
            print(f"{name}: done before, skipped")
            continue
        new = explore_glass(name, models, args.out, schedule, args.trust_lo, args.trust_hi, args.max_frames,
                            seed=args.seed + k, density=args.density, progress=not args.no_progress)
        rows += new
        print(f"{name}: " + "; ".join(f"{r['segment']} {r['candidate']}/{r['frames']} candidates "
                                      f"({r['failed']} failed), {r['written']} written" for r in new))
    write_summary(args.out / "summary.csv", rows)
    print(f"summary: {args.out / 'summary.csv'}; candidates: {args.out / 'candidates'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
