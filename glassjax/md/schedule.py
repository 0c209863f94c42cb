"""Temperature (and pressure) schedules as per-step arrays, fed to the jitted MD loop.

A schedule is a list of segments; each becomes one target value per MD step, so ramps and
holds run inside :func:`glassjax.md.integrators.run_chunk` (the target is a traced scan
input, not a Python loop).  Segment forms (temperatures K, times ps, rates K/ps)::

    ("hold", T, duration_ps)
    ("ramp", T_start, T_end, duration_ps)
    ("rate", T_start, T_end, rate_K_per_ps)     # duration = |T_end - T_start| / rate

The papers' melt-quench: heat, hold, cool at 10 or 2 K/ps, hold at 1000 K, cool to 300 K,
equilibrate at 300 K (see :func:`melt_quench`).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from glassjax.errors import ConfigError


def steps_for(duration_ps: float, dt_ps: float) -> int:
    """Number of steps of ``dt_ps`` in ``duration_ps`` (rounded to the nearest integer)."""
    if duration_ps < 0 or dt_ps <= 0:
        raise ConfigError(f"schedule: need duration >= 0 and dt > 0 (ps), got {duration_ps}, {dt_ps}")
    return int(round(duration_ps / dt_ps))


def temperature_schedule(segments: Sequence[Tuple], dt_ps: float) -> np.ndarray:
    """(S,) target temperature per step, K.  Ramps are linear, evaluated at the end of each step."""
    out = []
    for seg in segments:
        kind = seg[0]
        if kind == "hold":
            _, t, dur = seg
            out.append(np.full(steps_for(dur, dt_ps), float(t)))
        elif kind in ("ramp", "rate"):
            _, t0, t1, x = seg
            if kind == "rate":
                if x <= 0:
                    raise ConfigError(f"schedule: a cooling/heating rate must be positive (K/ps), got {x}")
                dur = abs(t1 - t0) / x
            else:
                dur = x
            n = steps_for(dur, dt_ps)
            out.append(t0 + (t1 - t0) * (np.arange(1, n + 1) / max(n, 1)))
        else:
            raise ConfigError(f"schedule: unknown segment {kind!r} (use hold, ramp or rate)")
    if not out:
        raise ConfigError("schedule: no segments")
    temps = np.concatenate(out)
    if np.any(temps < 0):
        raise ConfigError("schedule: negative temperature")
    return temps


def melt_quench(dt_ps: float, t_melt: float = 2000.0, melt_ps: float = 100.0, rate: float = 10.0,
                t_hold: float = 1000.0, hold_ps: float = 200.0, t_final: float = 300.0,
                final_ps: float = 100.0) -> np.ndarray:
    """The papers' protocol: hold at ``t_melt``, cool at ``rate`` K/ps to ``t_hold``, hold there,
    cool at the same rate to ``t_final`` and hold (set ``hold_ps=0`` for a straight quench)."""
    segs = [("hold", t_melt, melt_ps), ("rate", t_melt, t_hold, rate)]
    if hold_ps > 0:
        segs.append(("hold", t_hold, hold_ps))
    segs += [("rate", t_hold, t_final, rate), ("hold", t_final, final_ps)]
    return temperature_schedule(segs, dt_ps)
