"""Close-contact configurations for the teacher to label: glasses with atom pairs pushed together.

The Teter/Du-sampled data never bring two oxygens closer than about 1.3 Å, so the distilled
networks extrapolate there; the v2-v4 models put a spurious well inside an O-O barrier near
1.1 Å, which MD at 3000 K can fall into (``docs/default_potential.md``).  This script makes
the configurations that teach the repulsion: frames of an existing glassjax data set (glasses,
melts, strained glasses) in which ``--pairs`` nearest-neighbour pairs of a chosen element pair
are moved symmetrically along their bond until they are a random distance apart inside that
pair's window (Å, :data:`WINDOWS`), plus unrelaxed random glasses from
:func:`glassjax.md.builder.build_glass` (the starting point of every melt-quench and of the
hot-melt gate).  ``label.py`` then labels them with the teacher.

    python train/teacher/close_contacts.py default_potential_v4.h5 --out close_configs
    python train/teacher/label.py close_configs --out close_labels
    python train/teacher/generate.py --to-h5 close.h5 close_labels

``--probe SYSTEM`` instead prints the teacher's energy and the force along the pair while one
pair of a frame of SYSTEM is pushed together (a check of the teacher itself).

Output: one extxyz per composition and seed (``cc_<composition>_s<seed>.extxyz``, and
``cc_random_...``, ``cc_relax_...``; frames carry ``segment`` = ``close``, ``random`` or ``relax``
and their ``source``), written atomically, skipped when present.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

# Pair windows (Å): lower and upper target distance of a pushed pair.  Normal nearest-neighbour
# distances in these glasses: B-O 1.37-1.47, Si-O 1.62, Li-O 1.9-2.1, O-O 2.3-2.7, cation-cation
# 2.4-3.2.  The lower ends keep the teacher's force on the pair below about 60 eV/Å and inside
# the range where SevenNet-0 itself is still monotonically repulsive: pushed further, its Li-Li,
# Li-O, Li-B and Si-O curves flatten or turn attractive (``--probe``, docs/default_potential.md).
WINDOWS = {
    ("O", "O"): (1.3, 1.9),
    ("B", "O"): (1.05, 1.3),
    ("O", "Si"): (1.2, 1.5),
    ("Li", "O"): (1.15, 1.6),
    ("B", "B"): (1.4, 2.1),
    ("Si", "Si"): (2.0, 2.5),
    ("B", "Si"): (1.7, 2.3),
    ("B", "Li"): (1.2, 1.9),
    ("Li", "Si"): (1.4, 2.1),
    ("Li", "Li"): (1.2, 1.9),
}
# Below these distances (Å) SevenNet-0 is no longer a usable teacher: pushed closer, its curves
# flatten or turn attractive (Si-O below ~0.85, Li-O below 1.0, Li-Li below 1.2, Li-B below
# 1.0; ``--probe``), and frames with several such pairs give forces of 1e3-1e10 eV/Å.
# ``generate.py --pair-floor`` leaves out labelled frames with any pair closer than its floor.
TEACHER_FLOOR = {
    ("O", "O"): 0.8, ("B", "O"): 0.8, ("O", "Si"): 0.95, ("Li", "O"): 1.0, ("B", "B"): 1.0,
    ("Si", "Si"): 1.5, ("B", "Si"): 1.2, ("B", "Li"): 1.1, ("Li", "Si"): 1.2, ("Li", "Li"): 1.0,
}


def pairs_below(atoms, limit, skip=()):
    """``[(i, j, r)]``: the pairs ``i < j`` of ``atoms`` (minimum image) closer than
    ``limit(pair_key)`` Å, leaving out the pairs in ``skip`` (limits are at most 2 Å)."""
    sym = atoms.get_chemical_symbols()
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    for i, j in skip:
        d[i, j] = d[j, i] = np.inf
    return [(int(i), int(j), float(d[i, j])) for i, j in np.argwhere(d < 2.0)
            if i < j and d[i, j] < limit(_pair_key(sym[i], sym[j]))]


def below_floor(symbols, positions, cell):
    """The pairs (``"A-B r"``) of a periodic frame closer than :data:`TEACHER_FLOOR` allows."""
    import ase
    a = ase.Atoms(list(symbols), positions=positions, cell=cell, pbc=True)
    return [f"{'-'.join(_pair_key(symbols[i], symbols[j]))} {r:.2f}"
            for i, j, r in pairs_below(a, lambda key: TEACHER_FLOOR.get(key, 1.0))]


# How often each pair is chosen (relative), where the frame has both elements.
WEIGHTS = {("O", "O"): 4.0, ("B", "O"): 1.5, ("O", "Si"): 1.5, ("Li", "O"): 1.0, ("B", "B"): 1.0,
           ("Si", "Si"): 1.0, ("B", "Si"): 0.7, ("B", "Li"): 0.7, ("Li", "Si"): 0.7, ("Li", "Li"): 0.7}


def _pair_key(a: str, b: str):
    return tuple(sorted((a, b)))


def push_pair(atoms, i: int, j: int, target: float):
    """Move atoms ``i`` and ``j`` symmetrically along their minimum-image bond to ``target`` Å."""
    d = atoms.get_distance(i, j, mic=True, vector=True)
    r = float(np.linalg.norm(d))
    shift = 0.5 * (r - target) * d / r
    pos = atoms.get_positions()
    pos[i] += shift
    pos[j] -= shift
    atoms.set_positions(pos)
    return r


def choose_pair(atoms, key, rng, n_nearest: int = 8, exclude=(), max_r: float = np.inf):
    """A random pair of element pair ``key`` among the ``n_nearest`` closest (at most ``max_r``
    Å apart), not touching ``exclude``."""
    sym = np.array(atoms.get_chemical_symbols())
    ia = np.flatnonzero(sym == key[0])
    ib = np.flatnonzero(sym == key[1])
    if len(ia) == 0 or len(ib) == 0 or (key[0] == key[1] and len(ia) < 2):
        return None
    dm = atoms.get_all_distances(mic=True)[np.ix_(ia, ib)]
    if key[0] == key[1]:
        dm[np.tril_indices_from(dm)] = np.inf
    dm[dm > max_r] = np.inf
    bad = set(exclude)
    for r, c in np.argwhere(np.isfinite(dm)):
        if ia[r] in bad or ib[c] in bad:
            dm[r, c] = np.inf
    order = np.argsort(dm, axis=None)
    order = [o for o in order[:n_nearest] if np.isfinite(dm.flat[o])]
    if not order:
        return None
    r, c = np.unravel_index(order[rng.integers(len(order))], dm.shape)
    return int(ia[r]), int(ib[c])


def _too_close(atoms, pushed, windows=None) -> bool:
    """Is any pair other than the ``pushed`` ones closer than its window's lower end?  (Moving a
    pair can carry an atom into a third one; such a frame is not the intended contact.)"""
    def limit(key):
        return min(WINDOWS.get(key, (1.0,))[0], (windows or {}).get(key, (9.0,))[0])
    return bool(pairs_below(atoms, limit, skip=pushed))


def close_frame(atoms, rng, n_pairs: int, max_shift: float = 1.0, tries: int = 20, windows=None):
    """A copy of ``atoms`` with ``n_pairs`` pushed pairs; ``info['pairs']`` lists them.  A pair
    is at most ``max_shift`` Å farther apart than its window's upper end, and a push that brings
    any other pair below its window is undone and another pair tried.  ``windows``: use these
    pairs and windows (a dict like :data:`WINDOWS`) instead."""
    windows = WINDOWS if windows is None else windows
    out = atoms.copy()
    present = set(out.get_chemical_symbols())
    keys = [k for k in windows if set(k) <= present]
    w = np.array([WEIGHTS.get(k, 1.0) for k in keys])  # pairs of a custom window list: weight 1
    used, pushed, desc = [], [], []
    for _ in range(n_pairs):
        for _ in range(tries):
            key = keys[rng.choice(len(keys), p=w / w.sum())]
            lo, hi = windows[key]
            pair = choose_pair(out, key, rng, exclude=used, max_r=hi + max_shift)
            if pair is None:
                continue
            target = float(rng.uniform(lo, hi))
            trial = out.copy()
            r0 = push_pair(trial, *pair, target)
            if _too_close(trial, pushed + [pair], windows):
                continue
            out = trial
            used += list(pair)
            pushed.append(pair)
            desc.append(f"{key[0]}{pair[0]}-{key[1]}{pair[1]}:{r0:.2f}->{target:.2f}")
            break
    out.info["pairs"] = ";".join(desc) or "none"
    return out


def _atoms_of(fr, k: int):
    a = fr.to_atoms(k)
    a.calc = None
    return a


def make_system(fr, name, rng, frames_per_system: int, n_pairs: int, windows=None):
    picks = rng.choice(fr.nframes, size=min(frames_per_system, fr.nframes), replace=False)
    out = []
    for k in sorted(picks):
        a = close_frame(_atoms_of(fr, int(k)), rng, n_pairs, windows=windows)
        if a.info["pairs"] == "none":
            continue
        a.info.update(segment="close", temperature=0.0, source=f"{name}[{k}]")
        out.append(a)
    return out


def model_relax_frames(model: str, comp: str, n_atoms: int, seed: int, steps, density=None):
    """States of the hot-melt gate's FIRE relaxation of a random glass on ``model`` (the start of
    every melt-quench) after each number of ``steps``: where a model with a spurious well drifts.
    Each state is a fresh, deterministic run of ``glassjax.md.recipe`` with that step limit."""
    import tempfile

    import ase.io
    from glassjax.demo import build_density, potential_entry, to_toml
    from glassjax.md import recipe as R
    if density is None:
        density, _ = build_density(comp)
    frames = []
    for k in steps:
        rec = {"potential": potential_entry(str(model)),
               "system": {"composition": comp, "n_atoms": int(n_atoms), "density": float(density), "seed": int(seed)},
               "run": {"output": ".", "precision": "float32", "seed": int(seed)},
               "stage": [{"name": "relax", "type": "minimize", "fmax": 0.2, "max_steps": int(k)}]}
        with tempfile.TemporaryDirectory(prefix="glassjax_cc_") as tmp:
            path = Path(tmp) / "recipe.toml"
            path.write_text(to_toml(rec, header="close-contact exploration"))
            out, _ = R.run_stages(R.load_recipe(path), 0, progress=False, log=lambda s: None)
            f = ase.io.read(out / "1_relax" / "final.extxyz")
        f.calc = None
        f.info = dict(segment="relax", temperature=0.0,
                      source=f"FIRE {k} steps on {Path(model).name}, {comp} {n_atoms} atoms seed {seed}")
        frames.append(f)
    return frames


def _write(frames, dest: Path):
    import ase.io
    tmp = dest.with_suffix(".tmp.extxyz")
    ase.io.write(tmp, frames, format="extxyz")
    os.replace(tmp, dest)


def probe(data: Path, system: str, key, distances, teacher: str):
    """Teacher energy (eV, relative to the first distance) and the force along the pair."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import make_teacher
    from glassjax.data.dataset import Dataset
    fr = Dataset(data).frames(system)
    base = _atoms_of(fr, 0)
    i, j = choose_pair(base, key, np.random.default_rng(0), n_nearest=1)
    calc = make_teacher(teacher, "cpu")
    print(f"{system} frame 0, pair {key[0]}{i}-{key[1]}{j} (r0 = {base.get_distance(i, j, mic=True):.3f} Å)")
    print("r (Å)   E - E(first) (eV)   F_along (eV/Å, + = apart)   max |F| (eV/Å)")
    e0 = None
    for r in distances:
        a = base.copy()
        push_pair(a, i, j, r)
        a.calc = calc
        e = a.get_potential_energy()
        f = a.get_forces()
        u = a.get_distance(i, j, mic=True, vector=True) / r  # i -> j
        along = float(np.dot(f[j] - f[i], u) / 2)
        e0 = e if e0 is None else e0
        print(f"{r:5.2f}   {e - e0:12.3f}   {along:12.2f}   {np.abs(f).max():10.2f}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="glassjax HDF5 data set whose frames are the starting points")
    ap.add_argument("--out", type=Path, default=Path("close_configs"))
    ap.add_argument("--frames-per-system", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=2, help="pushed pairs per frame")
    ap.add_argument("--windows", help="push only these pairs, into these windows (Å), e.g. "
                    "'O-O=0.85:1.3,B-O=0.95:1.1' (default: close_contacts.WINDOWS)")
    ap.add_argument("--random-builds", type=int, default=2, help="unrelaxed random glasses per composition")
    ap.add_argument("--atoms", type=int, default=100, help="atoms of a random glass")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--relax-with", metavar="MODEL", help="also FIRE-relax a random glass of every composition "
                    "on MODEL (.dp) and keep its frames (exploration of the relaxation that starts a melt)")
    ap.add_argument("--relax-steps", default="20,40,60,80,120,200", help="FIRE step counts kept (comma list)")
    ap.add_argument("--relax-atoms", type=int, default=300)
    ap.add_argument("--relax-compositions", default="LBS-20-40-40,LBS-40-20-40,Li2O-2B2O3,LBS-10-20-70",
                    help="comma list, or 'all'")
    ap.add_argument("--probe", metavar="SYSTEM", help="print the teacher's curve for one pushed pair and exit")
    ap.add_argument("--probe-pair", default="O-O")
    ap.add_argument("--teacher", default="sevennet-0")
    a = ap.parse_args(argv)

    if a.probe:
        key = _pair_key(*a.probe_pair.split("-"))
        probe(a.data, a.probe, key, [2.4, 2.0, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7], a.teacher)
        return 0

    windows = None
    if a.windows:
        windows = {}
        for item in a.windows.split(","):
            pair, rng_ = item.split("=")
            lo, hi = (float(x) for x in rng_.split(":"))
            windows[_pair_key(*pair.split("-"))] = (lo, hi)
    from glassjax.data.dataset import Dataset
    from glassjax.md.builder import build_glass
    from glassjax.md.compositions import TABLE_II
    a.out.mkdir(parents=True, exist_ok=True)
    ds = Dataset(a.data)
    n = 0
    # one output file (one training system) per composition: the source systems of a
    # composition share its atoms, and a 2-frame system would put half its frames in validation
    groups = {}
    for si, name in enumerate(ds.systems):
        comp = name.removeprefix("cc_").removeprefix("random_").removeprefix("relax_").split("_")[0]
        groups.setdefault(comp, []).append((si, name))
    for comp, members in groups.items():
        dest = a.out / f"cc_{comp}_s{a.seed}.extxyz"
        if dest.exists() or a.frames_per_system <= 0:
            continue
        frames = []
        for si, name in members:
            fr = ds.frames(name)
            if not {"B", "Si"} & set(fr.species):  # crystals of Li2O only: not glass chemistry
                continue
            rng = np.random.default_rng([a.seed, si])
            frames += make_system(fr, name, rng, a.frames_per_system, a.pairs, windows)
        if not frames:
            continue
        by_size = {}
        for f in frames:  # label.py wants one atom list per file
            by_size.setdefault(tuple(f.get_chemical_symbols()), []).append(f)
        for k, part in enumerate(by_size.values()):
            _write(part, dest if k == 0 else dest.with_name(f"cc_{comp}_{k}_s{a.seed}.extxyz"))
        n += len(frames)
        print(f"{dest.name}: {len(frames)} frames", flush=True)
    comps = list(TABLE_II) + ["Li2O-2B2O3", "B2O3", "Li2O-2SiO2"]
    density = {"Li2O-2B2O3": 2.22, "B2O3": 1.84, "Li2O-2SiO2": 2.35}
    for ci, comp in enumerate(comps):
        dest = a.out / f"cc_random_{comp}_s{a.seed}.extxyz"
        if dest.exists() or a.random_builds <= 0:
            continue
        frames = []
        for s in range(a.random_builds):
            g = build_glass(comp, n_atoms=a.atoms, density=density.get(comp), seed=1000 * (a.seed + 1) + 10 * ci + s)
            g.info = dict(segment="random", temperature=0.0, source=f"build_glass({comp}, seed={g.info['seed']})")
            frames.append(g)
        _write(frames, dest)
        n += len(frames)
        print(f"{dest.name}: {len(frames)} frames", flush=True)
    rcomps = comps if a.relax_compositions == "all" else a.relax_compositions.split(",")
    for ci, comp in enumerate(rcomps if a.relax_with else []):
        dest = a.out / f"cc_relax_{comp}_s{a.seed}.extxyz"
        if dest.exists():
            continue
        frames = model_relax_frames(a.relax_with, comp, a.relax_atoms, a.seed + ci,
                                    [int(x) for x in a.relax_steps.split(",")], density.get(comp))
        _write(frames, dest)
        n += len(frames)
        print(f"{dest.name}: {len(frames)} frames", flush=True)
    print(f"wrote {n} frames to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
