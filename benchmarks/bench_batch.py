#!/usr/bin/env python
"""Per-atom MD throughput: B glasses in one batched program vs one big system vs B sequential runs.

    python benchmarks/bench_batch.py [--systems 18] [--atoms 300] [--steps 200] [--chunk 100]
        [--potential teter | model.dp] [--precision float64|float32] [--temperature 1000]
        [--json benchmarks/results/batch_<tag>.json] [--skip big,sequential]

Three ways to run the same amount of NVT MD (Nosé-Hoover chain, dt 1 fs, ``--temperature`` K,
neighbour list refreshed inside the jitted loop):

  (a) ``batched``: the Table II glasses (the first ``--systems`` of the 18, cycled if more),
      ``--atoms`` each (the builder's counts differ a little; padded to the largest), in one
      ``glassjax.md.batch.batched_run_chunk`` program on all local devices' first one;
  (b) ``one big``: one glass (LBS-10-50-40) with the same total atom count, one
      ``glassjax.md.integrators.run_chunk`` program;
  (c) ``sequential``: the same B glasses one after the other, each with its own
      ``run_chunk`` program (one compilation per distinct atom count).

Each path first runs one chunk of ``--chunk`` steps (compilation + first execution, reported
as ``first_chunk_s``), then ``--steps`` steps in chunks of ``--chunk`` are timed.  Throughput
= real atoms x timed steps / timed seconds (atom-steps/s; padding atoms are not counted).

Potential: ``teter`` (Teter/Du, 8 Å cutoffs, composition-dependent B-O term, per-system
tables) or a DeepPot-SE model file (``.dp`` or glassjax checkpoint).  Starting structures are
the builder's random configurations at the experimental densities: a timing benchmark, not a
physical run (the energies are only checked to be finite).

Results: a printed table and a JSON file (``benchmarks/results/``) with the machine, the
settings and one row per path.
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
sys.path.insert(0, str(HERE.parent))


from benchmarks._machine import cpu_name  # noqa: E402


def _block(tree):
    import jax

    jax.tree_util.tree_map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def _timed_chunks(run, state, n_chunks):
    """run(state) -> (state, thermo); returns (state, first_chunk_s, timed_s)."""
    t0 = time.perf_counter()
    state, th = run(state)
    _block((state, th))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(n_chunks):
        state, th = run(state)
    _block((state, th))
    return state, first, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", type=int, default=18)
    ap.add_argument("--atoms", type=int, default=300)
    ap.add_argument("--steps", type=int, default=200, help="timed steps per path (after the first chunk)")
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--dt", type=float, default=0.001, help="ps")
    ap.add_argument("--temperature", type=float, default=1000.0, help="K")
    ap.add_argument("--potential", default="teter", help="'teter' or a DeepPot-SE model file")
    ap.add_argument("--precision", default="float64", choices=("float64", "float32"))
    ap.add_argument("--skip", default="", help="comma list of paths to skip: batched,big,sequential")
    ap.add_argument("--skin", type=float, default=1.0)
    ap.add_argument("--json", default=None, help="output JSON (default benchmarks/results/batch_<tag>.json)")
    args = ap.parse_args(argv)
    if args.steps % args.chunk:
        ap.error("--steps must be a multiple of --chunk")

    import jax

    if args.precision == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from glassjax import neighbors
    from glassjax.md import batch as B
    from glassjax.md import classical
    from glassjax.md import integrators as I
    from glassjax.md.builder import build_glass
    from glassjax.md.compositions import TABLE_II

    skip = {s for s in args.skip.split(",") if s}
    dtype = jnp.dtype(args.precision)
    if args.potential == "teter":
        pot = B.teter_potential()

        def single_efn(atoms):
            table = classical.teter_du_table(["B", "Li", "Si", "O"], composition=atoms.info["composition"])
            return classical.teter_du_energy_fn(atoms.get_chemical_symbols(), table)
    else:
        pot = B.deeppot_potential(args.potential, dtype=args.precision)
        model, variables = pot.factory.model, pot.shared

        def single_efn(atoms):
            return model.energy_fn(variables, model.types_from_species(atoms.get_chemical_symbols()))

    names = [list(TABLE_II)[i % len(TABLE_II)] for i in range(args.systems)]
    glasses = [build_glass(nm, n_atoms=args.atoms, seed=i) for i, nm in enumerate(names)]
    n_real = sum(len(a) for a in glasses)
    ens = I.nvt(args.dt, 0.1)
    n_chunks = args.steps // args.chunk
    rows = []

    def single_run(atoms, seed):
        efn = single_efn(atoms)
        pos = jnp.asarray(atoms.positions, dtype)
        cell = jnp.asarray(atoms.cell.array, dtype)
        nl, spec = neighbors.allocate(pos, np.asarray(atoms.cell.array), pot.cutoff, args.skin)
        state = jax.jit(I.init_state, static_argnames=("energy_fn", "temperature", "chain"))(
            efn, pos, cell, jnp.asarray(atoms.get_masses(), dtype), nl, key=jax.random.PRNGKey(seed),
            temperature=args.temperature)
        temps = jnp.full(args.chunk, args.temperature, dtype)
        press = jnp.zeros(args.chunk, dtype)
        state, first, timed = _timed_chunks(
            lambda st: I.run_chunk(efn, st, spec, ens, temps, press, every=args.chunk), state, n_chunks)
        if bool(state.overflow) or not np.isfinite(float(state.energy)):
            print(f"  warning: {len(atoms)}-atom run overflowed or blew up (timing only)")
        return first, timed

    if "batched" not in skip:
        print(f"batched: {len(glasses)} glasses, {n_real} real atoms ...", flush=True)
        t0 = time.perf_counter()
        pot = pot.for_structures(glasses)  # DeepPot-SE: per-type capacities (no-op for Teter/Du)
        state, params, spec = B.init_batch(pot, glasses, args.temperature, skin=args.skin, dtype=dtype)
        setup = time.perf_counter() - t0
        b = len(glasses)
        temps = jnp.full((b, args.chunk), args.temperature, dtype)
        press = jnp.zeros((b, args.chunk), dtype)

        def run(st):
            return B.batched_run_chunk(pot.factory, st, params, spec, ens, temps, press, shared=pot.shared,
                                       every=args.chunk)

        state, first, timed = _timed_chunks(run, state, n_chunks)
        ok = not bool(jnp.any(state.overflow)) and bool(jnp.all(jnp.isfinite(state.energy)))
        rows.append({"path": "batched", "systems": b, "atoms": n_real, "padded_atoms": int(state.positions.shape[1]) * b,
                     "setup_s": setup, "first_chunk_s": first, "timed_s": timed,
                     "atom_steps_per_s": n_real * args.steps / timed, "ok": ok})
    if "big" not in skip:
        big = build_glass("LBS-10-50-40", n_atoms=n_real, seed=0)
        print(f"one big system: {len(big)} atoms ...", flush=True)
        first, timed = single_run(big, 0)
        rows.append({"path": "one big", "systems": 1, "atoms": len(big), "first_chunk_s": first, "timed_s": timed,
                     "atom_steps_per_s": len(big) * args.steps / timed})
    if "sequential" not in skip:
        print(f"sequential: {len(glasses)} runs ...", flush=True)
        firsts, timeds = [], []
        for i, a in enumerate(glasses):
            f, t = single_run(a, i)
            firsts.append(f)
            timeds.append(t)
        rows.append({"path": "sequential", "systems": len(glasses), "atoms": n_real,
                     "distinct_sizes": len({len(a) for a in glasses}), "first_chunk_s": float(np.sum(firsts)),
                     "timed_s": float(np.sum(timeds)), "atom_steps_per_s": n_real * args.steps / float(np.sum(timeds))})

    dev = jax.devices()[0]
    print(f"\n{args.systems} x ~{args.atoms} atoms, {args.steps} timed steps, {args.potential}, {args.precision}, "
          f"{dev.platform} ({getattr(dev, 'device_kind', '')})")
    print(f"{'path':<12}{'atoms':>8}{'first chunk s':>15}{'timed s':>10}{'atom-steps/s':>15}")
    for r in rows:
        print(f"{r['path']:<12}{r['atoms']:>8}{r['first_chunk_s']:>15.2f}{r['timed_s']:>10.2f}"
              f"{r['atom_steps_per_s']:>15.4g}")
    out = {
        "benchmark": "bench_batch",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "platform": dev.platform, "device": getattr(dev, "device_kind", ""),
                    "devices": len(jax.devices()), "jax": jax.__version__, "python": platform.python_version()},
        "settings": vars(args),
        "rows": rows,
    }
    tag = f"{dev.platform}_{args.systems}x{args.atoms}_{Path(args.potential).stem}_{args.precision}"
    path = Path(args.json) if args.json else HERE / "results" / f"batch_{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    from glassjax.atomic_write import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
