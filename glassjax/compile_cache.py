"""Keep a long-lived process clear of the kernel's limit on memory mappings.

XLA:CPU loads the machine code of every compiled JAX function into memory mappings of
its own: a DeepPot energy/force/virial function for one atom arrangement takes about 900.
Linux allows a process ``vm.max_map_count`` mappings (65530 by default).  A process that
compiles many shapes and keeps them (labelling frames of many sizes with one calculator,
several ensemble members, a long test session) can reach the limit; the next compilation
then fails inside XLA with a segmentation fault, not with a Python error.

:func:`free_compiled_if_crowded` drops JAX's caches of compiled functions when the process
holds more than a fraction of the limit; the functions recompile when they are used again
(seconds), which is far better than a crash.  Call it before compiling something new;
:meth:`glassjax.model.DeepPot` does so for its own cached functions.  Where ``/proc`` is
absent (not Linux), it does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

DEFAULT_MAP_LIMIT = 65530          # Linux's default vm.max_map_count
CROWDED_FRACTION = 0.5


def memory_map_count() -> Optional[int]:
    """Number of memory mappings this process holds now, or None where ``/proc`` is absent."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def memory_map_limit() -> int:
    """The kernel's ``vm.max_map_count`` (mappings one process may hold)."""
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return DEFAULT_MAP_LIMIT


def free_compiled_if_crowded(fraction: float = CROWDED_FRACTION, limit: Optional[int] = None) -> bool:
    """Clear JAX's compiled-function caches if this process holds more than ``fraction`` of
    ``limit`` memory mappings (default: the kernel's limit).  Returns True when it cleared."""
    n = memory_map_count()
    if n is None:
        return False
    if limit is None:
        limit = memory_map_limit()
    if n <= fraction * limit:
        return False
    import jax

    jax.clear_caches()
    return True
