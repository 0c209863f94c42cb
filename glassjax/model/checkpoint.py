"""glassjax's own model checkpoint format: one HDF5 file.

Layout::

    /                  attrs: format = "glassjax-deeppot", format_version = 1,
                              config = JSON of DeepPotConfig.to_dict(), metadata = JSON (free)
    /params/...        the trainable weights, one dataset per leaf (groups = pytree dicts)
    /constants/...     davg, dstd, bias_atom_e, out_bias, out_std

Arrays are stored in the precision they have (float64 normally).  Written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from glassjax.atomic_write import atomic_path
from glassjax.errors import ModelError

FORMAT = "glassjax-deeppot"
FORMAT_VERSION = 1


def _write_tree(group, tree):
    for k, v in tree.items():
        if isinstance(v, dict):
            _write_tree(group.create_group(k), v)
        else:
            group.create_dataset(k, data=np.asarray(v))


def _read_tree(group):
    import h5py

    out = {}
    for k, v in group.items():
        out[k] = _read_tree(v) if isinstance(v, h5py.Group) else np.array(v[()])
    return out


def save_checkpoint(path, config, variables, metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``config`` + ``variables`` (``{"params", "constants"}``) to ``path``."""
    import h5py

    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["config"] = json.dumps(config.to_dict())
            f.attrs["metadata"] = json.dumps(metadata or {})
            for key in ("params", "constants"):
                _write_tree(f.create_group(key), {k: v for k, v in variables[key].items()})


def is_checkpoint(path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def load_checkpoint(path):
    """``(DeepPotConfig, variables (numpy), metadata)`` from a glassjax checkpoint."""
    import h5py

    from glassjax.model.deeppot import DeepPotConfig

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise ModelError(f"{path}: not a glassjax checkpoint (format attribute "
                                 f"{f.attrs.get('format')!r})")
            version = int(f.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise ModelError(f"{path}: checkpoint format version {version} is newer than this "
                                 f"glassjax understands ({FORMAT_VERSION}); upgrade glassjax")
            config = DeepPotConfig.from_dict(json.loads(f.attrs["config"]))
            metadata = json.loads(f.attrs.get("metadata", "{}"))
            variables = {"params": _read_tree(f["params"]), "constants": _read_tree(f["constants"])}
    except OSError as exc:
        raise ModelError(f"{path}: cannot read checkpoint ({exc})") from None
    return config, variables, metadata
