"""Typed TOML configs: values converted, unknown keys and wrong types rejected by path."""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import pytest

from glassjax.config import from_dict, load_toml
from glassjax.errors import ConfigError


@dataclass
class Inner:
    rcut: float = 6.0
    sel: List[int] = field(default_factory=lambda: [10, 20])
    axis: Optional[int] = None


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    pair: Tuple[float, float] = (1.0, 2.0)


def test_nested_values_are_converted_and_defaults_kept(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[inner]\nrcut = 5\nsel = [1, 2, 3]\n')
    cfg = load_toml(Outer, p)
    assert cfg.inner.rcut == 5.0 and isinstance(cfg.inner.rcut, float)
    assert cfg.inner.sel == [1, 2, 3] and cfg.inner.axis is None and cfg.pair == (1.0, 2.0)


def test_unknown_key_is_named_with_its_path_and_a_suggestion(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[inner]\nrcutt = 5\n')
    with pytest.raises(ConfigError, match=r"c.toml: unknown key 'inner.rcutt'; did you mean 'rcut'"):
        load_toml(Outer, p)


def test_wrong_type_missing_key_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"inner.sel\[1\]: expected an integer"):
        from_dict(Outer, {"name": "x", "inner": {"sel": [1, "a"]}})
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        from_dict(Outer, {})
    p = tmp_path / "bad.toml"
    p.write_text("name = \n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_toml(Outer, p)
