"""The default Li-B-Si-O potential shipped inside the package.

glassjax ships a small DeepPot-SE ensemble for Li2O-B2O3-SiO2 glasses, *distilled* from the
universal potential SevenNet-0 (a PBE-trained graph network whose weights ship in its own
wheel).  It is **not** the potential of the two seed papers (their DFT data and models are
not public): it reproduces the teacher, with the errors reported in
``docs/default_potential.md``, and inherits the teacher's PBE biases.  How it was made
(``train/teacher/generate.py``, ``train/default_potential.toml``) is documented there too.

Files, in ``glassjax/potentials/default/``: ``member_0.dp`` ... ``member_{K-1}.dp`` (the
ensemble; member 0 is the one used for MD) and ``info.json`` (teacher, data, training
settings, held-out errors).

    from glassjax.pretrained import default_model_path, default_ensemble_paths
    atoms.calc = GlassJaxCalculator()          # member 0 of the default potential
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from glassjax.errors import ModelError

DEFAULT_DIR = Path(__file__).resolve().parent / "potentials" / "default"


def _missing() -> ModelError:
    return ModelError(f"the default potential is missing from {DEFAULT_DIR}: the installation is incomplete; "
                      "reinstall glassjax (pip install -e .) or pass a model file explicitly")


def default_ensemble_paths() -> List[Path]:
    """The ensemble members' ``.dp`` files, member 0 first."""
    paths = sorted(DEFAULT_DIR.glob("member_*.dp"), key=lambda p: int(p.stem.split("_")[1]))
    if not paths:
        raise _missing()
    return paths


def default_model_path() -> Path:
    """The ``.dp`` file of the default potential used for MD (ensemble member 0)."""
    return default_ensemble_paths()[0]


def default_info() -> Dict:
    """Provenance and measured errors of the default potential (``info.json``)."""
    p = DEFAULT_DIR / "info.json"
    if not p.exists():
        raise _missing()
    return json.loads(p.read_text())


def resolve_model(model) -> object:
    """``None`` or ``"default"`` -> the default potential's path; anything else unchanged."""
    if model is None or (isinstance(model, str) and model == "default"):
        return default_model_path()
    return model
