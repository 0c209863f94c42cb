"""Benchmark: local deformation gradient (2024 paper, Eqs. 1-4) over a long trajectory.

glassjax (one neighbour list on the reference, jitted + vmapped chunks of frames) against a
numpy reference path (ASE neighbour list on the reference, then per frame numpy einsum
sums and batched ``numpy.linalg.solve``), on the same machine, same precision (float64).

The trajectory is synthetic: a random 1000-atom Li-B-O cell at glass density (0.085 atoms/Å^3,
so 22.7 Å wide) under a uniaxial compression ramp with thermal noise.  Only timing matters
here; the two paths are also checked to agree.  The numpy path is timed on the first
``--ref-frames`` frames and extrapolated per frame (stated in the table).

    python benchmarks/bench_analysis_structure.py              # 1000 frames x 1000 atoms
    python benchmarks/bench_analysis_structure.py --frames 100 --atoms 500
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_trajectory(n_atoms: int, n_frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = (n_atoms / 0.085) ** (1 / 3)
    cell = np.eye(3) * a
    pos = rng.uniform(0, a, (n_atoms, 3))
    species = np.array((["Li", "B", "B", "O", "O", "O", "O"] * n_atoms)[:n_atoms])
    strains = np.linspace(0, -0.1, n_frames)
    P = np.empty((n_frames, n_atoms, 3))
    C = np.empty((n_frames, 3, 3))
    for f, e in enumerate(strains):
        Fapp = np.diag([1 - 0.3 * e, 1 - 0.3 * e, 1 + e])
        C[f] = cell @ Fapp.T
        P[f] = pos @ Fapp.T + 0.1 * rng.normal(size=pos.shape)
    return species, pos, cell, P, C


def numpy_reference(pos, cell, P, C, support, h, cutoff):
    """Returns (F (frames, N, 3, 3), setup seconds, seconds per frame)."""
    from ase import Atoms
    t0 = time.perf_counter()
    from ase.neighborlist import neighbor_list

    i, j, S = neighbor_list("ijS", Atoms(positions=pos, cell=cell, pbc=True), cutoff)
    keep = support[j]
    i, j, S = i[keep], j[keep], S[keep]
    s0 = pos @ np.linalg.inv(cell)
    d0 = s0[j] + S - s0[i]
    R = d0 @ cell
    w = np.exp(-np.sum(R * R, axis=1) / h ** 2)
    n = len(pos)
    def pair_sum(a, b):  # sum_j w a_ij (x) b_ij per atom i, by bincount (as matscipy does)
        out = np.empty((n, 3, 3))
        for p in range(3):
            for q in range(3):
                out[:, p, q] = np.bincount(i, weights=w * a[:, p] * b[:, q], minlength=n)
        return out

    M = pair_sum(R, R)
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = np.empty((len(P), n, 3, 3))
    for f in range(len(P)):
        s = P[f] @ np.linalg.inv(C[f])
        jump = (s[j] - s[i]) - (s0[j] - s0[i])
        r = (d0 + jump - np.round(jump)) @ C[f]
        N = pair_sum(r, R)
        out[f] = np.swapaxes(np.linalg.solve(M, np.swapaxes(N, 1, 2)), 1, 2)
    return out, t_setup, (time.perf_counter() - t0) / len(P)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--atoms", type=int, default=1000)
    ap.add_argument("--ref-frames", type=int, default=20, help="frames timed on the numpy path")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--h", type=float, default=4.0)
    args = ap.parse_args(argv)

    from glassjax.precision import enable_x64

    enable_x64()
    import jax

    from glassjax.analysis import strain

    species, pos, cell, P, C = make_trajectory(args.atoms, args.frames)
    support = species != "Li"
    cutoff = 2.5 * args.h

    t0 = time.perf_counter()
    strain.deformation_gradient_trajectory(pos, cell, P[:args.chunk], C[:args.chunk], h=args.h, support=support,
                                           chunk=args.chunk)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    F = strain.deformation_gradient_trajectory(pos, cell, P, C, h=args.h, support=support, chunk=args.chunk)
    t_jax = time.perf_counter() - t0

    nref = min(args.ref_frames, args.frames)
    F_np, t_setup, t_frame = numpy_reference(pos, cell, P[:nref], C[:nref], support, args.h, cutoff)
    t_np = t_setup + t_frame * args.frames
    err = float(np.max(np.abs(F_np - F[:nref])))

    dev = jax.devices()[0]
    print(f"local strain, {args.frames} frames x {args.atoms} atoms, h = {args.h} Å, cutoff {cutoff} Å, "
          f"Li excluded, float64, device {dev.platform} ({dev.device_kind})")
    print("| path | time (s) | frames/s |")
    print("|---|---|---|")
    print(f"| glassjax (jit+vmap, chunk {args.chunk}; first call incl. compile {t_first:.1f} s) | {t_jax:.1f} | "
          f"{args.frames / t_jax:.0f} |")
    print(f"| numpy/ASE reference (neighbour list {t_setup:.1f} s + {nref} frames timed, scaled) | {t_np:.1f} | {args.frames / t_np:.1f} |")
    print(f"speed-up {t_np / t_jax:.1f}x; max |F_glassjax - F_numpy| = {err:.2e}")


if __name__ == "__main__":
    main()
