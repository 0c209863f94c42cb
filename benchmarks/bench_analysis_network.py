"""Benchmark: coordination + 3-rings over a long trajectory, glassjax vs a numpy/networkx path.

Trajectory: the real B2O3 glass frames (CP2K NPT, 300 K, 1 GPa, 265 atoms; unlicensed set,
read in place from ../shared/fixtures, skipped when absent) replicated 2x2x1 (1060 atoms)
and cycled with 0.03 Å Gaussian noise up to ``--frames`` frames (default 1000).

* glassjax: :func:`coordination_trajectory` and :func:`three_rings_trajectory` (jit +
  vmap over chunks of frames), timed twice: first call (with compilation) and a second
  call (steady state).
* reference: ASE's neighbour list (numpy) for coordination and fractions, and networkx
  ``simple_cycles(length_bound=6)`` on the T-O graph for the 3-rings, on ``--ref-frames``
  frames and extrapolated linearly to all frames.  The two paths must agree on every
  reference frame (checked).

Prints a table; record results in docs/benchmarks.md.  Usage::

    python benchmarks/bench_analysis_network.py --frames 1000 --ref-frames 20
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIX = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
GLASS = FIX / "deepmd_npy" / "b2o3_boroxol_jncasr" / "glass_300K_1GPa_NPT" / "train"


def build_trajectory(nframes: int, noise: float = 0.03, seed: int = 0):
    from glassjax.data.frames import Frames

    tmap = (GLASS / "type_map.raw").read_text().split()
    types = np.loadtxt(GLASS / "type.raw", dtype=int)
    coord = np.load(GLASS / "set.000" / "coord.npy")
    box = np.load(GLASS / "set.000" / "box.npy").reshape(-1, 3, 3)
    nat = len(types)
    coord = coord.reshape(len(box), nat, 3)
    shifts = [(i, j, 0) for i in range(2) for j in range(2)]
    rng = np.random.default_rng(seed)
    pos, cells = [], []
    for f in range(nframes):
        k = f % len(box)
        c = box[k]
        rep = np.concatenate([coord[k] + np.array(s) @ c for s in shifts])
        pos.append(rep + rng.normal(0.0, noise, rep.shape))
        cells.append(np.diag([2, 2, 1]) @ c)
    species = np.tile(np.array(tmap)[types], len(shifts))
    return Frames(species=species, positions=np.stack(pos), cells=np.stack(cells), name="b2o3_2x2x1")


def reference_frame(atoms, rc=2.0):
    """numpy/ASE coordination + networkx 3-rings of one frame."""
    import networkx as nx
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, {("B", "O"): rc, ("O", "B"): rc})
    sym = np.array(atoms.get_chemical_symbols())
    cn = np.bincount(i, minlength=len(atoms))
    b = sym == "B"
    o = sym == "O"
    frac_b4 = float(np.mean(cn[b] == 4))
    frac_nbo = float(np.mean(cn[o] == 1))
    G = nx.Graph()
    G.add_edges_from((int(a), int(c)) for a, c in zip(i, j) if a < c)
    rings = {frozenset(c) for c in nx.simple_cycles(G, length_bound=6) if len(c) == 6}
    return frac_b4, frac_nbo, rings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--ref-frames", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--x64", action="store_true")
    args = ap.parse_args(argv)
    if not GLASS.is_dir():
        print(f"skipped: B2O3 glass frames not found at {GLASS}")
        return 0
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from glassjax.analysis.coordination import coordination_trajectory
    from glassjax.analysis.rings import ring_atom_sets, three_rings_trajectory

    frames = build_trajectory(args.frames)
    print(f"trajectory: {frames.nframes} frames x {frames.natoms} atoms ({frames.formula}); "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, {platform.processor() or platform.machine()}")

    timings = {}
    for label, fn in (("coordination", lambda: coordination_trajectory(frames, chunk=args.chunk)),
                      ("3-rings", lambda: three_rings_trajectory(frames, formers=("B",), chunk=args.chunk))):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out = fn()
        t2 = time.perf_counter()
        timings[label] = (t1 - t0, t2 - t1)
        if label == "coordination":
            coord = out
        else:
            rings = out

    nref = min(args.ref_frames, frames.nframes)
    t0 = time.perf_counter()
    for k in range(nref):
        frac_b4, frac_nbo, ref_rings = reference_frame(frames.to_atoms(k))
        got = set(ring_atom_sets(rings["rings"][k], rings["valid"][k]))
        assert got == ref_rings, f"frame {k}: 3-rings differ"
        assert abs(coord["frac_B4"][k] - frac_b4) < 1e-12 and abs(coord["frac_NBO"][k] - frac_nbo) < 1e-12
    t_ref = time.perf_counter() - t0
    per_frame_ref = t_ref / nref

    total_first = sum(v[0] for v in timings.values())
    total_steady = sum(v[1] for v in timings.values())
    print(f"\n{'path':38s} {'total (s)':>10s} {'ms/frame':>10s}")
    for label, (first, steady) in timings.items():
        print(f"{'glassjax ' + label + ' (1st, with compile)':38s} {first:10.2f} {1e3 * first / frames.nframes:10.2f}")
        print(f"{'glassjax ' + label + ' (steady)':38s} {steady:10.2f} {1e3 * steady / frames.nframes:10.2f}")
    print(f"{'glassjax both (1st / steady)':38s} {total_first:10.2f} / {total_steady:.2f}")
    print(f"{'numpy+networkx (ASE nl + simple_cycles)':38s} {per_frame_ref * frames.nframes:10.2f} "
          f"{1e3 * per_frame_ref:10.2f}   (measured on {nref} frames, extrapolated)")
    print(f"speed-up (steady): {per_frame_ref * frames.nframes / total_steady:.1f}x; "
          f"mean 3-rings/frame {np.mean(rings['n_3rings']):.1f}, mean N4 {np.mean(coord['frac_B4']):.3f}; "
          f"results identical on the {nref} reference frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
