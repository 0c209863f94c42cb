"""DFT data: readers for DeePMD-kit systems, VASP and ASE formats, and the HDF5 dataset.

Data flow::

    read_any / read_deepmd / read_vasp / read_ase  ->  [Frames, ...]   (one per system)
    write_dataset(path, frames)                    ->  one HDF5 file (atomic, appendable)
    Dataset(path) / read_dataset(path, split)      ->  back to Frames
    BatchLoader(path, batch_size, split="train")   ->  padded, masked numpy batches

See ``docs/data.md`` for the file layout, units and conventions.
"""

from glassjax.data.frames import Frames  # noqa: F401
from glassjax.data.readers import (  # noqa: F401
    DataNotice, find_inputs, read_any, read_ase, read_deepmd, read_vasp,
)
from glassjax.data.dataset import (  # noqa: F401
    Dataset, content_hash, read_dataset, read_frames, split_mask, summarize, write_dataset,
)
from glassjax.data.loader import BatchLoader  # noqa: F401
