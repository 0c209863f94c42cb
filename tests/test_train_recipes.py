"""Every shipped training recipe is a valid config (recipes must not drift from the schema)."""

from pathlib import Path

import pytest

from glassjax.train.config import load_train_config

RECIPES = sorted((Path(__file__).resolve().parents[1] / "train").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_parses(path):
    cfg = load_train_config(path)
    assert cfg.model.descriptor.rcut_smth < cfg.model.descriptor.rcut
    assert (path.parent / cfg.training.data).parent.exists()
