"""Training checkpoints round-trip exactly, prune old steps and survive a failed write."""

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from glassjax.errors import GlassJaxError
from glassjax.train.checkpoint import CheckpointManager


def _state(seed):
    params = {"w": jax.random.normal(jax.random.PRNGKey(seed), (4, 3)), "b": jnp.arange(3.0)}
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    _, opt_state = opt.update(grads, opt_state, params)
    return {"params": params, "opt_state": opt_state, "step": jnp.asarray(7),
            "key": jax.random.PRNGKey(seed + 1), "loader": {"epoch": 2, "pos": 5}}


def test_round_trip_and_pruning(tmp_path):
    mgr = CheckpointManager(tmp_path / "ckpt", keep=2)
    for step in (10, 20, 30):
        mgr.save(step, _state(step), meta={"note": f"s{step}"})
    assert mgr.steps() == [20, 30] and mgr.latest_step() == 30
    restored, meta = mgr.restore(_state(0))
    ref = _state(30)
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert meta["note"] == "s30" and meta["step"] == 30


def test_failed_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, keep=3)
    mgr.save(1, _state(1))

    from flax import serialization

    def boom(_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(serialization, "to_bytes", boom)
    with pytest.raises(RuntimeError):
        mgr.save(2, _state(2))
    assert mgr.latest_step() == 1
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    restored, _ = mgr.restore(_state(0))
    np.testing.assert_array_equal(np.asarray(restored["params"]["w"]), np.asarray(_state(1)["params"]["w"]))


def test_restore_without_checkpoint_or_mismatched_shape(tmp_path):
    with pytest.raises(GlassJaxError, match="no checkpoint"):
        CheckpointManager(tmp_path).restore(_state(0))
    mgr = CheckpointManager(tmp_path)
    mgr.save(1, {"w": jnp.zeros((2, 2))})
    with pytest.raises(GlassJaxError, match="cannot restore"):
        mgr.restore({"w": jnp.zeros((2, 2)), "extra": jnp.zeros(3)})


def test_atomic_writes_use_the_umask_not_private_mode(tmp_path):
    import os
    import stat

    from glassjax.atomic_write import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
