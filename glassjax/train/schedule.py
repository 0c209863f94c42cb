"""DeePMD-kit's exponential learning-rate decay (``"type": "exp"``), as an optax schedule.

    lr(t) = start_lr * r ** floor(t / decay_steps),   r = (stop_lr / start_lr) ** (decay_steps / num_steps)

clipped below at ``stop_lr``.  As in DeePMD-kit, when ``decay_steps >= num_steps`` the
decay period falls back to 100 steps (or ``num_steps // 100 + 1`` for short runs), and a
given ``decay_rate`` replaces the interpolated ``r``.  ``smooth=True`` uses ``t /
decay_steps`` without the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import jax.numpy as jnp

from glassjax.errors import ConfigError


@dataclass(frozen=True)
class ExpDecay:
    """The schedule's parameters; call the object with a step to get the learning rate."""

    start_lr: float
    stop_lr: float
    num_steps: int
    decay_steps: int = 5000
    decay_rate: Optional[float] = None
    smooth: bool = False

    def __post_init__(self):
        if not (self.start_lr > 0 and math.isfinite(self.start_lr)):
            raise ConfigError(f"learning_rate.start_lr must be positive, got {self.start_lr}")
        if not (0 <= self.stop_lr <= self.start_lr):
            raise ConfigError(
                f"learning_rate.stop_lr must lie in [0, start_lr={self.start_lr}], got {self.stop_lr}")
        if self.num_steps < 0:
            raise ConfigError(f"training.num_steps must be >= 0, got {self.num_steps}")
        if self.decay_steps <= 0:
            raise ConfigError(f"learning_rate.decay_steps must be positive, got {self.decay_steps}")

    @property
    def period(self) -> int:
        """The decay period actually used (DeePMD-kit's fallback when too long)."""
        if self.decay_rate is None and self.decay_steps >= self.num_steps:
            return 100 if self.num_steps // 10 > 100 else self.num_steps // 100 + 1
        return int(self.decay_steps)

    @property
    def rate(self) -> float:
        if self.decay_rate is not None:
            return float(self.decay_rate)
        if self.num_steps == 0:
            return 1.0
        stop = max(self.stop_lr, 1e-10)
        return float(math.exp(math.log(stop / self.start_lr) / (self.num_steps / self.period)))

    def __call__(self, step):
        step = jnp.asarray(step)
        if self.smooth:
            expo = step / self.period
        else:
            expo = (step // self.period).astype(jnp.result_type(float))
        lr = self.start_lr * jnp.power(self.rate, expo)
        return jnp.maximum(lr, self.stop_lr)
