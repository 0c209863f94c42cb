#!/usr/bin/env python
"""A batch of Table II glasses sharded over the devices of several hosts with ``jax.distributed``.

Every process runs this same script; JAX joins them into one program whose batch axis is
split over all devices of all processes (``glassjax.md.batch.device_mesh``).  Each process
builds the same glasses from the same seeds, so every process holds the same full inputs and
fills only its own devices' shards.  Process 0 writes the results.

Launch (one line per host; the coordinator is process 0's host and a free port)::

    # host A                                   # host B
    python simulate/multihost_example.py \\     python simulate/multihost_example.py \\
        --coordinator hostA:12355 \\                --coordinator hostA:12355 \\
        --num-processes 2 --process-id 0           --num-processes 2 --process-id 1

Under SLURM (or on Cloud TPU) ``jax.distributed.initialize()`` finds these by itself:
``srun --nodes=2 --ntasks-per-node=1 python simulate/multihost_example.py``.

To try it on one machine with CPU devices (two processes, two devices each)::

    for i in 0 1; do XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
      python simulate/multihost_example.py --coordinator localhost:12355 --num-processes 2 \\
      --process-id $i --cpu-collectives gloo & done; wait

Output (process 0): ``--out`` CSV with one row per glass: final potential energy per atom
(eV), temperature (K) and density (g/cm^3).  The glasses start from the builder's random
configurations, which heat up strongly in the first steps: a demonstration of the launch, not
a production protocol (see ``glassjax.md.sweep`` for melt-quench and equilibration).
On one machine, 2 processes x 2 CPU devices give the same CSV as 1 process x 4 devices.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--coordinator", default=None, help="host:port of process 0 (omit under SLURM/TPU)")
    ap.add_argument("--num-processes", type=int, default=None)
    ap.add_argument("--process-id", type=int, default=None)
    ap.add_argument("--cpu-collectives", default=None, help="'gloo' for multi-process CPU runs")
    ap.add_argument("--glasses", type=int, default=18, help="the first N Table II glasses")
    ap.add_argument("--atoms", type=int, default=300)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--temperature", type=float, default=300.0, help="K (NPT at 0 GPa)")
    ap.add_argument("--potential", default="teter", help="'teter' or a DeepPot-SE model file")
    ap.add_argument("--out", default="multihost_example.csv")
    args = ap.parse_args(argv)

    import jax

    if args.cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", args.cpu_collectives)
    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)
    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from glassjax.md import batch as B
    from glassjax.md import integrators as I
    from glassjax.md.builder import build_glass
    from glassjax.md.compositions import TABLE_II

    names = list(TABLE_II)[:args.glasses]
    glasses = [build_glass(nm, n_atoms=args.atoms, seed=i) for i, nm in enumerate(names)]
    pot = B.teter_potential() if args.potential == "teter" else B.deeppot_potential(args.potential)
    pot = pot.for_structures(glasses)  # DeepPot-SE: each type's networks on its own atoms only
    state, params, spec = B.init_batch(pot, glasses, args.temperature, seed=0)
    mesh = B.device_mesh()  # every device of every process
    if jax.process_index() == 0:
        print(f"{jax.process_count()} processes, {len(mesh.devices)} devices, {len(names)} glasses", flush=True)
    state, spec, th = B.batched_simulate(pot.factory, state, params, spec, I.npt(0.001, 0.1, 1.0),
                                         np.full(args.steps, args.temperature), shared=pot.shared,
                                         chunk=min(args.steps, 500), every=min(args.steps, 100), names=names,
                                         mesh=mesh, progress=jax.process_index() == 0)
    if jax.process_index() == 0:
        with open(args.out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["glass", "n_atoms", "pe_eV_per_atom", "T_K", "density_g_cm3"])
            for i, (nm, a) in enumerate(zip(names, glasses)):
                w.writerow([nm, len(a), f"{th['potential_energy'][i, -1] / len(a):.6f}",
                            f"{th['temperature'][i, -1]:.2f}", f"{th['density'][i, -1]:.5f}"])
        print(f"wrote {args.out}")
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
