#!/usr/bin/env python
"""Energy + forces (+ virial) per second of glassjax's DeepPot-SE on LB67 glass-like cells.

    python benchmarks/bench_deeppot.py [--sizes 300 1000 3000] [--repeats 3]
                                       [--model-dir DIR] [--precisions float64 float32]
    # both sides in one run (DeePMD-kit first, then glassjax on the same .dp files):
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        python benchmarks/bench_deeppot.py --peer-python /tmp/dpvenv/bin/python --json out.json

Model: the papers' size (rcut 6.0 Å, rcut_smth 5.8 Å, embedding [25, 50, 100], axis_neuron
16, fitting [240, 240, 240]; type_one_side off, embedding resnet_dt off, fitting resnet_dt
on, as DeePMD-kit's defaults), type_map Li B Si O.  With ``--model-dir`` the DeePMD-kit
peer's files ``paper_fp64.dp``/``paper_fp32.dp`` are loaded (run
``benchmarks/deepmd_peer/bench_deepmd.py --keep DIR`` first), so both sides evaluate the
same weights; otherwise a model with the same hyper-parameters, seeded random weights and
davg/dstd from glassjax's statistics on the 300-atom cell is built here (the timing does not
depend on the weights).

Structures: ``benchmarks/deepmd_peer/structures.bench_cells()`` (Li2O.2B2O3, 2.2 g/cm^3,
299 / 1001 / 3003 atoms, deterministic), shared with the DeePMD-kit side.

Timed per call, median of ``--repeats`` after warm-up (compilation reported separately):
  * ``list``: jitted rebuild of glassjax's multi-image neighbour list (cutoff rcut + 1 Å skin);
  * ``model``: jitted energy, forces and virial with the list given (what an MD step pays
    between rebuilds; atoms grouped by type statically).
The table goes to stdout; ``--json`` writes the numbers (atomically).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "deepmd_peer"))
sys.path.insert(0, str(HERE.parent))

TYPE_MAP = ("Li", "B", "Si", "O")


def _median_time(fn, repeats):
    """(median wall seconds, median CPU seconds of this process) per call."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(times)), float(np.median(cpu))


def build_model(cells, dtype):
    """Paper-size model with sel from the 300-atom cell (1.25 x max count, at least 4)."""
    import jax.numpy as jnp

    from glassjax.data.frames import Frames
    from glassjax.model import DeepPot, DeepPotConfig, DescriptorConfig, FittingConfig
    from glassjax.model import nlist as dpnl
    from glassjax.model.stats import apply_stats, environment_stats

    at = cells[min(cells)]
    types = np.array([TYPE_MAP.index(s) for s in at.get_chemical_symbols()], np.int32)
    probe = dpnl.build_sections(jnp.asarray(at.positions), jnp.asarray(at.cell[:]), types, 6.0, (1000,) * 4)
    counts = np.asarray(probe.counts).max(axis=0)
    sel = tuple(int(max(4, np.ceil(1.25 * c))) for c in counts)
    cfg = DeepPotConfig(DescriptorConfig(type_map=TYPE_MAP, rcut=6.0, rcut_smth=5.8, sel=sel, neuron=(25, 50, 100),
                                         axis_neuron=16, type_one_side=False, resnet_dt=False),
                        FittingConfig(neuron=(240, 240, 240), resnet_dt=True))
    model = DeepPot(cfg, dtype=dtype)
    v = model.init(0)
    fr = Frames(species=at.get_chemical_symbols(), positions=at.positions[None], cells=at.cell[:][None])
    davg, dstd = environment_stats(cfg, [fr])
    return model, apply_stats(v, davg, dstd, out_bias=np.array([-2.0, -5.0, -6.0, -4.0]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precisions", nargs="+", default=["float64", "float32"])
    ap.add_argument("--model-dir", default=None, help="folder with paper_fp64.dp / paper_fp32.dp (DeePMD-kit peer)")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--peer-python", default=None,
                    help="python of the DeePMD-kit venv: run benchmarks/deepmd_peer/bench_deepmd.py first "
                         "(1 torch thread) and time glassjax on the very same .dp files")
    ap.add_argument("--peer-json", default=None,
                    help="DeePMD-kit side's results (benchmarks/results/deepmd_peer.json): compare energies")
    args = ap.parse_args(argv)

    from glassjax.precision import enable_x64

    enable_x64()  # float64 is needed for one of the two precisions; float32 is explicit below
    import jax
    import jax.numpy as jnp

    from glassjax import neighbors as nbl
    from glassjax.atomic_write import write_text_atomic
    from glassjax.model import cast_variables, load_model
    from structures import bench_cells

    cells = {k: v for k, v in bench_cells().items() if k in args.sizes}
    if args.peer_python:
        import subprocess
        import tempfile

        work = Path(tempfile.mkdtemp(prefix="bench_deeppot_"))
        args.model_dir = str(work)
        args.peer_json = str(work / "deepmd_peer.json")
        cmd = [args.peer_python, str(HERE / "deepmd_peer" / "bench_deepmd.py"), "--sizes", *map(str, args.sizes),
               "--repeats", str(args.repeats), "--keep", str(work), "--out", args.peer_json]
        print("running the DeePMD-kit side:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    peer = json.loads(Path(args.peer_json).read_text()) if args.peer_json else {}
    rows = []
    for prec in args.precisions:
        if args.model_dir:
            fname = "paper_fp64.dp" if prec == "float64" else "paper_fp32.dp"
            model, v = load_model(Path(args.model_dir) / fname, dtype=prec)
            source = f"{args.model_dir}/{fname}"
        else:
            model, v = build_model(cells, "float64")
            model = model.with_dtype(prec)
            v = cast_variables(v, model.dtype)
            source = "random weights (seed 0), glassjax statistics"
        for size, at in sorted(cells.items()):
            types = model.types_from_species(at.get_chemical_symbols())
            pos = jnp.asarray(at.positions, model.dtype)
            cell = jnp.asarray(at.cell[:], model.dtype)
            t0 = time.perf_counter()
            nl, spec = model.neighbor_list(pos, np.asarray(at.cell[:]), skin=1.0, types=types)
            t_alloc = time.perf_counter() - t0

            def rebuild():
                return jax.block_until_ready(nbl.build(pos, cell, spec))

            efv = jax.jit(lambda x, c, nl: model.energy_forces_virial(v, x, c, types, nl, with_aux=True))

            def step():
                return jax.block_until_ready(efv(pos, cell, nl))

            t0 = time.perf_counter()
            e, f, w, aux = step()
            t_compile = time.perf_counter() - t0
            truncated = bool(aux["overflow"])
            if truncated:
                counts = np.asarray(aux["counts"]).max(axis=0).tolist()
                print(f"WARNING: {len(at)} atoms: neighbour counts {counts} exceed sel {list(model.sel)}; DeePMD-kit "
                      "truncates silently, glassjax reproduces its truncation and reports it (timing is still valid)",
                      flush=True)
            rebuild()
            t_list, c_list = _median_time(rebuild, args.repeats)
            t_model, c_model = _median_time(step, args.repeats)
            d_e = None
            for r in peer.get("rows", []):
                if r["precision"] == prec and r["natoms"] == len(at):
                    d_e = abs(float(e) - float(r["energy"]))
            rows.append({"precision": prec, "natoms": len(at), "list_s": t_list, "list_cpu_s": c_list,
                         "model_s": t_model, "model_cpu_s": c_model, "first_call_s": t_compile,
                         "allocate_s": t_alloc, "calls_per_s": 1.0 / t_model, "energy_eV": float(e),
                         "energy_minus_deepmd_kit_eV": d_e, "sel_exceeded": truncated})
            print(f"{prec:8s} {len(at):5d} atoms: list {t_list:8.4f} s  E+F+W {t_model:8.4f} s (cpu {c_model:8.4f} s, "
                  f"{1.0 / t_model:8.2f} calls/s); first call {t_compile:.1f} s"
                  + ("" if d_e is None else f"  |E - E_deepmd| = {d_e:.1e} eV"), flush=True)

    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.processor() or platform.machine()}, {jax.devices()[0].platform}",
            "jax": jax.__version__, "model": source, "sel": list(model.sel), "rows": rows}
    print()
    peer_rows = {(r["precision"], r["natoms"]): r for r in peer.get("rows", [])}
    print("| precision | atoms | glassjax list rebuild (s) | glassjax E+F+W (s) | glassjax E+F+W CPU (s) | "
          "DeePMD-kit E+F (s) | DeePMD-kit E+F CPU (s) | first call incl. compile (s) | abs(E_glassjax - E_deepmd) (eV) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pr = peer_rows.get((r["precision"], r["natoms"]), {})
        de = r["energy_minus_deepmd_kit_eV"]
        print(f"| {r['precision']} | {r['natoms']} | {r['list_s']:.4f} | {r['model_s']:.4f} | {r['model_cpu_s']:.4f} | "
              f"{pr.get('model_s', float('nan')):.4f} | {pr.get('model_cpu_s', float('nan')):.4f} | "
              f"{r['first_call_s']:.1f} | {'-' if de is None else f'{de:.1e}'} |")
    info["deepmd_kit_peer"] = peer
    if args.json:
        write_text_atomic(args.json, json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
