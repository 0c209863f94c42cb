#!/usr/bin/env python
"""Time DeePMD-kit (PyTorch backend) on a paper-size se_e2_a model: the peer side of
glassjax's energy+forces benchmark.

Runs in the DeePMD-kit virtual environment (docs/deepmd_kit_peer.md), not in glassjax's:

    /tmp/dpvenv/bin/python benchmarks/deepmd_peer/bench_deepmd.py \
        [--sizes 300 1000 3000] [--repeats 3] [--threads 1] [--keep DIR]

Model: se_e2_a as in the 2022/2024 papers (rcut 6.0 Å, rcut_smth 5.8 Å, embedding
[25, 50, 100], axis_neuron 16, fitting [240, 240, 240], embedding resnet_dt off, fitting
resnet_dt on (DeePMD-kit's defaults), type_one_side off),
type_map Li B Si O, seeded random weights, davg/dstd from DeePMD-kit's own statistics on the
300-atom cell, non-zero out_bias. It is written twice as ``.dp`` (float64 and float32, the
same weights) into a temporary folder (``--keep DIR`` keeps them and the structures as
extxyz so the glassjax side can load exactly the same files), converted to TorchScript
``.pth`` with DeePMD-kit's ``convert_backend`` (what ``dp convert-backend`` runs).

Structures: ``structures.bench_cells()`` (Li2O.2B2O3, 2.2 g/cm^3, 299/1001/3003 atoms,
deterministic from a seed; importable by both sides).

Timed separately, per call (median of ``--repeats`` after warm-up calls: one for the
neighbour list, three for the models; wall and CPU time):
  * ``nlist``: DeePMD-kit's own periodic extension + neighbour list
    (``deepmd.pt.utils.nlist.extend_input_and_build_neighbor_list``, O(N * N_ext));
  * ``model``: energy + forces with that neighbour list precomputed
    (``forward_lower`` of the TorchScript model plus the ghost-to-local force reduction),
    i.e. what an MD code pays per step between neighbour-list rebuilds;
  * ``eval``: ``deepmd.infer.DeepPot.eval`` end to end (builds its neighbour list every call,
    like DeePMD-kit's ASE calculator).
Results are printed as a table and written to a JSON file (atomically).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from structures import BENCH_SIZES, bench_cells  # noqa: E402

TYPE_MAP = ["Li", "B", "Si", "O"]
RCUT, RCUT_SMTH = 6.0, 5.8


def paper_config(sel, precision="float64"):
    """The papers' se_e2_a hyper-parameters (2022 paper: rc 6.0, rcs 5.8 Å)."""
    return {
        "type_map": TYPE_MAP,
        "descriptor": {"type": "se_e2_a", "rcut": RCUT, "rcut_smth": RCUT_SMTH, "sel": list(sel),
                       "neuron": [25, 50, 100], "axis_neuron": 16, "resnet_dt": False,
                       "type_one_side": False, "precision": precision, "seed": 1},
        "fitting_net": {"type": "ener", "neuron": [240, 240, 240], "resnet_dt": True,
                        "precision": precision, "seed": 2},
    }


def max_neighbours(at, rcut, ntypes):
    """Largest number of neighbours of each type within rcut over all atoms (cell >= 2 rcut)."""
    pos = at.get_positions()
    cell = at.cell.array
    inv = np.linalg.inv(cell)
    typ = np.array([TYPE_MAP.index(s) for s in at.get_chemical_symbols()])
    out = np.zeros(ntypes, dtype=int)
    for i in range(len(at)):
        d = (pos - pos[i]) @ inv
        d -= np.round(d)
        r = np.linalg.norm(d @ cell, axis=1)
        m = (r < rcut) & (r > 0)
        out = np.maximum(out, np.bincount(typ[m], minlength=ntypes))
    return out


def build_models(folder: Path, cells, seed: int = 0):
    """Write paper_fp64.dp and paper_fp32.dp (same weights) into ``folder``; return paths, sel."""
    from deepmd.dpmodel.model.base_model import BaseModel
    from deepmd.dpmodel.model.model import get_model
    from deepmd.dpmodel.utils.serialization import save_dp_model

    counts = max_neighbours(cells[min(cells)], RCUT, len(TYPE_MAP))
    # 25 % head-room over the densest environment of the smallest cell, at least 4 per type
    sel = [int(max(4, np.ceil(1.25 * c))) for c in counts]
    cfg = paper_config(sel)
    model = get_model(copy.deepcopy(cfg))
    at = cells[min(cells)]
    atype = np.array([TYPE_MAP.index(s) for s in at.get_chemical_symbols()])
    model.atomic_model.descriptor.compute_input_stats([{
        "coord": at.get_positions()[None], "atype": atype[None],
        "box": at.cell.array.reshape(1, 3, 3),
        "natoms": np.array([[len(at), len(at)] + [int((atype == t).sum()) for t in range(len(TYPE_MAP))]]),
    }])
    data = model.serialize()
    rng = np.random.default_rng(seed)
    nets = list(data["descriptor"]["embeddings"]["networks"]) + list(data["fitting"]["nets"]["networks"])
    for net in nets:
        for layer in net["layers"]:
            v = layer["@variables"]
            nin, nout = v["w"].shape
            v["w"] = rng.normal(0.0, 1.0 / np.sqrt(nin + nout), size=(nin, nout))
            v["b"] = rng.normal(0.0, 0.5, size=v["b"].shape)
            if v.get("idt") is not None:
                v["idt"] = rng.uniform(0.2, 1.0, size=v["idt"].shape)
    data["@variables"]["out_bias"] = rng.normal(-5.0, 2.0, size=data["@variables"]["out_bias"].shape)
    paths = {}
    for prec in ("float64", "float32"):
        d = copy.deepcopy(data)
        if prec == "float32":
            _to_float32(d["descriptor"])
            _to_float32(d["fitting"])
        m = BaseModel.deserialize(d)  # DeePMD-kit checks and casts it
        p = folder / f"paper_{'fp64' if prec == 'float64' else 'fp32'}.dp"
        save_dp_model(str(p), {"backend": "DPModel", "model": m.serialize(),
                               "model_def_script": paper_config(sel, prec), "@variables": {}})
        paths[prec] = p
    return paths, sel


def _to_float32(node):
    """Switch a serialized DeePMD-kit sub-dict to float32 (precision tags and arrays)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "precision" and v == "float64":
                node[k] = "float32"
            elif isinstance(v, np.ndarray) and v.dtype == np.float64:
                node[k] = v.astype(np.float32)
            else:
                _to_float32(v)
    elif isinstance(node, list):
        for v in node:
            _to_float32(v)


def _timeit(fn, repeats, warmup=3):
    """Median wall and CPU (this process, all threads) seconds per call after ``warmup`` calls.

    TorchScript's profiling executor re-optimises a model during its first calls (measured
    here: calls 1-3 are 3-10x slower than later ones), so three warm-up calls are made. The CPU time is less sensitive than the wall time to other jobs
    on a shared machine; with T threads and idle cores, CPU ~ T x wall.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu)), [float(t) for t in wall]


def machine_info():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def main(argv=None):
    ap = argparse.ArgumentParser(description="DeePMD-kit (PyTorch) timing of a paper-size se_e2_a model")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(BENCH_SIZES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: on the shared 2-core machine, 2 OpenMP "
                         "threads spin-waiting for each other were 10-20x slower under load)")
    ap.add_argument("--keep", default=None, help="folder to keep the .dp models and extxyz cells in")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "deepmd_peer.json"))
    args = ap.parse_args(argv)

    # thread settings must be in place before torch is imported
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["DP_INTRA_OP_PARALLELISM_THREADS"] = str(args.threads)
    os.environ["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    import torch
    import deepmd
    from ase.io import write
    from deepmd.entrypoints.convert_backend import convert_backend
    from deepmd.infer import DeepPot
    from deepmd.pt.utils.nlist import extend_input_and_build_neighbor_list

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    cells = {n: c for n, c in bench_cells().items() if n in args.sizes}
    tmpdir = tempfile.TemporaryDirectory()
    folder = Path(args.keep) if args.keep else Path(tmpdir.name)
    folder.mkdir(parents=True, exist_ok=True)
    paths, sel = build_models(folder, cells)
    for n, at in cells.items():
        write(folder / f"lb67_{n}.extxyz", at, format="extxyz")
    rows = []
    for prec, dp_path in paths.items():
        pth = folder / (dp_path.stem + ".pth")
        convert_backend(INPUT=str(dp_path), OUTPUT=str(pth))
        dp = DeepPot(str(pth))
        jit_model = torch.jit.load(str(pth), map_location="cpu")
        for n, at in cells.items():
            atype_np = np.array([TYPE_MAP.index(s) for s in at.get_chemical_symbols()])
            coord = torch.tensor(at.get_positions()[None], dtype=torch.float64)
            box = torch.tensor(at.cell.array.reshape(1, 9), dtype=torch.float64)
            atype = torch.tensor(atype_np[None], dtype=torch.long)

            def build():
                return extend_input_and_build_neighbor_list(
                    coord, atype, RCUT, sel, mixed_types=False, box=box)

            t_nl, c_nl, ts_nl = _timeit(build, args.repeats, warmup=1)
            ext_coord, ext_atype, mapping, nlist = build()

            def model_call():
                out = jit_model.forward_lower(ext_coord, ext_atype, nlist, mapping)
                fext = out["extended_force"]  # (1, nall, 3)
                f = torch.zeros((1, len(at), 3), dtype=fext.dtype)
                f.index_add_(1, mapping[0], fext)
                return out["energy"], f

            t_model, c_model, ts_model = _timeit(model_call, args.repeats)
            e_low, f_low = model_call()

            def full():
                return dp.eval(at.get_positions()[None], at.cell.array.reshape(1, 9), atype_np)

            t_eval, c_eval, ts_eval = _timeit(full, max(1, args.repeats - 1))
            e, f, v = full()
            de = abs(float(e_low.detach().reshape(-1)[0]) - float(np.ravel(e)[0]))
            df = float(np.abs(f_low.detach().numpy().reshape(-1, 3) - f.reshape(-1, 3)).max())
            row = {"precision": prec, "natoms": len(at), "nlist_s": t_nl, "model_s": t_model,
                   "eval_s": t_eval, "nlist_cpu_s": c_nl, "model_cpu_s": c_model, "eval_cpu_s": c_eval,
                   "nlist_runs_s": ts_nl, "model_runs_s": ts_model,
                   "eval_runs_s": ts_eval, "energy": float(np.ravel(e)[0]),
                   "lower_vs_eval_energy": de, "lower_vs_eval_forces": df}
            rows.append(row)
            print(f"{prec:8s} N={len(at):5d} nlist {t_nl:8.3f} s  model(E+F) {t_model:8.3f} s "
                  f"(cpu {c_model:8.3f} s)  "
                  f"DeepPot.eval {t_eval:8.3f} s  |dE|={de:.1e} |dF|={df:.1e}", flush=True)

    result = {
        "what": "DeePMD-kit PyTorch backend, se_e2_a paper-size model, energy+forces per call",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        # other jobs may share the cores: the 1-minute load average says how busy they were
        "load_average_1min_start_end": [load_start, os.getloadavg()[0]],
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "deepmd_kit_version": deepmd.__version__, "torch_version": torch.__version__,
        "model": {"rcut": RCUT, "rcut_smth": RCUT_SMTH, "sel": sel, "embedding": [25, 50, 100],
                  "axis_neuron": 16, "fitting": [240, 240, 240], "type_map": TYPE_MAP,
                  "type_one_side": False, "compressed": False},
        "structures": "benchmarks/deepmd_peer/structures.py bench_cells(seed=0): Li2O.2B2O3, 2.2 g/cm3",
        "repeats": args.repeats,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, prefix=".tmp_", suffix=".json", delete=False) as tf:
        json.dump(result, tf, indent=1)
        tf.write("\n")
    os.chmod(tf.name, 0o644)
    os.replace(tf.name, out)
    print("\n| precision | atoms | neighbour list (s) | model E+F (s) | model E+F CPU (s) | DeepPot.eval (s) | model E+F calls/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['natoms']} | {r['nlist_s']:.3f} | {r['model_s']:.3f} | "
              f"{r['model_cpu_s']:.3f} | {r['eval_s']:.3f} | {1.0 / r['model_s']:.2f} |")
    print(f"wrote {out}")
    tmpdir.cleanup()


if __name__ == "__main__":
    main()
