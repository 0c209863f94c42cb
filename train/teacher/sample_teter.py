"""Cheap configurations for the teacher to label: Teter/Du MD of every studied glass.

Running MD with the teacher itself (``generate.py``) is the better sampler but costs about
0.3 s per step for 100 atoms on a CPU core.  On a CPU-only machine this script samples the
configurations instead with glassjax's jitted Teter/Du classical potential (milliseconds per
step); ``label.py`` then labels the chosen frames with the teacher.  The frames cover what the
studies visit: per composition (the 18 Table II glasses, Li2O·2B2O3, B2O3 and Li2O·2SiO2, each
about ``--atoms`` atoms at its experimental density) a 3000 K melt, 2000 K, a quench to
300 K, the 300 K glass, 900 K, and the glass strained uniaxially (x, -0.25 ... +0.25),
triaxially (-0.10 ... -0.20) and isotropically (+0.05) at 300 K and (some) 1200 K; plus
randomly distorted and rattled Li2O and alpha-quartz crystals.  A second seed of four
compositions is written with ``heldout`` in its name: never trained on, used for errors.

``--strained-round K`` samples a strain-focused set instead (new seeds 10 + K, no held-out
or crystal tasks): per composition a half-length melt and quench to a 300 K glass, then 3
frames of each strained state (the states above plus triaxial -0.05, -0.125 and -0.175),
every compressed state also at 1200 K; only the strained frames are kept.  Task names end in ``_s<K>`` (their own systems).

Output: one extxyz per task in ``--out`` (frames carry ``segment`` and ``temperature`` in
``info``), written atomically, skipped when present (resumable).

    python train/teacher/sample_teter.py --out teacher_configs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

GLASS_DENSITY = {"Li2O-2B2O3": 2.22, "B2O3": 1.84, "Li2O-2SiO2": 2.35}  # g/cm^3, literature
HELDOUT = ["Li2O-2B2O3", "LB80", "LBS-10-50-40", "LBS-20-40-40"]
STRAINS = [("ux-0.25", (-0.25, 0, 0), True), ("ux-0.15", (-0.15, 0, 0), False), ("ux-0.08", (-0.08, 0, 0), False),
           ("ux+0.08", (0.08, 0, 0), False), ("ux+0.15", (0.15, 0, 0), False), ("ux+0.25", (0.25, 0, 0), True),
           ("tri-0.10", (-0.1,) * 3, True), ("tri-0.15", (-0.15,) * 3, False), ("tri-0.20", (-0.2,) * 3, True),
           ("iso+0.05", (0.05,) * 3, False)]


STRAINS_EXTRA = [("tri-0.05", (-0.05,) * 3), ("tri-0.125", (-0.125,) * 3), ("tri-0.175", (-0.175,) * 3)]


def tasks(n_atoms, strained_round=None):
    from glassjax.md.compositions import TABLE_II
    if strained_round is not None:
        return [dict(name=f"{c}_s{strained_round}", composition=c, seed=10 + strained_round, n_atoms=n_atoms,
                     scale=0.5, profile="strain") for c in list(TABLE_II) + list(GLASS_DENSITY)]
    out = [dict(name=f"heldout_{c}", composition=c, seed=2, n_atoms=n_atoms, scale=0.5) for c in HELDOUT]
    out += [dict(name="crystal_Li2O", crystal="Li2O", seed=3), dict(name="crystal_quartz", crystal="quartz", seed=4)]
    out += [dict(name=c, composition=c, seed=1, n_atoms=n_atoms, scale=1.0) for c in list(TABLE_II) + list(GLASS_DENSITY)]
    return out


def crystal(name):
    from ase.build import bulk
    from ase.spacegroup import crystal as sg_crystal
    if name == "Li2O":  # antifluorite, a = 4.61 Å
        return bulk("OLi2", "fluorite", a=4.61, cubic=True).repeat((2, 2, 2))
    # alpha-quartz (P3_221), literature lattice and positions, z shifted by 2/3 to ASE's origin
    # of space group 154 (3 Si + 6 O, Si-O 1.605 Å)
    q = sg_crystal(["Si", "O"], basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)], spacegroup=154,
                   cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    return q.repeat((2, 2, 2))


def _frames_crystal(task, rng):
    base = crystal(task["crystal"])
    frames = []
    for t, sigma in ((300.0, 0.04), (900.0, 0.08), (1500.0, 0.12)):
        for _ in range(10):
            a = base.copy()
            eps = rng.normal(0.0, 0.03, (3, 3))
            a.set_cell(np.asarray(base.cell[:]) @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
            a.positions += rng.normal(0.0, sigma, a.positions.shape)
            a.info.update(segment=f"crystal{int(t)}", temperature=t)
            frames.append(a)
    return frames


def _frames_glass(task, log):
    import jax
    import jax.numpy as jnp

    from glassjax import neighbors
    from glassjax.md import integrators as I
    from glassjax.md.builder import build_glass
    from glassjax.md.classical import teter_du_energy_fn, teter_du_table

    comp = task["composition"]
    atoms = build_glass(comp, n_atoms=task["n_atoms"], seed=task["seed"], density=GLASS_DENSITY.get(comp))
    symbols = atoms.get_chemical_symbols()
    table = teter_du_table(symbols, composition=atoms.info["composition"], rc_sr=6.0, rc_coul=6.0)
    efn = teter_du_energy_fn(symbols, table)
    masses = atoms.get_masses()
    cell0 = np.asarray(atoms.cell[:])
    # one list spec for every state: images for the thinnest strained cell, capacity for the densest
    squeezed = cell0 @ np.diag([0.75, 0.8, 0.8])
    nl0, spec = neighbors.allocate(jnp.asarray(atoms.positions @ np.linalg.solve(cell0, squeezed)),
                                   squeezed, table.cutoff, 1.0, capacity_factor=1.4, image_margin=0.5)
    ens = I.nvt(0.001, 0.05)
    key = jax.random.PRNGKey(task["seed"])
    frames = []
    s = task["scale"]

    chunk = 100  # every segment runs in chunks of this many steps: one compile per composition

    def md(pos, cell, mom, temps, segment, n_frames):
        """Run the temperature schedule ``temps`` (K per step, a multiple of ``chunk``) and keep
        ``n_frames`` evenly spaced chunk-end configurations."""
        nonlocal key
        nl = neighbors.build(jnp.asarray(pos), jnp.asarray(cell), spec)
        key, sub = jax.random.split(key)
        temps = np.asarray(temps, float)
        st = I.init_state(efn, jnp.asarray(pos), jnp.asarray(cell), masses, nl, key=sub, temperature=float(temps[0]),
                          momenta=None if mom is None else jnp.asarray(mom))
        n_chunks = len(temps) // chunk
        keep = set(np.linspace(n_chunks - 1, 0, n_frames, endpoint=False).round().astype(int)) if n_frames else set()
        for c in range(n_chunks):
            tc = temps[c * chunk:(c + 1) * chunk]
            st, _ = I.run_chunk(efn, st, spec, ens, tc, np.zeros(chunk), every=chunk)
            if bool(st.overflow):
                raise RuntimeError(f"{task['name']} {segment}: neighbour list overflow")
            if c in keep:
                a = atoms.copy()
                a.set_cell(np.asarray(st.cell))
                a.set_positions(np.asarray(st.positions))
                a.info.update(segment=segment, temperature=float(tc[-1]))
                frames.append(a)
        return np.asarray(st.positions), np.asarray(st.cell), np.asarray(st.momenta)

    n = lambda k: max(int(k * s) // chunk * chunk, chunk)  # noqa: E731
    pos, cell, mom = md(atoms.positions, cell0, None, [3000.0] * 400, "melt", 0)
    pos, cell, mom = md(pos, cell, mom, [3000.0] * n(1200), "melt", 6)
    pos, cell, mom = md(pos, cell, mom, [2000.0] * n(600), "hot", 3)
    pos, cell, mom = md(pos, cell, mom, np.linspace(2000.0, 300.0, n(1600)), "quench", 8)
    pos, cell, mom = md(pos, cell, mom, [300.0] * n(800), "glass", 4)
    gpos, gcell, gmom = pos, cell, mom
    if task.get("profile") == "strain":
        states = [(nm, e) for nm, e, _ in STRAINS] + STRAINS_EXTRA
        for name, eps in states:
            d = np.diag(1.0 + np.asarray(eps, float))
            p3, c3, m3 = md(gpos @ d, gcell @ d, gmom, [300.0] * 300, f"strain:{name}", 3)
            if min(eps) < 0:
                md(p3, c3, m3, [1200.0] * 300, f"strainhot:{name}", 3)
        frames = [f for f in frames if f.info["segment"].startswith("strain")]
        log(f"{task['name']}: {len(frames)} frames, {len(symbols)} atoms")
        return frames
    md(gpos, gcell, gmom, [900.0] * n(600), "warm", 3)
    for name, eps, hot in STRAINS:
        d = np.diag(1.0 + np.asarray(eps, float))
        p3, c3, m3 = md(gpos @ d, gcell @ d, gmom, [300.0] * 200, f"strain:{name}", 2)
        if hot:
            md(p3, c3, m3, [1200.0] * 200, f"strainhot:{name}", 2)
    log(f"{task['name']}: {len(frames)} frames, {len(symbols)} atoms")
    return frames


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("teacher_configs"))
    ap.add_argument("--atoms", type=int, default=100)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--part", default="0/1", help="run only the tasks k, k+n, ... of 'k/n' (parallel runs)")
    ap.add_argument("--strained-round", type=int, help="strain-focused set with seed 10 + K (see above)")
    a = ap.parse_args(argv)
    import ase.io

    from glassjax.atomic_write import atomic_path
    from glassjax.precision import enable_x64
    enable_x64()
    a.out.mkdir(parents=True, exist_ok=True)
    k, nparts = (int(x) for x in a.part.split("/"))
    todo = [t for t in tasks(a.atoms, a.strained_round) if (not a.only or t["name"] in a.only)][k::nparts]
    for t in todo:
        dest = a.out / f"{t['name']}.extxyz"
        if dest.exists():
            continue
        t0 = time.time()
        rng = np.random.default_rng(t["seed"])
        frames = _frames_crystal(t, rng) if "crystal" in t else _frames_glass(t, print)
        with atomic_path(dest, suffix=".extxyz") as tmp:
            ase.io.write(tmp, frames, format="extxyz")
        print(f"{t['name']}: wrote {len(frames)} frames in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
