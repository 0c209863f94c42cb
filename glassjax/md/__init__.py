"""Molecular dynamics: glass builder, classical potential, integrators, minimisation, output.

Modules (import them directly; importing the package imports nothing heavy):

* :mod:`glassjax.md.compositions`: the papers' 18 glasses (composition, density, 3B/4B).
* :mod:`glassjax.md.builder`: random periodic glass configurations (``build_glass``).
* :mod:`glassjax.md.classical`: Teter/Du potential (Deng-Du B-O, DSF Coulomb), Lennard-Jones.
* :mod:`glassjax.md.integrators`: NVE, Nosé-Hoover-chain NVT, MTK NPT (iso / aniso / tri),
  ``run_chunk`` (a jitted ``lax.scan`` of steps).
* :mod:`glassjax.md.minimize`: FIRE with and without cell relaxation.
* :mod:`glassjax.md.schedule`: temperature ramps and holds as per-step arrays.
* :mod:`glassjax.md.runner`: the chunk driver (overflow -> reallocate and redo, blow-up checks,
  progress bar, checkpoints) and ``resume``.
* :mod:`glassjax.md.trajectory`: H5MD writer/reader, CSV thermo log, checkpoints, extxyz export.
* :mod:`glassjax.md.recipe`: TOML recipes run by ``glassjax simulate``.

Every potential is an energy function ``energy_fn(positions, cell, nl) -> E`` over a
:mod:`glassjax.neighbors` list, so DeepPot-SE models plug in the same way as the classical one.
"""
