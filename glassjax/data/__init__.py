"""DFT data: readers for DeePMD-kit systems, VASP and ASE formats, and the HDF5 dataset."""

from glassjax.data.frames import Frames  # noqa: F401
