"""DeePMD-kit's energy loss (``EnergyStdLoss``, mean-squared error form).

With N_f the number of real atoms of frame f, and the sums over frames averaged::

    L = p_e * < (E_f - E^_f)^2 / N_f^k >
      + p_f * < |F_fi - F^_fi|^2 / 3 >_(real atoms)
      + p_v * < sum_ab (W_fab - W^_fab)^2 / 9 / N_f^k >

k = 1 reproduces DeePMD-kit's default ("legacy", ``intensive_ener_virial = false``);
k = 2 its intensive variant.  With ``relative_f = c`` (eV/Å, DeePMD-kit's option of that name)
the force term uses the relative error ``(F_fi - F^_fi) / (|F^_fi| + c)``, so atoms with large
label forces (close contacts, dense glass) do not set the scale of the fit; the reported
``rmse_f`` stays the absolute error.  The prefactors move linearly with the learning rate from
their start to their limit values: ``p = limit + (start - limit) * lr / start_lr``.  Frames
without a label (``has_energy`` etc. False) do not contribute to that term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import jax.numpy as jnp


@dataclass(frozen=True)
class LossPrefactors:
    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0
    start_pref_v: float = 0.0
    limit_pref_v: float = 0.0
    intensive: bool = False
    relative_f: Optional[float] = None

    def __post_init__(self):
        if self.relative_f is not None and not self.relative_f > 0:
            from glassjax.errors import ConfigError
            raise ConfigError(f"loss.relative_f must be > 0 eV/Å (got {self.relative_f}); leave it out for "
                              "the absolute force loss")

    def at(self, lr, start_lr):
        """(p_e, p_f, p_v) at learning rate ``lr``."""
        c = lr / start_lr
        return (self.limit_pref_e + (self.start_pref_e - self.limit_pref_e) * c,
                self.limit_pref_f + (self.start_pref_f - self.limit_pref_f) * c,
                self.limit_pref_v + (self.start_pref_v - self.limit_pref_v) * c)


def _masked_frame_mean(values, frame_mask):
    w = frame_mask.astype(values.dtype)
    return jnp.sum(values * w) / jnp.maximum(jnp.sum(w), 1.0)


def energy_loss(pred: Dict, batch: Dict, prefs: LossPrefactors, lr, start_lr):
    """DeePMD-kit's loss for a padded batch.

    Args:
        pred: ``energy`` (B,), ``forces`` (B, N, 3), ``virial`` (B, 3, 3) predictions.
        batch: labels with the same keys, ``atom_mask`` (B, N) bool, ``natoms`` (B,), and
            optional ``has_energy``/``has_forces``/``has_virial`` (B,) bool flags.
        prefs: prefactors; lr, start_lr: current and initial learning rate.

    Returns:
        ``(loss, metrics)`` with metrics ``rmse_e`` (eV/atom), ``rmse_f`` (eV/Å),
        ``rmse_v`` (eV/atom), over the frames/atoms that carry the label.
    """
    b = batch["energy"].shape[0]
    ones = jnp.ones((b,), dtype=bool)
    has_e = batch.get("has_energy", ones)
    has_f = batch.get("has_forces", ones)
    has_v = batch.get("has_virial", ones)
    natoms = batch["natoms"].astype(pred["energy"].dtype)
    k = 2 if prefs.intensive else 1
    p_e, p_f, p_v = prefs.at(lr, start_lr)

    se_e = (pred["energy"] - batch["energy"]) ** 2
    loss_e = _masked_frame_mean(se_e / natoms**k, has_e)
    rmse_e = jnp.sqrt(_masked_frame_mean(se_e / natoms**2, has_e))

    atom_w = (batch["atom_mask"] & has_f[:, None]).astype(pred["forces"].dtype)
    se_f = jnp.sum((pred["forces"] - batch["forces"]) ** 2, axis=-1)  # (B, N)
    n_f = jnp.maximum(jnp.sum(atom_w), 1.0)
    loss_f = jnp.sum(se_f * atom_w) / (3.0 * n_f)
    rmse_f = jnp.sqrt(loss_f)
    if prefs.relative_f is not None:
        scale = jnp.linalg.norm(batch["forces"], axis=-1) + prefs.relative_f  # (B, N)
        loss_f = jnp.sum(se_f / scale**2 * atom_w) / (3.0 * n_f)

    se_v = jnp.mean((pred["virial"] - batch["virial"]) ** 2, axis=(-2, -1))
    loss_v = _masked_frame_mean(se_v / natoms**k, has_v)
    rmse_v = jnp.sqrt(_masked_frame_mean(se_v / natoms**2, has_v))

    any_e = jnp.any(has_e)
    any_f = jnp.any(has_f)
    any_v = jnp.any(has_v)
    loss = (jnp.where(any_e, p_e, 0.0) * loss_e + jnp.where(any_f, p_f, 0.0) * loss_f
            + jnp.where(any_v, p_v, 0.0) * loss_v)
    return loss, {"loss": loss, "rmse_e": rmse_e, "rmse_f": rmse_f, "rmse_v": rmse_v,
                  "pref_e": p_e, "pref_f": p_f, "pref_v": p_v}
