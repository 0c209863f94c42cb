#!/usr/bin/env python
"""Training benchmark: glassjax vs DeePMD-kit (PyTorch backend) on the B2O3 DFT set.

    python benchmarks/bench_training.py [--steps 1000] [--decay-steps 50] [--disp-freq 100]
        [--size small|paper] [--b2o3-dir DIR] [--dp-python /tmp/dpvenv/bin/python]
        [--workdir DIR] [--sides deepmd glassjax] [--gj-bucket] [--label NAME]
        [--json benchmarks/results/training_b2o3.json]

The recorded runs (docs/benchmarks.md): the defaults (small model, 1000 steps) and
``--size paper --steps 200 --disp-freq 50 --decay-steps 10``; ``--gj-bucket`` is a
glassjax-only diagnostic (batches padded per atom count instead of to the largest system).
Each run is stored under ``runs[<label>]`` of the JSON file; other runs there are kept.

Both codes train the same se_e2_a model with the same hyper-parameters for the same number
of steps, on this machine, in float64, from the four B2O3 systems of
``/work/shared/fixtures/deepmd_npy/b2o3_boroxol_jncasr`` (glass 300 K, liquid 3000 K,
alpha and beta crystal; ``*/train`` for training, ``*/val`` for validation).  The data are
read in place (they have no licence: nothing is copied into the project); the glassjax
HDF5 file is written into the work folder (a temporary folder by default).

Skips with a message and exit status 0 when the B2O3 folder or the DeePMD-kit interpreter
(``--dp-python`` or ``$GLASSJAX_DP_PYTHON``, default ``/tmp/dpvenv/bin/python``; its ``dp``
script must sit beside it) is absent.

Hyper-parameters (both sides):
  * se_e2_a, rcut 6.0 Å, rcut_smth ``--rcut-smth`` (5.8 Å by default, the papers' value),
    ``sel`` explicit and equal: glassjax's ``auto`` rule (1.1 x largest count, rounded up to
    a multiple of 4) on all train+val frames, given to both; type_one_side false;
    embedding resnet_dt false, fitting resnet_dt true (DeePMD-kit's defaults); tanh.
  * ``--size small``: embedding [10, 20, 40], axis_neuron 8, fitting [64, 64, 64];
    ``--size paper``: [25, 50, 100], 16, [240, 240, 240].
  * batch_size 1; Adam; lr = 1e-3 * r^floor(step / decay_steps) down to stop_lr 3.51e-8 at
    the last step (DeePMD-kit's "exp" rule, identical on both sides: the script checks the
    two learning-rate columns of lcurve.out agree).
  * loss prefactors DeePMD-kit's defaults: pref_e 0.02 -> 1, pref_f 1000 -> 1, pref_v 0.
  * float64 everywhere (DeePMD-kit ``precision: float64`` in descriptor and fitting;
    glassjax x64 with ``model.precision = "float64"``).
  * statistics: 10 frames per system on both sides.  Energy bias: DeePMD-kit's own
    least-squares, glassjax's ridge fit (the B2O3 data have one composition only, so the
    plain least-squares system is rank-deficient; see docs/training.md).

Speed: steps per second from the display-interval wall times (``disp_freq`` steps), the
first interval excluded on both sides (DeePMD-kit: its "Batch N: total wall time" log
lines; glassjax: timestamps taken at the same steps, first jit compile reported
separately).  Both include the periodic validation on ``val_batches`` frames.
DeePMD-kit runs with OMP/MKL/torch intra- and inter-op threads = 1; JAX uses its own
thread pool (XLA's CPU client), which is not limited here.

Accuracy on all val frames of every system:
  * DeePMD-kit: ``dp --pt freeze`` then ``dp --pt test`` per val system (its own numbers);
  * glassjax: ``glassjax.train.evaluate`` (what ``glassjax test --split val`` prints) on its
    model.ckpt;
  * same evaluator for both: DeePMD-kit's frozen model converted to ``.dp`` with
    ``dp convert-backend`` and evaluated by glassjax's evaluator next to glassjax's own
    ``model.dp``.
The table is printed; ``--json`` receives everything (written atomically).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

B2O3_DEFAULT = Path("/work/shared/fixtures/deepmd_npy/b2o3_boroxol_jncasr")
SYSTEMS = ("glass_300K_1GPa_NPT", "liquid_3000K_1GPa_NPT", "beta_crystal_NPT_aniso", "alpha_crystal_NVT")
TYPE_MAP = ["B", "O"]
SIZES = {"small": {"neuron": [10, 20, 40], "axis_neuron": 8, "fitting": [64, 64, 64]},
         "paper": {"neuron": [25, 50, 100], "axis_neuron": 16, "fitting": [240, 240, 240]}}
RCUT = 6.0
START_LR, STOP_LR = 1.0e-3, 3.51e-8
PREFS = {"start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0,
         "start_pref_v": 0.0, "limit_pref_v": 0.0}
STAT_FRAMES = 10


# ----------------------------------------------------------------------------- helpers
def _skip(msg: str) -> None:
    print(f"bench_training: skipped: {msg}")
    sys.exit(0)


def _load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _dp_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "DP_INTRA_OP_PARALLELISM_THREADS", "DP_INTER_OP_PARALLELISM_THREADS"):
        env[k] = str(threads)
    env.pop("PYTHONPATH", None)
    return env


def _run(cmd, cwd, env=None, log=None):
    """Run a command; return (returncode, combined output, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dt = time.perf_counter() - t0
    if log is not None:
        Path(log).write_text(p.stdout)
    return p.returncode, p.stdout, dt


def system_dirs(b2o3: Path, split: str):
    return [b2o3 / s / split for s in SYSTEMS]


# ----------------------------------------------------------------------------- data, sel
def read_systems(b2o3: Path):
    """The four systems' train and val frames (glassjax Frames, read in place)."""
    from glassjax.data.readers import read_deepmd

    out = {}
    for s in SYSTEMS:
        tr = read_deepmd(b2o3 / s / "train")[0]
        va = read_deepmd(b2o3 / s / "val")[0]
        out[s] = (tr, va)
    return out


def write_h5(frames_by_sys, path: Path):
    """One glassjax dataset: per system the train frames then the val frames, val_mask set
    from the folders (not from a random split).  ``path`` lies in the work folder."""
    import h5py

    from glassjax.data.dataset import write_dataset
    from glassjax.data.frames import Frames

    merged, nval = [], {}
    for s, (tr, va) in frames_by_sys.items():
        if list(tr.species) != list(va.species):
            raise SystemExit(f"{s}: train and val atom orders differ")
        cat = {}
        for lab in ("energy", "forces", "virial"):
            a, b = getattr(tr, lab), getattr(va, lab)
            cat[lab] = None if a is None or b is None else np.concatenate([a, b])
        fr = Frames(species=tr.species, positions=np.concatenate([tr.positions, va.positions]),
                    cells=np.concatenate([tr.cells, va.cells]), source=list(tr.source) + list(va.source),
                    name=s, meta=dict(tr.meta), **cat)
        merged.append(fr)
        nval[s] = (tr.nframes, va.nframes)
    names = write_dataset(path, merged, val_fraction=0.0, seed=0)
    with h5py.File(path, "a") as f:
        for name, s in zip(names, frames_by_sys):
            ntr, nva = nval[s]
            mask = np.zeros(ntr + nva, dtype=bool)
            mask[ntr:] = True
            del f["systems"][name]["val_mask"]
            f["systems"][name].create_dataset("val_mask", data=mask)
    return names


def compute_sel(frames_by_sys):
    from glassjax.train.trainer import auto_sel, neighbor_counts

    allf = [f for pair in frames_by_sys.values() for f in pair]
    counts = neighbor_counts(allf, TYPE_MAP, RCUT)
    return auto_sel(counts["per_type"]), [int(c) for c in counts["per_type"]]


# ----------------------------------------------------------------------------- DeePMD-kit side
def deepmd_input(args, sel, b2o3: Path) -> dict:
    size = SIZES[args.size]
    return {
        "model": {
            "type_map": TYPE_MAP,
            "descriptor": {"type": "se_e2_a", "rcut": RCUT, "rcut_smth": args.rcut_smth, "sel": sel,
                           "neuron": size["neuron"], "axis_neuron": size["axis_neuron"],
                           "type_one_side": False, "resnet_dt": False, "activation_function": "tanh",
                           "precision": "float64", "seed": args.seed},
            "fitting_net": {"neuron": size["fitting"], "resnet_dt": True, "activation_function": "tanh",
                            "precision": "float64", "seed": args.seed},
            "data_stat_nbatch": STAT_FRAMES,
        },
        "learning_rate": {"type": "exp", "start_lr": START_LR, "stop_lr": STOP_LR,
                          "decay_steps": args.decay_steps},
        "loss": {"type": "ener", **PREFS},
        "training": {
            "training_data": {"systems": [str(p) for p in system_dirs(b2o3, "train")], "batch_size": 1},
            "validation_data": {"systems": [str(p) for p in system_dirs(b2o3, "val")], "batch_size": 1,
                                "numb_btch": args.val_batches},
            "numb_steps": args.steps, "seed": args.seed, "disp_file": "lcurve.out",
            "disp_freq": args.disp_freq, "save_freq": args.steps,
        },
    }


WALL_RE = re.compile(r"Batch\s+(\d+): total wall time = ([0-9.]+) s")


def parse_dp_test(text: str) -> dict:
    def grab(pat):
        m = re.search(pat, text)
        return float(m.group(1)) if m else float("nan")

    return {"e_rmse_per_atom": grab(r"Energy RMSE/Natoms\s*:\s*([0-9.eE+-]+)"),
            "f_rmse": grab(r"Force\s+RMSE\s*:\s*([0-9.eE+-]+)"),
            "v_rmse_per_atom": grab(r"Virial RMSE/Natoms\s*:\s*([0-9.eE+-]+)")}


def dp_speed(intervals, disp_freq: int) -> dict:
    """Steps/s from DeePMD-kit's display intervals ``[(batch, wall seconds since the previous
    display), ...]``, counted from step ``disp_freq`` on (as the glassjax side), so the first
    ``disp_freq`` steps (start-up) are excluded on both sides.  DeePMD-kit also displays
    batch 1; the intervals ending at or before ``disp_freq`` are dropped."""
    later = [(b, t) for b, t in intervals if b > disp_freq]
    first = sum(t for b, t in intervals if b <= disp_freq)
    if not later:
        return {}
    rates = [(b - a) / t for (a, _), (b, t) in zip([(disp_freq, 0.0)] + later[:-1], later)]
    return {"steps_per_s": (later[-1][0] - disp_freq) / sum(t for _, t in later), "first_interval_s": first,
            "interval_steps_per_s": rates, "steps_per_s_median": float(np.median(rates))}


def gj_speed(marks, eval_compile_s: float) -> dict:
    """The same numbers for glassjax from ``[(step, seconds since the run started), ...]``
    taken at every ``disp_freq`` steps; the validation compile (first eval call, in the
    second interval) is removed."""
    if len(marks) < 2:
        return {}
    dts = [b[1] - a[1] for a, b in zip(marks[:-1], marks[1:])]
    dts[0] -= eval_compile_s
    rates = [(b[0] - a[0]) / dt for a, b, dt in zip(marks[:-1], marks[1:], dts)]
    return {"steps_per_s": (marks[-1][0] - marks[0][0]) / sum(dts), "first_interval_s": marks[0][1],
            "interval_steps_per_s": rates, "steps_per_s_median": float(np.median(rates))}


def run_deepmd(args, sel, b2o3: Path, work: Path) -> dict:
    d = work / "deepmd"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "input.json").write_text(json.dumps(deepmd_input(args, sel, b2o3), indent=2))
    dp = str(Path(args.dp_python).parent / "dp")
    env = _dp_env(1)
    res = {"load_before": _load_average()}
    print(f"[deepmd] training {args.steps} steps in {d} ...", flush=True)
    rc, out, wall = _run([dp, "--pt", "train", "input.json"], d, env, d / "train.log")
    res["load_after"] = _load_average()
    if rc != 0:
        raise SystemExit(f"dp --pt train failed (rc {rc}); see {d / 'train.log'}:\n{out[-3000:]}")
    res["process_wall_s"] = wall
    ivals = [(int(b), float(t)) for b, t in WALL_RE.findall(out)]
    res["intervals"] = ivals
    res.update(dp_speed(ivals, args.disp_freq))
    res["lcurve"] = str(d / "lcurve.out")
    rc, out, _ = _run([dp, "--pt", "freeze", "-o", "model.pth"], d, env, d / "freeze.log")
    if rc != 0:
        raise SystemExit(f"dp --pt freeze failed; see {d / 'freeze.log'}")
    res["dp_test"] = {}
    for s, vdir in zip(SYSTEMS, system_dirs(b2o3, "val")):
        rc, out, _ = _run([dp, "--pt", "test", "-m", "model.pth", "-s", str(vdir), "-n", "100000"], d, env,
                          d / f"test_{s}.log")
        res["dp_test"][s] = parse_dp_test(out) if rc == 0 else {"error": out[-500:]}
    # the same model as a .dp file for glassjax's evaluator
    rc, out, _ = _run([dp, "convert-backend", "model.pth", "model.dp"], d, env, d / "convert.log")
    if rc != 0 or not (d / "model.dp").is_file():
        ckpts = sorted(d.glob("model.ckpt*.pt"))
        if ckpts:
            rc, out, _ = _run([dp, "convert-backend", ckpts[-1].name, "model.dp"], d, env, d / "convert.log")
    res["dp_file"] = str(d / "model.dp") if (d / "model.dp").is_file() else None
    if res["dp_file"] is None:
        res["convert_error"] = out[-800:]
    return res


# ----------------------------------------------------------------------------- glassjax side
def run_glassjax(args, sel, h5: Path, work: Path) -> dict:
    from glassjax.precision import enable_x64

    enable_x64(True)
    import jax

    from glassjax.train.config import (DescriptorSection, FittingSection, LearningRateSection, LossSection,
                                       ModelSection, TrainConfig, TrainingSection)
    from glassjax.train.trainer import Trainer

    d = work / "glassjax"
    if d.exists():
        shutil.rmtree(d)
    size = SIZES[args.size]
    cfg = TrainConfig(
        model=ModelSection(type_map=TYPE_MAP, precision="float64",
                           descriptor=DescriptorSection(rcut=RCUT, rcut_smth=args.rcut_smth, sel=list(sel),
                                                        neuron=size["neuron"], axis_neuron=size["axis_neuron"],
                                                        type_one_side=False, resnet_dt=False),
                           fitting=FittingSection(neuron=size["fitting"], resnet_dt=True)),
        learning_rate=LearningRateSection(start_lr=START_LR, stop_lr=STOP_LR, decay_steps=args.decay_steps),
        loss=LossSection(**PREFS),
        training=TrainingSection(data=str(h5), numb_steps=args.steps, batch_size=1, seed=args.seed,
                                 disp_freq=args.disp_freq, save_freq=args.steps, val_batches=args.val_batches,
                                 output_dir=str(d), stat_frames_per_system=STAT_FRAMES))
    res = {"load_before": _load_average(), "jax_version": jax.__version__}
    t0 = time.perf_counter()
    tr = Trainer(cfg, base_dir=work, progress=not args.no_progress)
    if args.gj_bucket:
        # diagnostic: no padding to the largest system (one compile per atom count)
        from glassjax.data.loader import BatchLoader

        tr.loader = BatchLoader(tr.train_frames, 1, type_map=tr.type_map, nmax=tr.loader.nmax,
                                seed=args.seed, dtype=tr.dtype, bucket=True)
        res["bucket"] = True
    res["setup_s"] = time.perf_counter() - t0
    train_step, eval_step = tr._compile()
    marks, first = [], {}
    counter = {"n": 0}

    def timed_train(params, opt_state, constants, step, batch, **kw):
        out = train_step(params, opt_state, constants, step, batch, **kw)
        counter["n"] += 1
        n = counter["n"]
        if n == 1:
            jax.block_until_ready(out)
            first["train_first_call_s"] = time.perf_counter() - t_start
        if n % args.disp_freq == 0:
            jax.block_until_ready(out)
            marks.append((n, time.perf_counter()))
        return out

    def timed_eval(*a, **kw):
        if "eval" not in first:
            t = time.perf_counter()
            out = jax.block_until_ready(eval_step(*a, **kw))
            first["eval"] = time.perf_counter() - t
            return out
        return eval_step(*a, **kw)

    tr._compiled = (timed_train, timed_eval)
    t_start = time.perf_counter()
    tr.run()
    res["run_total_s"] = time.perf_counter() - t_start
    res["load_after"] = _load_average()
    res.update(first)
    res["marks"] = [(n, t - t_start) for n, t in marks]
    res.update(gj_speed(res["marks"], first.get("eval", 0.0)))
    res["lcurve"] = str(d / "lcurve.out")
    res["ckpt"] = str(d / "model.ckpt")
    res["dp_file"] = str(d / "model.dp")
    res["sel"] = list(tr.sel)
    res["bias_info"] = getattr(tr, "bias_info", None)
    return res


def evaluate_models(models: dict, h5: Path) -> dict:
    """glassjax's evaluator (as ``glassjax test --split val``) on every model and val system."""
    from glassjax.precision import enable_x64

    enable_x64(True)
    from glassjax.data.dataset import Dataset
    from glassjax.model import load_model
    from glassjax.train.evaluate import predict_frames, system_errors

    ds = Dataset(h5)
    out = {}
    for label, path in models.items():
        if path is None or not Path(path).is_file():
            continue
        model, variables = load_model(path, "float64")
        rows = {}
        for name in ds.systems:
            fr = ds.frames(name, "val")
            err = system_errors(fr, predict_frames(model, variables, fr))
            rows[name] = {"e_rmse_per_atom": err.e_rmse, "f_rmse": err.f_rmse, "v_rmse_per_atom": err.v_rmse,
                          "nframes": fr.nframes, "natoms": fr.natoms}
        out[label] = rows
    return out


def read_lr(path) -> np.ndarray:
    """(step, lr) from a DeePMD-kit or glassjax lcurve.out (lr is the last column)."""
    a = np.loadtxt(path, comments="#", ndmin=2)
    return a[:, [0, -1]]


# ----------------------------------------------------------------------------- report
def table(result: dict) -> str:
    lines = []
    gj, dpk = result.get("glassjax", {}), result.get("deepmd", {})
    lines.append(f"{'':34} {'glassjax':>12} {'DeePMD-kit':>12}")
    lines.append(f"{'steps/s (first interval excluded)':34} {gj.get('steps_per_s', float('nan')):12.2f} "
                 f"{dpk.get('steps_per_s', float('nan')):12.2f}")
    lines.append(f"{'first interval (s, incl. compile)':34} {gj.get('first_interval_s', float('nan')):12.1f} "
                 f"{dpk.get('first_interval_s', float('nan')):12.1f}")
    lines.append("validation RMSE on all val frames: energy meV/atom | force eV/Å")
    ev = result.get("eval_same_evaluator", {})
    dpt = dpk.get("dp_test", {})
    hdr = f"{'system':26} {'gj(gj eval)':>20} {'dp(gj eval)':>20} {'dp(dp test)':>20}"
    lines.append(hdr)
    for s in SYSTEMS:
        def cell(d):
            if not d or s not in d:
                return f"{'-':>20}"
            r = d[s]
            return f"{1e3 * r['e_rmse_per_atom']:9.2f} | {r['f_rmse']:8.4f}"
        lines.append(f"{s:26} {cell(ev.get('glassjax')):>20} {cell(ev.get('deepmd')):>20} {cell(dpt):>20}")
    for lab, key in (("all val frames", "all"),):
        def cell2(d):
            if not d or key not in d:
                return f"{'-':>20}"
            r = d[key]
            return f"{1e3 * r['e_rmse_per_atom']:9.2f} | {r['f_rmse']:8.4f}"
        dpa = result.get("dp_test_all")
        lines.append(f"{lab:26} {cell2(ev.get('glassjax')):>20} {cell2(ev.get('deepmd')):>20} "
                     f"{cell2({key: dpa} if dpa else None):>20}")
    return "\n".join(lines)


def pooled(rows: dict) -> dict:
    """RMSE over all val frames of all systems (energy per frame, forces per component)."""
    if not rows:
        return {}
    ne = sum(r.get("nframes", 0) for k, r in rows.items() if k != "all")
    nf = sum(r.get("nframes", 0) * r.get("natoms", 0) * 3 for k, r in rows.items() if k != "all")
    if ne == 0:
        return {}
    e = sum(r["nframes"] * r["e_rmse_per_atom"] ** 2 for k, r in rows.items() if k != "all") / ne
    f = sum(r["nframes"] * r["natoms"] * 3 * r["f_rmse"] ** 2 for k, r in rows.items() if k != "all") / nf
    return {"e_rmse_per_atom": float(np.sqrt(e)), "f_rmse": float(np.sqrt(f))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--b2o3-dir", type=Path, default=B2O3_DEFAULT)
    ap.add_argument("--dp-python", default=os.environ.get("GLASSJAX_DP_PYTHON", "/tmp/dpvenv/bin/python"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--decay-steps", type=int, default=50)
    ap.add_argument("--disp-freq", type=int, default=100)
    ap.add_argument("--val-batches", type=int, default=4)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--rcut-smth", type=float, default=5.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sides", nargs="+", choices=("deepmd", "glassjax"), default=["deepmd", "glassjax"])
    ap.add_argument("--workdir", type=Path, default=None,
                    help="work folder (outside the repository); default: a temporary folder, removed after")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "training_b2o3.json")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--gj-bucket", action="store_true",
                    help="diagnostic: glassjax batches padded per atom count instead of to the largest system")
    ap.add_argument("--label", default=None,
                    help="key of this run in the JSON file's 'runs' (default: <size>_<steps>steps); "
                         "other runs already in the file are kept")
    args = ap.parse_args(argv)

    if not all((args.b2o3_dir / s / sp / "type.raw").is_file() for s in SYSTEMS for sp in ("train", "val")):
        _skip(f"B2O3 DFT set not found under {args.b2o3_dir}")
    dp = Path(args.dp_python).parent / "dp"
    if "deepmd" in args.sides and not (Path(args.dp_python).is_file() and dp.is_file()):
        _skip(f"DeePMD-kit interpreter {args.dp_python} (with {dp}) not found; set --dp-python or "
              "GLASSJAX_DP_PYTHON")

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="gj_bench_train_")
        work = Path(tmp.name)
    else:
        work = args.workdir.resolve()
        if REPO in work.parents or work == REPO:
            raise SystemExit("--workdir must lie outside the repository (the B2O3 data have no licence)")
        work.mkdir(parents=True, exist_ok=True)

    from glassjax.precision import enable_x64

    enable_x64(True)
    frames = read_systems(args.b2o3_dir)
    sel, counts = compute_sel(frames)
    h5 = work / "b2o3.h5"
    write_h5(frames, h5)
    size = SIZES[args.size]
    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version()},
        "hyperparameters": {"descriptor": "se_e2_a", "rcut": RCUT, "rcut_smth": args.rcut_smth, "sel": sel,
                            "max_neighbours_per_type": counts, "type_map": TYPE_MAP, **size,
                            "type_one_side": False, "embedding_resnet_dt": False, "fitting_resnet_dt": True,
                            "batch_size": 1, "numb_steps": args.steps, "start_lr": START_LR, "stop_lr": STOP_LR,
                            "decay_steps": args.decay_steps, **PREFS, "precision": "float64",
                            "disp_freq": args.disp_freq, "val_batches": args.val_batches,
                            "stat_frames_per_system": STAT_FRAMES, "seed": args.seed},
        "data": {s: {"train_frames": frames[s][0].nframes, "val_frames": frames[s][1].nframes,
                     "natoms": frames[s][0].natoms} for s in SYSTEMS},
    }
    print(f"sel = {sel} (largest neighbour counts {counts}); model {args.size}: {size}", flush=True)

    if "deepmd" in args.sides:
        result["deepmd"] = run_deepmd(args, sel, args.b2o3_dir, work)
        v = _version(args.dp_python)
        result["deepmd"]["versions"] = v
        print(f"[deepmd] {result['deepmd'].get('steps_per_s', float('nan')):.2f} steps/s", flush=True)
        result["dp_test_all"] = pooled({s: {**result["deepmd"]["dp_test"][s],
                                            "nframes": frames[s][1].nframes, "natoms": frames[s][1].natoms}
                                        for s in SYSTEMS if "error" not in result["deepmd"]["dp_test"][s]})
    if "glassjax" in args.sides:
        result["glassjax"] = run_glassjax(args, sel, h5, work)
        print(f"[glassjax] {result['glassjax'].get('steps_per_s', float('nan')):.2f} steps/s", flush=True)

    models = {}
    if "glassjax" in result:
        models["glassjax"] = result["glassjax"]["ckpt"]
    if "deepmd" in result:
        models["deepmd"] = result["deepmd"].get("dp_file")
    ev = evaluate_models(models, h5)
    for k in ev:
        ev[k]["all"] = pooled(ev[k])
    result["eval_same_evaluator"] = ev
    if "glassjax" in result and "deepmd" in result:
        a, b = read_lr(result["glassjax"]["lcurve"]), read_lr(result["deepmd"]["lcurve"])
        common = np.intersect1d(a[:, 0], b[:, 0])
        la = a[np.isin(a[:, 0], common), 1]
        lb = b[np.isin(b[:, 0], common), 1]
        result["lr_schedule_max_rel_diff"] = float(np.max(np.abs(la - lb) / lb)) if common.size else None
        result["lr_schedule_compared_steps"] = int(common.size)
        # DeePMD-kit prints lr with 2 significant digits: round glassjax's the same way
        result["lr_schedule_equal_at_printed_precision"] = bool(
            all(f"{x:.1e}" == f"{y:.1e}" for x, y in zip(la, lb)))
    import jax

    result["versions"] = {"jax": jax.__version__, "glassjax": _gj_version(),
                          "deepmd": result.get("deepmd", {}).get("versions")}
    print(table(result))
    if args.json:
        from glassjax.atomic_write import write_text_atomic

        args.json.parent.mkdir(parents=True, exist_ok=True)
        label = args.label or f"{args.size}_{args.steps}steps" + ("_bucket" if args.gj_bucket else "")
        doc = {"benchmark": "training: glassjax vs DeePMD-kit (PyTorch) on B2O3 (benchmarks/bench_training.py)",
               "runs": {}}
        if args.json.is_file():
            try:
                old = json.loads(args.json.read_text())
                if isinstance(old.get("runs"), dict):
                    doc["runs"] = old["runs"]
            except (json.JSONDecodeError, AttributeError):
                pass
        doc["runs"][label] = result
        write_text_atomic(args.json, json.dumps(doc, indent=1, default=_jsonable))
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _version(py) -> dict:
    try:
        out = subprocess.run([py, "-c", "import deepmd, torch; print(deepmd.__version__, torch.__version__)"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_dp_env()).stdout
        dv, tv = out.split()
        return {"deepmd-kit": dv, "torch": tv}
    except (OSError, ValueError):
        return {}


def _gj_version() -> str:
    try:
        from glassjax import __version__

        return __version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    main()
