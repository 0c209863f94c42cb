"""The smooth environment matrix of DeepPot-SE (se_e2_a), as DeePMD-kit v3 builds it.

For a centre atom i and a neighbour slot j with displacement ``r_ji = r_j - r_i`` and
distance ``r = |r_ji|`` the row of the environment matrix is (DeePMD-kit v3,
``deepmd/dpmodel/utils/env_mat.py``)::

    R_ij = w(r) * ( 1/(r+p), x/(r+p)^2, y/(r+p)^2, z/(r+p)^2 )

with ``p`` the ``env_protection`` (0 by default) and the switch ``w``:

* ``quintic`` (DeePMD-kit v2/v3, the default): ``u = clip((r - r_s)/(r_c - r_s), 0, 1)``,
  ``w = 1 - 10 u^3 + 15 u^4 - 6 u^5`` (value and first two derivatives continuous);
* ``cosine`` (the 2022 LBS paper, Eq. 2: ``s(r) = 1/r [1/2 cos(pi (r - r_cs)/(r_c - r_cs))
  + 1/2]`` for ``r_cs <= r < r_c``): ``w = 1/2 cos(pi u) + 1/2`` (value and first
  derivative continuous).

Empty slots give a zero row.  The row is then normalised per centre type,
``(R_ij - davg[t_i, j]) / dstd[t_i, j]``, so that empty slots contribute ``-davg/dstd``.
Padding centres (type < 0) keep a zero matrix (no normalisation), as DeePMD-kit does for
virtual atoms.
"""

from __future__ import annotations

import jax.numpy as jnp

SWITCHES = ("quintic", "cosine")


def quintic_switch(r, rcut_smth: float, rcut: float):
    """Quintic switch ``w(r)`` (any shape), 1 below ``rcut_smth``, 0 beyond ``rcut``."""
    u = (jnp.clip(r, rcut_smth, rcut) - rcut_smth) / (rcut - rcut_smth)
    u2 = u * u
    return u2 * u * (-6.0 * u2 + 15.0 * u - 10.0) + 1.0


def cosine_switch(r, rcut_smth: float, rcut: float):
    """Cosine switch ``w(r) = 1/2 cos(pi u) + 1/2`` of the 2022 paper (any shape)."""
    u = (jnp.clip(r, rcut_smth, rcut) - rcut_smth) / (rcut - rcut_smth)
    return 0.5 * jnp.cos(jnp.pi * u) + 0.5


def switch_fn(name: str):
    """Return the switch function called ``name`` (``"quintic"`` or ``"cosine"``)."""
    if name == "quintic":
        return quintic_switch
    if name == "cosine":
        return cosine_switch
    from glassjax.errors import ConfigError

    raise ConfigError(f"unknown switch {name!r}: use one of {SWITCHES}")


def environment_matrix(rij, valid, rcut: float, rcut_smth: float, switch: str = "quintic",
                       protection: float = 0.0):
    """Raw (unnormalised) environment matrix.

    Args:
        rij: (N, S, 3) displacements r_j - r_i to each neighbour slot, Å.
        valid: (N, S) bool, True for a filled slot.
        rcut, rcut_smth: cutoff and start of the smoothing, Å.
        switch: ``"quintic"`` or ``"cosine"``.
        protection: ``env_protection`` p added to r in the denominators.

    Returns:
        (N, S, 4) rows ``w(r) (1/(r+p), x/(r+p)^2, y/(r+p)^2, z/(r+p)^2)``; zero in empty slots.
    """
    # Never take the norm of a zero vector (NaN gradient): empty slots get a dummy vector.
    safe = jnp.where(valid[..., None], rij, jnp.ones_like(rij))
    r = jnp.sqrt(jnp.sum(safe * safe, axis=-1, keepdims=True))  # (N, S, 1)
    w = switch_fn(switch)(r, rcut_smth, rcut)
    w = jnp.where(valid[..., None], w, 0.0)
    rp = r + protection
    t0 = 1.0 / rp
    t1 = safe / (rp * rp)
    return jnp.concatenate([t0, t1], axis=-1) * w


def normalise(env, center_types, davg, dstd):
    """Normalise environment matrices per centre type.

    Args:
        env: (N, S, 4) raw environment matrix.
        center_types: (N,) int, type of each centre; negative marks padding atoms.
        davg, dstd: (T, S, 4) per-type mean and standard deviation.

    Returns:
        (N, S, 4) ``(env - davg[t]) / dstd[t]``; padding centres keep ``env`` (zeros).
    """
    real = center_types >= 0
    t = jnp.where(real, center_types, 0)
    avg = jnp.where(real[:, None, None], davg[t], 0.0)
    std = jnp.where(real[:, None, None], dstd[t], 1.0)
    return (env - avg) / std
