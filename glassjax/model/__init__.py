"""DeepPot-SE (se_e2_a) in Flax, numerically DeePMD-kit v3's model.

Entry points::

    from glassjax.model import DeepPot, DeepPotConfig, load_model, save_dp, save_checkpoint
    model, variables = load_model("frozen.dp")        # or a glassjax checkpoint (.h5)
    e, f, w = model.energy_forces_virial(variables, positions, cell, types)

Modules: :mod:`~glassjax.model.env_mat` (environment matrix, quintic and cosine switch),
:mod:`~glassjax.model.nlist` (DeePMD-kit's per-type neighbour sections, overflow reported),
:mod:`~glassjax.model.descriptor`, :mod:`~glassjax.model.fitting`,
:mod:`~glassjax.model.deeppot` (config, Flax module, energy functions),
:mod:`~glassjax.model.stats` (davg/dstd and energy bias from data),
:mod:`~glassjax.model.dpfile` (``.dp`` import/export), :mod:`~glassjax.model.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

from glassjax.model.deeppot import DeepPot, DeepPotConfig, DeepPotModule, cast_variables
from glassjax.model.descriptor import DescriptorConfig
from glassjax.model.fitting import FittingConfig

__all__ = ["DeepPot", "DeepPotConfig", "DeepPotModule", "DescriptorConfig", "FittingConfig",
           "load_model", "save_dp", "save_checkpoint", "cast_variables"]


def load_model(path, dtype=None):
    """Load a ``.dp`` file or a glassjax checkpoint: returns ``(DeepPot, variables)``.

    ``dtype``: ``"float64"``/``"float32"``; default float64 when JAX x64 is on, else float32.
    Variables are cast to it.  A model loaded from ``.dp`` remembers the file's dictionary,
    so :func:`save_dp` writes back the same structure.
    """
    from glassjax.errors import ModelError
    from glassjax.model import checkpoint, dpfile

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    template = None
    if checkpoint.is_checkpoint(path):
        config, variables, _ = checkpoint.load_checkpoint(path)
    elif path.suffix in (".dp", ".hlo") or _has_json_attr(path):
        template = dpfile.read_dp_dict(path)
        config, variables = dpfile.model_from_dict(template, path)
    else:
        raise ModelError(f"{path}: neither a DeePMD-kit .dp file nor a glassjax checkpoint "
                         "(convert TensorFlow/PyTorch models with `dp convert-backend model.pth model.dp`)")
    model = DeepPot(config, dtype)
    model.dp_template = template
    return model, cast_variables(variables, model.dtype)


def _has_json_attr(path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "json" in f.attrs
    except OSError:
        return False


def save_dp(path, model, variables) -> None:
    """Write ``model``/``variables`` as a DeePMD-kit ``.dp`` file."""
    from glassjax.model import dpfile

    dpfile.save_dp(path, model.config, variables, template=getattr(model, "dp_template", None))


def save_checkpoint(path, model, variables, metadata=None) -> None:
    """Write a glassjax checkpoint (HDF5: config JSON + params + constants)."""
    from glassjax.model import checkpoint

    checkpoint.save_checkpoint(path, model.config, variables, metadata)
