#!/usr/bin/env python
"""MD steps per second on a 1000-atom LB67 cell with the papers' model size: glassjax's jitted
loop vs ASE driving a calculator one call per step (glassjax's and DeePMD-kit's).

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        python benchmarks/bench_md.py [--peer-python /tmp/dpvenv/bin/python] [--natoms 1000] \
            [--warmup 10] [--steps 20] [--precisions float64 float32] \
            [--json benchmarks/results/md_lb67.json]

Three ways to run the same NVE velocity-Verlet MD (dt 1 fs, start at 300 K):
  (a) ``jit``: glassjax's jitted loop, ``glassjax.md.integrators.run_chunk`` (``lax.scan`` over
      ``--warmup`` steps per chunk, neighbour list updated inside the step).  The first chunk
      includes compilation and is reported separately; then ``--steps`` steps in chunks of
      ``--warmup`` steps are timed.  (With thermostat and barostat off the MTK step is
      exactly velocity Verlet.)
  (b) ``ase+glassjax``: ``ase.md.verlet.VelocityVerlet`` driving
      ``glassjax.calculator.GlassJaxCalculator`` (the papers' way: one call per step);
  (c) ``ase+deepmd``: the same driving DeePMD-kit's ``deepmd.calculator.DP`` on the TorchScript
      conversion of the same ``.dp`` (run in the DeePMD-kit venv by
      ``benchmarks/deepmd_peer/bench_md_deepmd.py``, first, in the same invocation).
For (b) and (c) the first ``--warmup`` steps (jit compilation / TorchScript optimisation) are
timed apart from the next ``--steps``.

Model: ``paper_fp64.dp`` / ``paper_fp32.dp`` written by the peer script (se_e2_a, rcut 6.0 Å,
rcut_smth 5.8 Å, embedding [25, 50, 100], axis_neuron 16, fitting [240, 240, 240], seeded random
weights).  Start: ``start.extxyz`` written by the peer (``structures.lb67_cell(1000)``, 1001
atoms, Maxwell-Boltzmann momenta at 300 K from a numpy seed), so all three paths start from the
same positions and momenta with the same weights and should follow the same trajectory; the
largest final position difference to (b) float64 is reported as a consistency check.

Random weights are not a physical potential: over the few steps here (at most ~30 fs) no NaN
appears (checked and reported), which is all a timing benchmark needs.  Without
``--peer-python`` give ``--work DIR`` holding the peer's files (models, start.extxyz,
deepmd_md.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


from benchmarks._machine import cpu_name  # noqa: E402


def jitted_md(model, variables, atoms, dt_ps, chunk, steps):
    """glassjax's jitted NVE loop; returns (row dict, final positions (N, 3) Å)."""
    import jax
    import jax.numpy as jnp

    from glassjax.md import integrators as I

    types = model.types_from_species(atoms.get_chemical_symbols())
    dtype = model.dtype
    pos = jnp.asarray(atoms.positions, dtype)
    cell = np.asarray(atoms.cell[:], float)
    nl, spec = model.neighbor_list(pos, cell, skin=1.0, types=types)
    efn = model.energy_fn(variables, types)
    ens = I.nve(dt_ps)
    state = I.init_state(efn, pos, jnp.asarray(cell, dtype), atoms.get_masses(), nl,
                         momenta=atoms.get_momenta())
    zeros = jnp.zeros((chunk,), dtype)

    def one_chunk(st):
        st, th = I.run_chunk(efn, st, spec, ens, zeros, zeros, every=chunk)
        jax.block_until_ready(st.positions)
        return st, th

    t0 = time.perf_counter()
    state, _ = one_chunk(state)  # compile + `chunk` steps
    t_first = time.perf_counter() - t0
    n_chunks = max(1, steps // chunk)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_chunks):
        state, th = one_chunk(state)
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    # time of one chunk without compile, to split the first chunk into compile + run
    compile_s = max(0.0, t_first - t_run / n_chunks)
    _, _, _, aux = model.energy_forces_virial(variables, state.positions, state.cell, types, state.nl, with_aux=True)
    x = np.asarray(state.positions)
    ekin = float(I.kinetic_energy(state))
    row = {"first_chunk_s": t_first, "compile_s_estimate": compile_s, "warmup_s": t_first, "run_s": t_run,
           "run_cpu_s": c_run, "timed_steps": n_chunks * chunk, "steps_per_s": n_chunks * chunk / t_run,
           "final_epot_eV": float(state.energy), "final_ekin_eV": ekin,
           "final_temperature_K": float(I.temperature_of(state)),
           "neighbour_list_overflow": bool(state.overflow), "sel_exceeded": bool(aux["overflow"]),
           "finite": bool(np.all(np.isfinite(x)) and np.isfinite(float(state.energy)))}
    return row, x


def ase_md(calc, atoms, dt_fs, warmup, steps):
    """ASE VelocityVerlet driving ``calc`` (one call per step); (row dict, final positions)."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    at = atoms.copy()
    at.calc = calc
    dyn = VelocityVerlet(at, timestep=dt_fs * units.fs)
    t0 = time.perf_counter()
    dyn.run(warmup)
    t_warm = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(steps)
    t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
    x = at.get_positions()
    e = float(at.get_potential_energy())
    row = {"warmup_s": t_warm, "run_s": t_run, "run_cpu_s": c_run, "timed_steps": steps,
           "steps_per_s": steps / t_run, "final_epot_eV": e, "final_ekin_eV": float(at.get_kinetic_energy()),
           "final_temperature_K": float(at.get_temperature()),
           "finite": bool(np.all(np.isfinite(x)) and np.isfinite(e))}
    return row, x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--natoms", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=10,
                    help="warm-up steps (also the jitted loop's chunk length)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (a multiple of --warmup)")
    ap.add_argument("--precisions", nargs="+", default=["float64", "float32"])
    ap.add_argument("--peer-python", default=None, help="python of the DeePMD-kit venv (runs path (c) first)")
    ap.add_argument("--work", default=None, help="folder of the peer's files (default: a new temporary one)")
    ap.add_argument("--json", default=str(HERE / "results" / "md_lb67.json"))
    args = ap.parse_args(argv)
    if args.steps % args.warmup:
        ap.error("--steps must be a multiple of --warmup (the chunk length)")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_md_"))
    load_start = os.getloadavg()[0]
    t_peer = None
    if args.peer_python:
        cmd = [args.peer_python, str(HERE / "deepmd_peer" / "bench_md_deepmd.py"), "--work", str(work),
               "--natoms", str(args.natoms), "--warmup", str(args.warmup), "--steps", str(args.steps),
               "--precisions", *args.precisions]
        print("running the DeePMD-kit side:", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        t_peer = time.perf_counter() - t0
    if not (work / "deepmd_md.json").is_file():
        ap.error(f"{work}/deepmd_md.json not found: pass --peer-python /tmp/dpvenv/bin/python, or --work with "
                 "the folder of an earlier run of benchmarks/deepmd_peer/bench_md_deepmd.py")
    peer = json.loads((work / "deepmd_md.json").read_text())

    from glassjax.precision import enable_x64

    enable_x64()  # float64 is one of the precisions; float32 is explicit (model dtype)
    import ase
    import jax
    from ase.io import read

    from glassjax.atomic_write import write_text_atomic
    from glassjax.calculator import GlassJaxCalculator
    from glassjax.model import load_model

    atoms = read(work / "start.extxyz")
    dt_fs = 1.0
    rows = []
    finals = {}
    for r in peer["rows"]:
        r = dict(r, path="ase+deepmd")
        rows.append(r)
        finals[("ase+deepmd", r["precision"])] = np.load(work / f"deepmd_final_{r['precision']}.npy")
    for prec in args.precisions:
        fname = work / ("paper_fp64.dp" if prec == "float64" else "paper_fp32.dp")
        model, v = load_model(fname, dtype=prec)
        print(f"glassjax jitted loop {prec} ...", flush=True)
        row, x = jitted_md(model, v, atoms, dt_fs * 1e-3, args.warmup, args.steps)
        rows.append(dict(row, path="jit", precision=prec, natoms=len(atoms)))
        finals[("jit", prec)] = x
        print(f"  first chunk ({args.warmup} steps, incl. compile) {row['first_chunk_s']:.1f} s; "
              f"{row['timed_steps']} steps {row['run_s']:.1f} s -> {row['steps_per_s']:.3f} steps/s", flush=True)
        print(f"ASE VelocityVerlet + GlassJaxCalculator {prec} ...", flush=True)
        row, x = ase_md(GlassJaxCalculator(model, v), atoms, dt_fs, args.warmup, args.steps)
        rows.append(dict(row, path="ase+glassjax", precision=prec, natoms=len(atoms)))
        finals[("ase+glassjax", prec)] = x
        print(f"  warm-up {args.warmup} steps {row['warmup_s']:.1f} s; {args.steps} steps {row['run_s']:.1f} s "
              f"-> {row['steps_per_s']:.3f} steps/s", flush=True)
    ref = finals.get(("ase+glassjax", "float64"))
    for r in rows:
        x = finals.get((r["path"], r["precision"]))
        r["max_abs_dx_vs_ase_glassjax_fp64_A"] = (None if ref is None or x is None
                                                  else float(np.abs(x - ref).max()))
    kb = 8.617333262e-5  # eV/K
    for r in rows:  # one definition for all paths: N_f = 3N - 3 (ASE's get_temperature uses 3N)
        r["final_temperature_K"] = 2.0 * r["final_ekin_eV"] / ((3 * len(atoms) - 3) * kb)
    order = {"jit": 0, "ase+glassjax": 1, "ase+deepmd": 2}
    rows.sort(key=lambda r: (r["precision"] != "float64", order[r["path"]]))

    info = {
        "what": "NVE velocity-Verlet MD, dt 1 fs, start 300 K, paper-size se_e2_a (random weights)",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
                    "jax_backend": jax.devices()[0].platform},
        "load_average_1min_start_end": [load_start, os.getloadavg()[0]],
        "versions": {"jax": jax.__version__, "ase": ase.__version__, "python": platform.python_version(),
                     "deepmd_kit": peer.get("deepmd_kit_version"), "torch": peer.get("torch_version")},
        "threads": {"XLA_FLAGS": os.environ.get("XLA_FLAGS"), "torch": peer.get("torch_threads")},
        "natoms": len(atoms), "sel": peer.get("sel"), "warmup_steps": args.warmup, "timed_steps": args.steps,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "deepmd_side_wall_s": t_peer, "rows": rows,
    }
    print()
    print("| path | precision | steps/s | s/step | warm-up (s) | of which compile (s) | final T (K) | "
          "max abs dx vs (b) fp64 (Å) | finite |")
    print("|---|---|---|---|---|---|---|---|---|")
    label = {"jit": "(a) glassjax jitted loop", "ase+glassjax": "(b) ASE VV + GlassJaxCalculator",
             "ase+deepmd": "(c) ASE VV + DeePMD-kit DP (PyTorch)"}
    for r in rows:
        comp = r.get("compile_s_estimate")
        dx = r["max_abs_dx_vs_ase_glassjax_fp64_A"]
        print(f"| {label[r['path']]} | {r['precision']} | {r['steps_per_s']:.3f} | {1 / r['steps_per_s']:.3f} | "
              f"{r['warmup_s']:.1f} | {'-' if comp is None else f'{comp:.1f}'} | {r['final_temperature_K']:.1f} | "
              f"{'-' if dx is None else f'{dx:.1e}'} | {r['finite']} |")
    write_text_atomic(args.json, json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
