"""Grouping atoms by type so that each type's networks see only their own atoms.

DeepPot-SE has one fitting net per centre type and, with ``type_one_side = False``, one
embedding net per (centre, neighbour) type pair.  Three ways to route atoms to them:

* **static types** (a numpy (N,) array known at trace time): the row indices of each type
  are constants; each net runs on exactly its rows.
* **type capacity** (:class:`TypeCapacity`: the types are traced, e.g. one row of a padded
  batch of glasses of different compositions under ``vmap``, but the largest count of
  each type is known): each net runs on ``capacity[t]`` rows found with a fixed-size
  ``nonzero``; unused rows point past the end and are dropped on the way back.
* **neither**: every net runs on every atom and the result is selected by type
  (4 types = 4x the work).

:func:`rows_of_type` returns the row indices for the first two; :func:`gather_rows` and
:func:`scatter_rows` use them the same way in both cases.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple, Union

import jax.numpy as jnp
import numpy as np


class TypeCapacity(NamedTuple):
    """Static upper bound on the number of centre atoms of each type (hashable).

    ``capacity[t]`` must be at least the number of atoms of type t in every system it is
    used for; the energy model flags an overflow (NaN energy in strict mode) otherwise.
    """

    capacity: Tuple[int, ...]

    @classmethod
    def of(cls, type_rows: Sequence[np.ndarray], ntypes: int) -> "TypeCapacity":
        """The largest count of each of ``ntypes`` types over several (N_i,) type arrays
        (negative entries, padding, are ignored)."""
        caps = np.zeros(ntypes, dtype=int)
        for t in type_rows:
            t = np.asarray(t)
            caps = np.maximum(caps, np.bincount(t[t >= 0], minlength=ntypes)[:ntypes])
        return cls(tuple(int(c) for c in caps))


Grouping = Union[None, np.ndarray, TypeCapacity]


def rows_of_type(center_types, grouping: Grouping, t: int, n: int):
    """Row indices of the atoms of type ``t``, or None when there are none (or no grouping).

    Args:
        center_types: (N,) int types (traced or not), negative for padding.
        grouping: numpy (N,) static types, a :class:`TypeCapacity`, or None.
        t: the type; n: N.

    Returns:
        numpy (n_t,) indices (static types), a (capacity[t],) int array whose unused
        entries equal ``n`` (type capacity), or None.
    """
    if grouping is None:
        return None
    if isinstance(grouping, TypeCapacity):
        cap = int(grouping.capacity[t])
        if cap == 0:
            return None
        return jnp.nonzero(center_types == t, size=cap, fill_value=n)[0]
    ids = np.nonzero(np.asarray(grouping) == t)[0]
    return ids if ids.size else None


def gather_rows(x, ids):
    """``x[ids]`` along axis 0; rows past the end read as zeros."""
    if isinstance(ids, np.ndarray):
        return x[ids]
    return jnp.take(x, ids, axis=0, mode="fill", fill_value=0)


def scatter_rows(out, ids, values):
    """``out`` with rows ``ids`` set to ``values``; rows past the end are dropped."""
    if isinstance(ids, np.ndarray):
        return out.at[ids].set(values)
    return out.at[ids].set(values, mode="drop")


def capacity_overflow(center_types, grouping: Grouping):
    """() bool: some type has more atoms than its capacity (False unless a TypeCapacity)."""
    if not isinstance(grouping, TypeCapacity):
        return jnp.asarray(False)
    caps = jnp.asarray(grouping.capacity)
    counts = jnp.sum(center_types[:, None] == jnp.arange(len(grouping.capacity))[None, :], axis=0)
    return jnp.any(counts > caps)
