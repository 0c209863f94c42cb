"""Explicit choice of floating-point precision.

glassjax never enables float64 on import.  Call :func:`enable_x64` once, before creating
any JAX array, to work in double precision (the CLI's ``--x64`` flag does this).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def enable_x64(enabled: bool = True) -> None:
    """Switch JAX to (or away from) 64-bit floats for this process."""
    jax.config.update("jax_enable_x64", bool(enabled))


def x64_enabled() -> bool:
    """True when JAX currently creates float64 arrays by default."""
    return bool(jax.config.read("jax_enable_x64"))


def default_float():
    """The float dtype JAX uses now: float64 if x64 is enabled, else float32."""
    return jnp.float64 if x64_enabled() else jnp.float32


def resolve_dtype(precision: str):
    """Map ``"float64"``/``"fp64"``/``"float32"``/``"fp32"`` to a JAX dtype.

    Asking for float64 while x64 is disabled is an error rather than a silent downcast.
    """
    from glassjax.errors import ConfigError

    p = str(precision).lower()
    if p in ("float64", "fp64", "double", "f64"):
        if not x64_enabled():
            raise ConfigError(
                "precision 'float64' was requested but JAX x64 mode is off: call "
                "glassjax.precision.enable_x64() first (CLI: pass --x64)"
            )
        return jnp.float64
    if p in ("float32", "fp32", "single", "f32"):
        return jnp.float32
    raise ConfigError(f"unknown precision {precision!r}: use 'float64' or 'float32'")
