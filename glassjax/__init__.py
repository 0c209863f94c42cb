"""glassjax: a JAX-native, differentiable DeePMD workflow for oxide glasses.

Data flow (one folder per stage)::

    glassjax.data      DFT data (VASP, DeePMD npy/raw, extxyz) -> one HDF5 dataset
    glassjax.model     DeepPot-SE (se_e2_a) in Flax, DeePMD-kit .dp import/export
    glassjax.md        integrators, glass builder, classical potentials, protocols
    glassjax.analysis  vmapped structure/dynamics kernels (coordination, rings, S(q), ...)

Importing glassjax never changes global JAX settings: call
:func:`glassjax.precision.enable_x64` (or pass ``--x64`` on the CLI) to work in float64.
"""

__version__ = "0.1.0"

from glassjax.errors import GlassJaxError  # noqa: F401
