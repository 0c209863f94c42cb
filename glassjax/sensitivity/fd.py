"""Central finite differences: the independent check of every derivative in this package.

All functions evaluate the user's function at ``x ± h`` (second order, error O(h^2)) and
never differentiate it, so they check automatic differentiation, implicit differentiation
and adjoint solves alike.  Use float64 for checks (``jax.config.update("jax_enable_x64",
True)`` is the caller's choice); in float32 the round-off error ~eps/h dominates.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.errors import ConfigError


def _check_step(h: float) -> float:
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ConfigError(f"finite-difference step h={h!r} must be a positive finite number")
    return h


def central_difference(f: Callable, x: float, h: float = 1e-4):
    """``(f(x + h) - f(x - h)) / (2 h)`` for a function of one scalar (any array output)."""
    h = _check_step(h)
    return jax.tree_util.tree_map(lambda a, b: (jnp.asarray(a) - jnp.asarray(b)) / (2.0 * h), f(x + h), f(x - h))


def directional_derivative(f: Callable, params, direction, h: float = 1e-4):
    """``(f(p + h d) - f(p - h d)) / (2 h)``: the derivative of ``f`` along ``direction``.

    ``params`` and ``direction`` are pytrees of the same structure (e.g. Flax parameters).
    Compare with ``vdot(grad f, direction)`` (:func:`tree_vdot`).
    """
    h = _check_step(h)

    def shifted(s):
        return jax.tree_util.tree_map(lambda p, d: p + s * jnp.asarray(d, dtype=jnp.result_type(p)), params, direction)

    return (jnp.asarray(f(shifted(h))) - jnp.asarray(f(shifted(-h)))) / (2.0 * h)


def tree_vdot(a, b):
    """Sum over leaves of ``vdot(a_leaf, b_leaf)`` (a scalar)."""
    leaves = jax.tree_util.tree_map(lambda x, y: jnp.vdot(jnp.ravel(x), jnp.ravel(y)), a, b)
    return sum(jax.tree_util.tree_leaves(leaves))


def random_direction(params, key, normalize: bool = True, like: Optional[object] = None):
    """A random Gaussian direction with the structure of ``params`` (unit norm by default)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    d = [jax.random.normal(k, jnp.shape(x), dtype=jnp.result_type(x)) for k, x in zip(keys, leaves)]
    if normalize:
        norm = jnp.sqrt(sum(jnp.sum(x * x) for x in d))
        d = [x / norm for x in d]
    return jax.tree_util.tree_unflatten(treedef, d)


def jacobian_fd(f: Callable, x, h: float = 1e-4):
    """Finite-difference Jacobian of ``f`` at the array ``x``: shape ``f(x).shape + x.shape``."""
    h = _check_step(h)
    x = jnp.asarray(x)
    flat = x.ravel()
    cols = []
    for i in range(flat.size):
        e = jnp.zeros_like(flat).at[i].set(h).reshape(x.shape)
        cols.append((jnp.asarray(f(x + e)) - jnp.asarray(f(x - e))) / (2.0 * h))
    out = jnp.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + x.shape)
