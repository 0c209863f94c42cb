"""The training configuration (TOML), in DeePMD-kit's vocabulary.

Example (``train/lbs_small.toml``)::

    [model]
    type_map = ["Li", "B", "Si", "O"]   # optional: default = the dataset's elements
    energy_bias = "ridge"               # or "reference" with [model.reference_energies]

    [model.descriptor]                  # se_e2_a
    rcut = 6.0
    rcut_smth = 5.8
    sel = "auto"                        # or one integer per type, e.g. [40, 40, 40, 100]
    neuron = [25, 50, 100]
    axis_neuron = 16

    [model.fitting]
    neuron = [240, 240, 240]

    [model.zbl]                         # optional: DP + ZBL (DeePMD-kit's use_srtab), a repulsive
    sw_rmin = 0.7                       # wall at close contact; the model alone above sw_rmax
    sw_rmax = 1.0                       # (keep it below the closest distance in the data)

    [learning_rate]                     # lr = start_lr * r^floor(step / decay_steps)
    start_lr = 1e-3
    stop_lr = 3.51e-8
    decay_steps = 5000

    [loss]                              # prefactors move from start to limit with lr
    start_pref_e = 0.02
    limit_pref_e = 1.0
    start_pref_f = 1000.0
    limit_pref_f = 1.0
    # relative_f = 1.0                  # optional: force errors relative to |F_label| + this (eV/Å)

    [training]
    data = "data.h5"
    numb_steps = 1000000
    batch_size = 1
    ensemble = 1          # >1: members differing only in their initial seed, trained in one program
    devices = 1           # data-parallel over this many devices (0 = all); batch_size must divide
    init_from = "runs/v1" # optional fine-tuning: weights and statistics from that run's newest
                          # checkpoint (same model and ensemble size), fresh optimizer, step 0
    bucket = true         # batches of one atom count, padded to it (false: pad all to the largest;
                          # "composition": one composition per batch, atoms sorted by type and
                          # each type's networks run on its own atoms: about 4x faster for 4 types)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from glassjax.config import load_toml
from glassjax.errors import ConfigError
from glassjax.train.loss import LossPrefactors


@dataclass
class DescriptorSection:
    rcut: float = 6.0
    rcut_smth: float = 0.5
    sel: Union[str, List[int]] = "auto"
    neuron: List[int] = field(default_factory=lambda: [25, 50, 100])
    axis_neuron: int = 16
    type_one_side: bool = False
    resnet_dt: bool = False
    activation: str = "tanh"
    switch: str = "quintic"

    def __post_init__(self):
        if not 0 <= self.rcut_smth < self.rcut:
            raise ConfigError(f"model.descriptor needs 0 <= rcut_smth < rcut (got rcut_smth="
                              f"{self.rcut_smth}, rcut={self.rcut})")
        if isinstance(self.sel, str) and not self.sel.startswith("auto"):
            raise ConfigError(f"model.descriptor.sel must be 'auto', 'auto:<factor>' or a list of "
                              f"integers, got {self.sel!r}")
        if self.switch not in ("quintic", "cosine"):
            raise ConfigError(f"model.descriptor.switch must be 'quintic' or 'cosine', got {self.switch!r}")


@dataclass
class FittingSection:
    neuron: List[int] = field(default_factory=lambda: [240, 240, 240])
    resnet_dt: bool = True
    activation: str = "tanh"


@dataclass
class ZBLSection:
    """``[model.zbl]``: train a DP + pair-table model (DeePMD-kit's ``use_srtab``/``sw_rmin``/
    ``sw_rmax``/``smin_alpha``; see :mod:`glassjax.model.pairtab`).  ``table``: a DeePMD-kit
    pair-table file (relative to the config); left out, the ZBL repulsion of
    :func:`glassjax.model.zbl.zbl_table` is used."""

    sw_rmin: float = 0.7
    sw_rmax: float = 1.0
    smin_alpha: float = 0.1
    table: Optional[str] = None

    def __post_init__(self):
        if not 0.0 <= self.sw_rmin < self.sw_rmax:
            raise ConfigError(f"model.zbl: need 0 <= sw_rmin < sw_rmax (got {self.sw_rmin}, {self.sw_rmax} Å)")
        if not self.smin_alpha > 0:
            raise ConfigError(f"model.zbl.smin_alpha must be > 0 Å (got {self.smin_alpha})")


@dataclass
class ModelSection:
    type_map: Optional[List[str]] = None
    descriptor: DescriptorSection = field(default_factory=DescriptorSection)
    fitting: FittingSection = field(default_factory=FittingSection)
    zbl: Optional[ZBLSection] = None
    energy_bias: str = "ridge"
    reference_energies: Dict[str, float] = field(default_factory=dict)
    precision: str = "float64"

    def __post_init__(self):
        if self.energy_bias not in ("ridge", "reference"):
            raise ConfigError(f"model.energy_bias must be 'ridge' or 'reference', got {self.energy_bias!r}")
        if self.precision not in ("float64", "float32"):
            raise ConfigError(f"model.precision must be 'float64' or 'float32', got {self.precision!r}")


@dataclass
class LearningRateSection:
    start_lr: float = 1.0e-3
    stop_lr: float = 3.51e-8
    decay_steps: int = 5000


#: The ``[loss]`` table: DeePMD-kit's start/limit prefactors (see glassjax.train.loss).
LossSection = LossPrefactors


@dataclass
class TrainingSection:
    data: str = "data.h5"
    numb_steps: int = 1000
    batch_size: int = 1
    seed: int = 0
    disp_freq: int = 100
    save_freq: int = 1000
    val_batches: int = 4
    output_dir: str = "run"
    stat_frames_per_system: int = 10
    ensemble: int = 1
    devices: int = 1
    bucket: Union[bool, str] = True
    init_from: Optional[str] = None   # fine-tune: start from another run's newest checkpoint

    def __post_init__(self):
        for key in ("numb_steps", "batch_size", "disp_freq", "save_freq", "ensemble"):
            if getattr(self, key) < 1:
                raise ConfigError(f"training.{key} must be at least 1, got {getattr(self, key)}")
        from glassjax.data.loader import bucket_mode

        self.bucket = bucket_mode(self.bucket)
        if self.devices < 0:
            raise ConfigError(f"training.devices must be >= 0 (0 = all local devices), got {self.devices}")


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    learning_rate: LearningRateSection = field(default_factory=LearningRateSection)
    loss: LossSection = field(default_factory=LossSection)
    training: TrainingSection = field(default_factory=TrainingSection)


def load_train_config(path) -> TrainConfig:
    """Read and check a training TOML file (errors name the file and key)."""
    return load_toml(TrainConfig, path)
