#!/usr/bin/env python
"""MD steps per second of ASE's VelocityVerlet driving DeePMD-kit's ASE calculator (PyTorch
backend), one calculator call per step: the DeePMD-kit side of ``benchmarks/bench_md.py``.

Runs in the DeePMD-kit virtual environment (docs/deepmd_kit_peer.md), not in glassjax's:

    /tmp/dpvenv/bin/python benchmarks/deepmd_peer/bench_md_deepmd.py --work DIR \
        [--natoms 1000] [--warmup 10] [--steps 20] [--precisions float64 float32] [--threads 1]

It writes into ``DIR`` (shared with the glassjax side, which loads exactly these files):
  * ``paper_fp64.dp`` / ``paper_fp32.dp``: the papers' se_e2_a size, seeded random weights, made
    by ``bench_deepmd.build_models`` (same weights in both precisions), and their TorchScript
    ``.pth`` conversions (``deepmd.entrypoints.convert_backend``, what ``dp convert-backend`` runs);
  * ``start.extxyz``: the LB67 cell of ``structures.lb67_cell(natoms)`` with Maxwell-Boltzmann
    momenta at ``--temperature`` (numpy seed, centre-of-mass momentum removed);
  * ``deepmd_md.json``: timings; ``deepmd_final_<prec>.npy``: positions (N, 3), Å, after all steps.

MD: NVE velocity Verlet (``ase.md.verlet.VelocityVerlet``), dt 1 fs.  The first ``--warmup``
steps (TorchScript re-optimises the model in its first calls) are timed separately from the
next ``--steps`` steps.  ``deepmd.calculator.DP`` calls ``DeepPot.eval`` per step, which
rebuilds DeePMD-kit's neighbour list every call.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from structures import lb67_cell  # noqa: E402

KB_EV = 8.617333262e-5  # eV/K


def start_atoms(natoms: int, temperature: float, seed: int = 0):
    """LB67 cell of ~natoms atoms with Maxwell-Boltzmann momenta at ``temperature`` (K).

    Momenta (amu Å / ASE time unit) are drawn with numpy, the centre-of-mass momentum is removed
    and they are rescaled so that the kinetic temperature with 3N - 3 degrees of freedom is exact.
    """
    from ase import units

    at = lb67_cell(natoms)
    m = at.get_masses()[:, None]
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(len(at), 3)) * np.sqrt(m * units.kB * temperature)
    p -= m * p.sum(axis=0) / m.sum()
    ke2 = np.sum(p * p / m)
    p *= np.sqrt((3 * len(at) - 3) * units.kB * temperature / ke2)
    at.set_momenta(p)
    return at


def run_ase_md(atoms, calc, dt_fs: float, warmup: int, steps: int):
    """VelocityVerlet for ``warmup`` then ``steps`` steps; returns timings and the final atoms.

    One ``calc`` call per step (ASE's VelocityVerlet asks for forces once per step, plus one
    call for the initial forces, counted in the warm-up).
    """
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(warmup)
    t_warm, c_warm = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(steps)
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    e_pot = float(atoms.get_potential_energy())
    e_kin = float(atoms.get_kinetic_energy())
    pos = atoms.get_positions()
    return {"warmup_s": t_warm, "warmup_cpu_s": c_warm, "run_s": t_run, "run_cpu_s": c_run,
            "steps_per_s": steps / t_run, "final_epot_eV": e_pot, "final_ekin_eV": e_kin,
            "final_temperature_K": float(atoms.get_temperature()),
            "finite": bool(np.all(np.isfinite(pos)) and np.isfinite(e_pot))}, pos


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="folder for the models, start structure and results")
    ap.add_argument("--natoms", type=int, default=1000)
    ap.add_argument("--temperature", type=float, default=300.0)
    ap.add_argument("--dt", type=float, default=1.0, help="time step, fs")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precisions", nargs="+", default=["float64", "float32"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(args.threads)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    import ase
    import torch
    import deepmd
    from ase.io import write
    from deepmd.calculator import DP
    from deepmd.entrypoints.convert_backend import convert_backend

    from bench_deepmd import build_models, machine_info
    from structures import lb67_cell as _cell

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    # the same statistics / sel source as bench_deepmd.py: the 300-atom cell
    paths, sel = build_models(work, {300: _cell(300)})
    atoms = start_atoms(args.natoms, args.temperature)
    write(work / "start.extxyz", atoms, format="extxyz")
    rows = []
    for prec in args.precisions:
        dp_path = paths[prec]
        pth = work / (dp_path.stem + ".pth")
        convert_backend(INPUT=str(dp_path), OUTPUT=str(pth))
        calc = DP(model=str(pth))
        row, pos = run_ase_md(atoms, calc, args.dt, args.warmup, args.steps)
        np.save(work / f"deepmd_final_{prec}.npy", pos)
        row.update({"path": "ASE VelocityVerlet + deepmd.calculator.DP (PyTorch .pth)", "precision": prec,
                    "natoms": len(atoms)})
        rows.append(row)
        print(f"DeePMD-kit ASE {prec}: warm-up {args.warmup} steps {row['warmup_s']:.1f} s, "
              f"{args.steps} steps {row['run_s']:.1f} s -> {row['steps_per_s']:.3f} steps/s", flush=True)
    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(), "load_average_1min_start_end": [load_start, os.getloadavg()[0]],
        "torch_threads": torch.get_num_threads(), "deepmd_kit_version": deepmd.__version__,
        "torch_version": torch.__version__, "ase_version": ase.__version__, "sel": [int(s) for s in sel],
        "warmup_steps": args.warmup, "steps": args.steps, "dt_fs": args.dt, "temperature_K": args.temperature,
        "rows": rows,
    }
    out = work / "deepmd_md.json"
    with tempfile.NamedTemporaryFile("w", dir=work, prefix=".tmp_", suffix=".json", delete=False) as tf:
        json.dump(result, tf, indent=1)
        tf.write("\n")
    os.replace(tf.name, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
