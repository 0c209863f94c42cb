"""Naming, flattening and ranking of parameter sensitivities (which weights matter most).

Given a gradient pytree ``g = dO/dtheta`` of some observable O (from
:mod:`glassjax.sensitivity.trajectory`, :mod:`glassjax.sensitivity.implicit` or any
``jax.grad``) and the parameters ``theta`` it was taken at, every scalar parameter gets a
readable name and a score:

* ``by="absolute"``: ``|dO/dtheta_k|`` (units of O per unit of the parameter);
* ``by="relative"``: ``|theta_k dO/dtheta_k| = |dO/d ln theta_k|``, the change of O for a
  1 (relative) change of the parameter, comparable between layers of different scale.

:func:`rank_parameters` sorts the scalars by score; :func:`rank_groups` aggregates per named
leaf (per layer and type: the Euclidean norm of the gradient, or of ``theta * g``).

Names of a :class:`glassjax.model.DeepPot`'s Flax parameters (``variables["params"]``) follow
the model's structure and its ``type_map``::

    embedding/<center>-<neighbour>/layer_<i>/{kernel,bias,idt}   se_e2_a embedding nets
    embedding/any-<neighbour>/...                                 (type_one_side models)
    fitting/type_<element>/layer_<i>/{kernel,bias,idt}            per-type fitting nets
    fitting/all_types/...                                         (mixed-type fitting)

(the embedding-net index k of DeePMD-kit's collection is ``center + neighbour * ntypes``;
``kernel`` is the weight matrix w (n_in, n_out), ``idt`` the ResNet timestep vector).
Any other pytree is named by its key path (``a/b/c``).  A scalar's name appends its index:
``fitting/type_B/layer_1/kernel[3,7]``.
"""

from __future__ import annotations

import re
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import numpy as np

from glassjax.errors import ConfigError

_LEAF_NAMES = {"w": "kernel", "b": "bias", "idt": "idt"}


def _key_str(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _params_of(params):
    if isinstance(params, dict) and "params" in params and "constants" in params:
        return params["params"]
    return params


def _rename(parts: List[str], type_map: Optional[Sequence[str]], type_one_side: bool) -> List[str]:
    """DeepPot path parts -> readable parts (unchanged when the pattern is not recognised)."""
    out = list(parts)
    if type_map is None or len(out) < 2:
        return out
    nt = len(type_map)
    if out[0] == "descriptor":
        m = re.fullmatch(r"embedding_(\d+)", out[1])
        if m:
            k = int(m.group(1))
            if type_one_side and k < nt:
                out = ["embedding", f"any-{type_map[k]}"] + out[2:]
            elif not type_one_side and k < nt * nt:
                out = ["embedding", f"{type_map[k % nt]}-{type_map[k // nt]}"] + out[2:]
    elif out[0] == "fitting":
        m = re.fullmatch(r"net_(\d+)", out[1])
        if m:
            t = int(m.group(1))
            label = f"type_{type_map[t]}" if t < nt else out[1]
            out = ["fitting", label] + out[2:]
    if len(out) >= 3 and out[0] in ("embedding", "fitting"):
        out[-1] = _LEAF_NAMES.get(out[-1], out[-1])
    return out


def named_leaves(params, type_map: Optional[Sequence[str]] = None, model=None) -> List[Tuple[str, np.ndarray]]:
    """``[(name, array), ...]`` for every leaf of a parameter pytree, in ``tree_leaves`` order.

    Args:
        params: a pytree (a DeepPot's ``variables["params"]``, or the whole ``variables``
            dict, whose ``"params"`` part is then named), or a gradient of the same structure.
        type_map: element names in type order, for DeepPot names (taken from ``model`` when
            given); without either, DeepPot leaves keep their raw names
            (``descriptor/embedding_4/layer_0/w``).
        model: optional :class:`glassjax.model.DeepPot` (gives type_map and type_one_side).

    Returns a list of (str, numpy array); names are unique.
    """
    type_one_side = False
    if model is not None:
        type_map = tuple(model.type_map)
        type_one_side = bool(model.config.descriptor.type_one_side)
    tree = _params_of(params)
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for path, leaf in flat:
        parts = [_key_str(k) for k in path]
        name = "/".join(_rename(parts, type_map, type_one_side)) if parts else "theta"
        out.append((name, np.asarray(leaf)))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):  # cannot happen for distinct key paths; guard renames
        raise ConfigError("named_leaves: parameter names are not unique; pass the model or no type_map")
    return out


class Ranking(NamedTuple):
    """A sorted sensitivity table (numpy arrays of equal length R, best first).

    names: parameter names (``leaf[index]`` for scalars, leaf names for groups);
    values: theta (for groups: the leaf's Euclidean norm); grads: dO/dtheta (for groups: the
    gradient's norm); scores: the ranking score; leaf: index of the leaf in ``tree_leaves``
    order; index: flat index inside the leaf (-1 for groups); by: "relative" or "absolute".
    """

    names: np.ndarray
    values: np.ndarray
    grads: np.ndarray
    scores: np.ndarray
    leaf: np.ndarray
    index: np.ndarray
    by: str

    def __len__(self) -> int:
        return len(self.names)

    def rows(self):
        """Rows ``(name, value, grad, score)`` for printing."""
        return list(zip(self.names.tolist(), self.values.tolist(), self.grads.tolist(), self.scores.tolist()))


Select = Union[None, str, Callable[[str], bool]]


def _selector(select: Select) -> Callable[[str], bool]:
    if select is None:
        return lambda name: True
    if callable(select):
        return select
    if isinstance(select, str):
        return lambda name: name.startswith(select)
    raise ConfigError(f"select must be None, a name prefix (e.g. 'fitting/') or a predicate, not {select!r}")


def _check_by(by: str):
    if by not in ("relative", "absolute"):
        raise ConfigError(f"rank: by must be 'relative' (|theta dO/dtheta|) or 'absolute' (|dO/dtheta|), got {by!r}")


def _pairs(grads, params, type_map, model):
    g_named = named_leaves(grads, type_map, model)
    p_named = named_leaves(params, type_map, model)
    if [n for n, _ in g_named] != [n for n, _ in p_named]:
        raise ConfigError("rank: the gradient and the parameters are different pytrees (names differ); pass the "
                          "gradient with respect to exactly these parameters")
    for (n, g), (_, p) in zip(g_named, p_named):
        if g.shape != p.shape:
            raise ConfigError(f"rank: gradient of {n} has shape {g.shape}, the parameter {p.shape}")
    return g_named, p_named


def _sorted(names, values, grads, scores, leaf, index, by, top):
    order = np.argsort(-scores, kind="stable")
    if top is not None:
        order = order[: int(top)]
    return Ranking(names=np.asarray(names, dtype=object)[order], values=np.asarray(values)[order],
                   grads=np.asarray(grads)[order], scores=np.asarray(scores)[order],
                   leaf=np.asarray(leaf, dtype=np.int64)[order], index=np.asarray(index, dtype=np.int64)[order], by=by)


def flatten_parameters(grads, params, type_map=None, model=None, select: Select = None):
    """Every scalar parameter as a row: ``(names, values, grads, leaf, index)`` numpy arrays.

    ``names[r]`` is ``"<leaf name>[i,j]"`` (C order over the leaf's shape; ``"<leaf name>"``
    for a 0-d leaf).  ``select`` keeps leaves whose name starts with the given prefix (or
    satisfies the predicate), e.g. ``"fitting/"`` for the fitting nets only.
    """
    g_named, p_named = _pairs(grads, params, type_map, model)
    keep = _selector(select)
    names, vals, gs, leaf, index = [], [], [], [], []
    for k, ((name, g), (_, p)) in enumerate(zip(g_named, p_named)):
        if not keep(name):
            continue
        for flat_i, multi in enumerate(np.ndindex(*p.shape)):
            names.append(f"{name}[{','.join(str(i) for i in multi)}]" if p.ndim else name)
            leaf.append(k)
            index.append(flat_i)
        vals.append(p.ravel().astype(np.float64))
        gs.append(g.ravel().astype(np.float64))
    if not names:
        raise ConfigError(f"rank: no parameter matches select={select!r}")
    return (np.asarray(names, dtype=object), np.concatenate(vals), np.concatenate(gs), np.asarray(leaf),
            np.asarray(index))


def rank_parameters(grads, params, top: Optional[int] = 20, by: str = "relative", select: Select = None,
                    type_map=None, model=None) -> Ranking:
    """Scalar parameters sorted by sensitivity score, largest first.

    Score ``|g_k|`` (``by="absolute"``) or ``|theta_k g_k|`` (``by="relative"``, the first-order
    change of O when theta_k changes by 100 %: ``dO/d ln theta_k``).

    Args:
        grads: pytree dO/dtheta; params: theta (same structure; or both as full DeepPot
            ``variables`` dicts); top: keep the R best (None: all); select: leaf-name prefix or
            predicate (e.g. ``"fitting/"``); type_map/model: for DeepPot names
            (:func:`named_leaves`).

    Returns a :class:`Ranking`.
    """
    _check_by(by)
    names, vals, gs, leaf, index = flatten_parameters(grads, params, type_map, model, select)
    scores = np.abs(gs) if by == "absolute" else np.abs(vals * gs)
    return _sorted(names, vals, gs, scores, leaf, index, by, top)


def rank_groups(grads, params, top: Optional[int] = None, by: str = "relative", select: Select = None,
                type_map=None, model=None) -> Ranking:
    """Named leaves (one per layer, type and kind: kernel/bias/idt) sorted by the Euclidean
    norm of their gradient (``by="absolute"``: ``||g||``; ``"relative"``: ``||theta * g||``).

    ``values`` holds ``||theta||`` and ``grads`` ``||g||`` of each leaf; ``index`` is -1.
    """
    _check_by(by)
    g_named, p_named = _pairs(grads, params, type_map, model)
    keep = _selector(select)
    names, vals, gs, scores, leaf = [], [], [], [], []
    for k, ((name, g), (_, p)) in enumerate(zip(g_named, p_named)):
        if not keep(name):
            continue
        g = g.astype(np.float64)
        p = p.astype(np.float64)
        names.append(name)
        vals.append(np.linalg.norm(p.ravel()))
        gs.append(np.linalg.norm(g.ravel()))
        scores.append(np.linalg.norm((g if by == "absolute" else g * p).ravel()))
        leaf.append(k)
    if not names:
        raise ConfigError(f"rank_groups: no parameter matches select={select!r}")
    return _sorted(names, vals, gs, np.asarray(scores), leaf, [-1] * len(names), by, top)


def perturb_scalar(params, leaf: int, index: int, delta: float):
    """A copy of the pytree ``params`` with scalar ``index`` (flat, C order) of leaf number
    ``leaf`` (``tree_leaves`` order) shifted by ``delta``: for finite-difference checks of
    one ranked parameter (``ranking.leaf[r]``, ``ranking.index[r]``)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    if not 0 <= leaf < len(leaves):
        raise ConfigError(f"perturb_scalar: leaf {leaf} out of range (the tree has {len(leaves)} leaves)")
    x = leaves[leaf]
    size = int(np.size(x))
    if not 0 <= index < size:
        raise ConfigError(f"perturb_scalar: index {index} out of range for a leaf of {size} values")
    shape = np.shape(x)
    leaves = list(leaves)
    leaves[leaf] = x.ravel().at[index].add(delta).reshape(shape) if hasattr(x, "at") else \
        _np_add(np.asarray(x), index, delta)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _np_add(x, index, delta):
    y = x.copy().ravel()
    y[index] += delta
    return y.reshape(x.shape)


def plot_ranking(table: Ranking, ax=None, n: Optional[int] = None, title: Optional[str] = None,
                 signed: bool = True):
    """Horizontal bar chart of a :class:`Ranking` (the best at the top); returns the axes.

    Bars show the score; with ``signed`` they are coloured by the sign of the gradient
    (O increases with the parameter: red; decreases: blue).  ``n`` limits the rows.
    """
    import matplotlib.pyplot as plt

    rows = len(table) if n is None else min(int(n), len(table))
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.3 * rows + 1.2))
    y = np.arange(rows)
    scores = np.asarray(table.scores[:rows], dtype=float)
    signed = signed and bool(np.any(np.asarray(table.index) >= 0))  # groups carry norms, no sign
    colors = ["tab:red" if g >= 0 else "tab:blue" for g in table.grads[:rows]] if signed else "tab:gray"
    ax.barh(y, scores, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels([str(s) for s in table.names[:rows]], fontsize=8)
    ax.invert_yaxis()
    label = "|theta dO/dtheta| (dO/d ln theta)" if table.by == "relative" else "|dO/dtheta|"
    ax.set_xlabel(label)
    if signed:
        from matplotlib.patches import Patch

        handles = [Patch(color="tab:red", label="dO/dtheta > 0"), Patch(color="tab:blue", label="dO/dtheta < 0")]
        ax.legend(handles=handles, loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax
