"""Generate the training data of glassjax's default potential by running MD with a teacher.

The teacher is a universal potential trained on PBE data whose weights ship inside its wheel
(SevenNet-0 by default; CHGNet 0.3.0 as the alternative, see ``docs/default_potential.md``
for how the teacher was chosen).  Every sampled frame is labelled by the teacher during the
run itself: energy (eV), forces (eV/Å) and stress, stored as the DeePMD virial (extensive,
eV, positive = compressive).

What is sampled (per glass composition; the 18 glasses of the papers' Table II, Li2O·2B2O3
(LB67), B2O3 and Li2O·2SiO2), each from a random start of ``--atoms`` atoms at the
experimental density (:func:`glassjax.md.builder.build_glass`), Langevin dynamics at 1 fs:

====================  ===========================================================
segment               what
====================  ===========================================================
melt                  3000 K, ``--melt`` steps
hot                   2000 K, a quarter of that
quench                linear 2000 K -> 300 K
glass                 300 K
warm                  900 K
strained states       from the 300 K glass: uniaxial x strain -0.25 ... +0.25,
                      triaxial -0.10 / -0.15 / -0.20, isotropic +0.05, each at
                      300 K, the compressed ones also at 1200 K
====================  ===========================================================

plus Li2O (antifluorite) and alpha-quartz crystals with random cell distortions at 300, 900
and 1500 K.  An independent second seed of four compositions (LB67, LB80, LBS-10-50-40,
LBS-20-40-40) is written as ``heldout/*`` systems, used only to report errors.

Output: one compressed ``.npz`` per task in ``--out`` (written atomically), each holding
``species`` (N,), ``positions`` (F, N, 3) Å, ``cells`` (F, 3, 3) Å rows, ``energy`` (F,) eV,
``forces`` (F, N, 3) eV/Å, ``virial`` (F, 3, 3) eV, ``temperature`` (F,) K and ``segment``
(F,) labels; ``--bundle`` packs them into at most that many files.  :func:`to_dataset` (or
``python -m train.teacher.generate --to-h5 data.h5 DIR``) turns them into a glassjax HDF5
dataset with one system per (task, segment kind).

Run (CPU works, a GPU is about 20x faster; ``pip install torch==2.13.0`` first, then
``pip install -e .[teacher]``)::

    python train/teacher/generate.py --out teacher_data --workers 2 --device cpu
    python train/teacher/generate.py --to-h5 default_potential.h5 teacher_data

Full default settings label about 7,000 frames of 100-170 atoms.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# glassjax (used here for the glass builder and the dataset writer) imports JAX; keep JAX off
# the GPU that the teacher uses.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

GLASS_DENSITY = {  # g/cm^3 for the compositions outside Table II (literature values)
    "Li2O-2B2O3": 2.22,   # Li2O.2B2O3 glass (LB67)
    "B2O3": 1.84,         # vitreous B2O3
    "Li2O-2SiO2": 2.35,   # lithium disilicate glass
}

STRAINS = [  # (name, (ex, ey, ez), hot?)
    ("ux-0.25", (-0.25, 0.0, 0.0), True),
    ("ux-0.15", (-0.15, 0.0, 0.0), False),
    ("ux-0.08", (-0.08, 0.0, 0.0), False),
    ("ux+0.08", (0.08, 0.0, 0.0), False),
    ("ux+0.15", (0.15, 0.0, 0.0), False),
    ("ux+0.25", (0.25, 0.0, 0.0), True),
    ("tri-0.10", (-0.10, -0.10, -0.10), True),
    ("tri-0.15", (-0.15, -0.15, -0.15), False),
    ("tri-0.20", (-0.20, -0.20, -0.20), True),
    ("iso+0.05", (0.05, 0.05, 0.05), False),
]

HELDOUT = ["Li2O-2B2O3", "LB80", "LBS-10-50-40", "LBS-20-40-40"]


def glass_tasks(n_atoms: int, melt: int, scale: float = 1.0):
    from glassjax.md.compositions import TABLE_II
    comps = list(TABLE_II) + list(GLASS_DENSITY)
    tasks = [dict(kind="glass", name=f"heldout/{c}", composition=c, seed=2, n_atoms=n_atoms,
                  melt=int(melt * scale) // 2, strains=True) for c in HELDOUT]
    tasks += [dict(kind="crystal", name="crystal/Li2O", crystal="Li2O", seed=3),
              dict(kind="crystal", name="crystal/quartz", crystal="quartz", seed=4)]
    tasks += [dict(kind="glass", name=c, composition=c, seed=1, n_atoms=n_atoms, melt=int(melt * scale),
                   strains=True) for c in comps]
    return tasks


def make_teacher(name: str, device: str):
    import torch
    torch.set_num_threads(int(os.environ.get("GLASSJAX_TEACHER_THREADS", "1")))
    if name == "sevennet-0":
        from sevenn.calculator import SevenNetCalculator
        return SevenNetCalculator("7net-0", device=device)
    if name == "chgnet-0.3.0":
        from chgnet.model.dynamics import CHGNetCalculator
        return CHGNetCalculator(use_device=device)
    raise SystemExit(f"--teacher: unknown teacher {name!r}; choose sevennet-0 or chgnet-0.3.0")


def crystal(name: str):
    from ase.build import bulk
    from ase.spacegroup import crystal as sg_crystal
    if name == "Li2O":  # antifluorite, a = 4.61 Å
        return bulk("OLi2", "fluorite", a=4.61, cubic=True).repeat((2, 2, 2))
    if name == "quartz":  # alpha-quartz, P3_221 (z shifted by 2/3 to ASE's origin of group 154)
        q = sg_crystal(["Si", "O"], basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)], spacegroup=154,
                       cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
        return q.repeat((3, 3, 2))
    raise ValueError(name)


class Recorder:
    """Keeps the labelled frames of one task."""

    def __init__(self):
        self.rows = []
        self.atoms = None

    def take(self, atoms, temperature, segment):
        from ase.units import GPa  # noqa: F401  (stress is eV/Å^3 in ASE)
        e = float(atoms.get_potential_energy())
        f = np.asarray(atoms.get_forces(), dtype=np.float32)
        s = np.asarray(atoms.get_stress(voigt=False), dtype=np.float64)
        vol = atoms.get_volume()
        self.rows.append(dict(positions=atoms.get_positions().astype(np.float32), cell=np.asarray(atoms.cell[:]),
                              energy=e, forces=f, virial=-s * vol, temperature=float(temperature),
                              segment=segment))

    def arrays(self, species):
        r = self.rows
        return dict(species=np.asarray(species), positions=np.stack([x["positions"] for x in r]),
                    cells=np.stack([x["cell"] for x in r]), energy=np.asarray([x["energy"] for x in r]),
                    forces=np.stack([x["forces"] for x in r]), virial=np.stack([x["virial"] for x in r]),
                    temperature=np.asarray([x["temperature"] for x in r]),
                    segment=np.asarray([x["segment"] for x in r]))


class Deadline(Exception):
    """The task's wall-clock budget (``--deadline``) ran out: keep what was recorded."""


DEADLINE = [float("inf")]


def _md(atoms, rec, temps, every, segment, rng):
    """Langevin MD over the per-block temperatures ``temps`` (one per ``every`` steps),
    recording one frame per block."""
    if time.time() > DEADLINE[0]:
        raise Deadline(segment)
    from ase import units
    from ase.md.langevin import Langevin
    dyn = Langevin(atoms, timestep=1.0 * units.fs, temperature_K=float(temps[0]), friction=0.02 / units.fs,
                   rng=rng)
    for t in temps:
        dyn.set_temperature(temperature_K=float(t))
        dyn.run(every)
        if not np.all(np.isfinite(atoms.get_positions())):
            raise RuntimeError(f"{segment}: positions became non-finite")
        rec.take(atoms, t, segment)


def _strained(atoms, eps):
    a = atoms.copy()
    a.calc = atoms.calc
    a.set_cell(np.asarray(atoms.cell[:]) @ np.diag(1.0 + np.asarray(eps)), scale_atoms=True)
    return a


def run_task(task, teacher, device, out_dir: Path, every: int):
    rng = np.random.default_rng(task["seed"])
    calc = make_teacher(teacher, device)
    rec = Recorder()
    try:
        atoms = _sample(task, calc, rec, rng, every)
    except Deadline as stop:
        print(f"{task['name']}: deadline reached in segment {stop}; keeping {len(rec.rows)} frames", flush=True)
        atoms = rec.atoms
    if not rec.rows:
        raise RuntimeError("no frame was recorded before the deadline")
    arrays = rec.arrays(atoms.get_chemical_symbols())
    out = out_dir / (task["name"].replace("/", "__") + ".npz")
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, name=np.asarray(task["name"]), **arrays)
    os.replace(tmp, out)
    return out, len(rec.rows)


def _sample(task, calc, rec, rng, every):
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    if task["kind"] == "glass":
        from glassjax.md.builder import build_glass
        comp = task["composition"]
        atoms = build_glass(comp, n_atoms=task["n_atoms"], seed=task["seed"], density=GLASS_DENSITY.get(comp))
        atoms.calc = calc
        rec.atoms = atoms
        MaxwellBoltzmannDistribution(atoms, temperature_K=3000, rng=rng)
        melt = task["melt"]
        nb = max(melt // every, 1)
        _md(atoms, rec, [3000.0] * nb, every, "melt", rng)
        _md(atoms, rec, [2000.0] * max(nb // 4, 1), every, "hot", rng)
        _md(atoms, rec, np.linspace(2000.0, 300.0, nb), every, "quench", rng)
        _md(atoms, rec, [300.0] * max(nb // 3, 1), every, "glass", rng)
        glass = atoms.copy()
        glass.set_momenta(atoms.get_momenta())
        _md(atoms, rec, [900.0] * max(nb // 5, 1), every, "warm", rng)
        if task.get("strains"):
            nbs = max(nb // 8, 2)
            for name, eps, hot in STRAINS:
                a = _strained(glass, eps)
                a.set_momenta(glass.get_momenta())
                _md(a, rec, [300.0] * nbs, every, f"strain:{name}", rng)
                if hot:
                    _md(a, rec, [1200.0] * max(nbs // 2, 1), every, f"strainhot:{name}", rng)
    else:
        base = crystal(task["crystal"])
        rec.atoms = base
        for t in (300.0, 900.0, 1500.0):
            for k in range(3):
                a = base.copy()
                eps = rng.normal(0.0, 0.03, (3, 3))
                eps = 0.5 * (eps + eps.T)
                a.set_cell(np.asarray(base.cell[:]) @ (np.eye(3) + eps), scale_atoms=True)
                a.calc = calc
                MaxwellBoltzmannDistribution(a, temperature_K=t, rng=rng)
                _md(a, rec, [t] * 8, every, f"crystal{int(t)}", rng)
        atoms = base
    return atoms


def _worker(args):
    task, teacher, device, out_dir, every, deadline = args
    DEADLINE[0] = deadline
    t0 = time.time()
    try:
        out, n = run_task(task, teacher, device, Path(out_dir), every)
        return task["name"], n, time.time() - t0, None
    except Exception:  # one task failing must not lose the others
        return task["name"], 0, time.time() - t0, traceback.format_exc(limit=4)


def bundle(out_dir: Path, n_bundles: int, dest: Path):
    """Pack the per-task npz files into at most ``n_bundles`` npz files (keys ``<task>::<array>``)."""
    files = sorted(out_dir.glob("*.npz"))
    dest.mkdir(parents=True, exist_ok=True)
    groups = [files[i::n_bundles] for i in range(n_bundles)]
    for i, g in enumerate(groups):
        if not g:
            continue
        payload = {}
        for f in g:
            with np.load(f) as z:
                for k in z.files:
                    payload[f"{f.stem}::{k}"] = z[k]
        tmp = dest / f"bundle{i}.tmp.npz"
        np.savez_compressed(tmp, **payload)
        os.replace(tmp, dest / f"bundle{i}.npz")


def load_tasks(paths):
    """Task name -> dict of arrays, from per-task or bundled npz files."""
    out = {}
    for p in paths:
        p = Path(p)
        files = sorted(p.glob("*.npz")) if p.is_dir() else [p]
        for f in files:
            with np.load(f) as z:
                if "name" in z.files:
                    out[str(z["name"])] = {k: z[k] for k in z.files}
                else:
                    for key in z.files:
                        stem, arr = key.split("::")
                        out.setdefault(stem, {})[arr] = z[key]
    for stem, d in list(out.items()):
        if "name" in d:
            out[str(d["name"])] = out.pop(stem)
    return out


def _system_name(task: str, kind: str) -> str:
    """HDF5 system name of one task's segment kind: ``<task>_<kind>``, without the ``heldout``
    prefix, and without repeating the kind when the task name already ends with it (the
    active-learning labels are named ``<glass>_<segment>``)."""
    base = task.replace("heldout/", "").replace("heldout_", "").replace("/", "_")
    return base if base.endswith(f"_{kind}") else f"{base}_{kind}"


def to_dataset(paths, h5_path, heldout_path=None, val_fraction: float = 0.1, seed: int = 0, base=None,
               max_force=None, pair_floor: bool = False):
    """Write the teacher frames as glassjax HDF5 datasets: one system per (task, segment kind:
    melt/hot/quench/glass/warm/strain/strainhot/crystal...).  The ``heldout/*`` tasks (an
    independent seed, never trained on) go to ``heldout_path`` (default: ``<h5>.heldout.h5``).
    ``base``: an existing dataset whose systems (and train/validation split) come first; the
    new systems are split with its seed and fraction.  ``max_force`` (eV/Å): frames whose largest
    teacher force component exceeds it are left out (the teacher's own failures: SevenNet-0
    returns forces of 1e3-1e10 eV/Å on configurations with several atoms ~0.5-0.9 Å apart).
    ``pair_floor``: also leave out frames with a pair closer than
    ``close_contacts.TEACHER_FLOOR`` (where the teacher's repulsion has already failed)."""
    import shutil

    from glassjax.atomic_write import atomic_path
    from glassjax.data.dataset import write_dataset
    from glassjax.data.frames import Frames
    h5_path = Path(h5_path)
    heldout_path = Path(heldout_path) if heldout_path else h5_path.with_suffix(".heldout.h5")
    tasks = load_tasks(paths)
    if pair_floor:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from close_contacts import below_floor
    train, held = [], []
    for name, d in sorted(tasks.items()):
        seg = np.asarray([str(s).split(":")[0] for s in d["segment"]])
        keep = np.ones(len(seg), bool)
        if max_force is not None:
            keep = np.abs(d["forces"]).max(axis=(1, 2)) <= max_force
            if not keep.all():
                print(f"{name}: {int((~keep).sum())} of {len(keep)} frames left out (teacher force above "
                      f"{max_force:g} eV/Å)")
        if pair_floor:
            symbols = [str(s) for s in d["species"]]
            for k in np.flatnonzero(keep):
                close = below_floor(symbols, d["positions"][k], d["cells"][k])
                if close:
                    keep[k] = False
                    print(f"{name} frame {k}: left out, pairs closer than the teacher's floor: {', '.join(close)}")
        for kind in sorted(set(seg[keep])):
            sel = (seg == kind) & keep
            fr = Frames(species=np.asarray([str(s) for s in d["species"]]),
                        positions=d["positions"][sel].astype(np.float64),
                        cells=d["cells"][sel].astype(np.float64),
                        energy=d["energy"][sel].astype(np.float64),
                        forces=d["forces"][sel].astype(np.float64),
                        virial=d["virial"][sel].astype(np.float64),
                        source=[f"teacher:{name}:{kind}@{i}" for i in range(int(sel.sum()))],
                        name=_system_name(name, kind))
            (held if name.startswith("heldout") else train).append(fr)
    if base is not None:
        with atomic_path(h5_path, suffix=".h5") as tmp:
            shutil.copyfile(base, tmp)
            write_dataset(tmp, train, append=True)
    else:
        write_dataset(h5_path, train, val_fraction=val_fraction, seed=seed)
    if held:
        write_dataset(heldout_path, held, val_fraction=0.0, seed=seed)
    return train, held


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("teacher_data"))
    ap.add_argument("--teacher", default="sevennet-0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--atoms", type=int, default=130, help="atoms per glass cell")
    ap.add_argument("--melt", type=int, default=1500, help="melt steps at 3000 K (1 fs)")
    ap.add_argument("--every", type=int, default=25, help="steps between labelled frames")
    ap.add_argument("--deadline", type=float, default=0.0,
                    help="seconds from now after which every task stops sampling and saves what it has")
    ap.add_argument("--only", nargs="*", help="run only these task names")
    ap.add_argument("--bundle", type=int, default=0, help="pack outputs into at most this many files in OUT/bundles")
    ap.add_argument("--to-h5", type=Path, help="convert npz files/folders (positional) to a glassjax HDF5 dataset")
    ap.add_argument("--base", type=Path, help="with --to-h5: start from this dataset's systems and split")
    ap.add_argument("--max-force", type=float, help="with --to-h5: leave out frames with a teacher force "
                    "component above this (eV/Å)")
    ap.add_argument("--pair-floor", action="store_true", help="with --to-h5: leave out frames with a pair "
                    "closer than close_contacts.TEACHER_FLOOR (Å)")
    ap.add_argument("inputs", nargs="*")
    a = ap.parse_args(argv)
    if a.to_h5:
        train, held = to_dataset(a.inputs or [a.out], a.to_h5, base=a.base, max_force=a.max_force,
                                 pair_floor=a.pair_floor)
        for what, systems in (("training", train), ("held-out", held)):
            print(f"{what}: {len(systems)} systems, {sum(len(f.energy) for f in systems)} frames")
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    tasks = glass_tasks(a.atoms, a.melt)
    if a.only:
        tasks = [t for t in tasks if t["name"] in set(a.only)]
    done = {p.stem for p in a.out.glob("*.npz")}
    todo = [t for t in tasks if t["name"].replace("/", "__") not in done]  # resumable
    print(f"{len(todo)} of {len(tasks)} tasks to run with {a.workers} workers on {a.device}", flush=True)
    deadline = time.time() + a.deadline if a.deadline else float("inf")
    args = [(t, a.teacher, a.device, str(a.out), a.every, deadline) for t in todo]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **k):
            return x
    failed = 0
    if a.workers > 1:
        ctx = mp.get_context("spawn")
        with ctx.Pool(a.workers) as pool:
            for name, n, dt, err in tqdm(pool.imap_unordered(_worker, args), total=len(args)):
                print(f"{name}: {n} frames in {dt:.0f} s" + (f"\nFAILED:\n{err}" if err else ""), flush=True)
                failed += err is not None
    else:
        for arg in tqdm(args):
            name, n, dt, err = _worker(arg)
            print(f"{name}: {n} frames in {dt:.0f} s" + (f"\nFAILED:\n{err}" if err else ""), flush=True)
            failed += err is not None
    if a.bundle:
        bundle(a.out, a.bundle, a.out / "bundles")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
