"""Local deformation gradient and local strain per atom (2024 compression paper, Eqs. 1-4).

For every atom i the local deformation gradient maps the reference neighbour vectors
``R_ij`` (reference frame) onto the current ones ``r_ij(t)`` in a weighted least-squares
sense::

    M_i = sum_j w(|R_ij|) R_ij ⊗ R_ij                      (Eq. 1)
    N_i = sum_j w(|R_ij|) r_ij(t) ⊗ R_ij                   (Eq. 2)
    F_i = N_i · M_i^-1                                     (Eq. 3)
    w(x) = (pi h^2)^(-3/2) exp(-x·x / h^2),  h = 4.0 Å     (Eq. 4)

"In this support, lithium atoms were not considered because of their high diffusivity"
(pass ``support`` = not-Li); the local strain is ``eps_aa = F_aa - 1`` (a = x, y, z).
The constant prefactor of w cancels in N M^-1 and is left out.  The Gaussian has no
compact support, so the sum runs over neighbours within ``cutoff`` (default 2.5 h = 10 Å,
where w has fallen to exp(-6.25) = 0.2 % of its peak).  ``weighting="uniform"`` (w = 1
inside ``cutoff``) gives the hard-cutoff Falk-Langer / OVITO "atomic strain" deformation
gradient.

Pairs are taken from the reference frame (index j plus periodic image) and followed in
every later frame; positions may be wrapped or unwrapped in either frame, as long as the
*relative* fractional displacement of a neighbour pair between the reference and the
current frame stays below half a cell (true for any physical deformation).

Atom classes of the paper (Figs. 9, 13), defined on the reference frame:
B3r, B3n, B4r, B4n (3- and 4-fold B in / not in a 3-ring), Or, On, Sir, Sin.
"""

from __future__ import annotations

from functools import partial
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax import neighbors

#: Atom classes of the 2024 paper, in this order (index = class id; -1 = unclassified).
STRAIN_CLASSES: Tuple[str, ...] = ("B3r", "B3n", "B4r", "B4n", "Or", "On", "Sir", "Sin")


def _pair_fractional(ref_positions, ref_cell, positions, cell, nl):
    """Reference and current fractional pair differences for every slot: (N, K, 3) each."""
    n = ref_positions.shape[0]
    mask = nl.idx < n
    j = jnp.where(mask, nl.idx, 0)
    s0 = ref_positions @ jnp.linalg.inv(ref_cell)
    s = positions @ jnp.linalg.inv(cell)
    d0 = s0[j] - s0[:, None, :]
    d = s[j] - s[:, None, :]
    # the list's images were made for nl.ref_positions; re-express for ref_positions
    snl = nl.ref_positions @ jnp.linalg.inv(nl.ref_cell)
    shift_ref = (s0 - snl)  # per-atom fractional shift between the two reference copies
    ds0 = d0 + nl.image - (shift_ref[j] - shift_ref[:, None, :])
    jump = d - d0
    ds = ds0 + (jump - jnp.round(jump))
    return ds0, ds, mask


def local_deformation_gradient(ref_positions, ref_cell, positions, cell, nl: neighbors.NeighborList, *,
                               h: float = 4.0, cutoff: Optional[float] = None, support=None,
                               weighting: str = "gaussian", atom_mask=None):
    """Per-atom deformation gradient F_i = N_i M_i^-1 between a reference and a current frame.

    Args:
        ref_positions: (N, 3) reference positions R, Å.
        ref_cell: (3, 3) reference cell, rows are vectors, Å.
        positions: (N, 3) current positions r(t), Å (same atom order).
        cell: (3, 3) current cell, Å.
        nl: neighbour list built on the reference frame (``neighbors.allocate``) with a list
            cutoff (cutoff + skin) of at least ``cutoff``.
        h: Gaussian width of Eq. 4, Å (w = exp(-r^2/h^2)).
        cutoff: neighbours with |R_ij| < cutoff enter the sums; default 2.5 h.
        support: optional (N,) bool, atoms allowed as neighbours j (the paper: not Li).
        weighting: ``"gaussian"`` (Eq. 4) or ``"uniform"`` (hard cutoff, Falk-Langer).
        atom_mask: optional (N,) bool, False for padding atoms (their F is the identity).

    Returns:
        (N, 3, 3) array F with F[i] @ R_ij ≈ r_ij; NaN for atoms with fewer than three
        neighbours in the support (M_i singular) and for padding atoms.
    """
    if weighting not in ("gaussian", "uniform"):
        from glassjax.errors import ConfigError

        raise ConfigError(f"local strain: weighting must be 'gaussian' or 'uniform', not {weighting!r}")
    cutoff = 2.5 * h if cutoff is None else cutoff
    ref_positions = jnp.asarray(ref_positions)
    dtype = ref_positions.dtype
    ref_cell = jnp.asarray(ref_cell, dtype)
    positions = jnp.asarray(positions, dtype)
    cell = jnp.asarray(cell, dtype)
    ds0, ds, mask = _pair_fractional(ref_positions, ref_cell, positions, cell, nl)
    R = ds0 @ ref_cell  # (N, K, 3)
    r = ds @ cell
    r2 = jnp.sum(R * R, axis=-1)
    ok = mask & (r2 < cutoff * cutoff)
    j = jnp.where(mask, nl.idx, 0)
    if support is not None:
        ok = ok & jnp.asarray(support, bool)[j]
    if atom_mask is not None:
        am = jnp.asarray(atom_mask, bool)
        ok = ok & am[j] & am[:, None]
    if weighting == "gaussian":
        w = jnp.exp(-r2 / (h * h))
    else:
        w = jnp.ones_like(r2)
    w = jnp.where(ok, w, 0.0)
    M = jnp.einsum("ik,ika,ikb->iab", w, R, R)
    Nm = jnp.einsum("ik,ika,ikb->iab", w, r, R)
    empty = jnp.sum(ok, axis=1) < 3
    if atom_mask is not None:
        empty = empty | ~jnp.asarray(atom_mask, bool)
    eye = jnp.eye(3, dtype=dtype)
    M = jnp.where(empty[:, None, None], eye, M)
    Nm = jnp.where(empty[:, None, None], eye, Nm)
    # F = N M^-1  <=>  F^T = M^-1 N^T  (M symmetric)
    F = jnp.swapaxes(jnp.linalg.solve(M, jnp.swapaxes(Nm, -1, -2)), -1, -2)
    return jnp.where(empty[:, None, None], jnp.nan, F)


def local_strain(F):
    """Diagonal local strain eps_aa = F_aa - 1 (paper); F (..., 3, 3) -> (..., 3)."""
    return jnp.diagonal(F, axis1=-2, axis2=-1) - 1.0


def strain_classes(species: Sequence[str], b_coordination, in_three_ring) -> np.ndarray:
    """Class id (index into :data:`STRAIN_CLASSES`) of every atom, or -1.

    Args:
        species: (N,) element symbols.
        b_coordination: (N,) integer coordination numbers (used for B: 3 or 4; B with any
            other coordination gets -1).
        in_three_ring: (N,) bool, atom is a member of a T3O3 ring (T = B, Si).

    Returns:
        (N,) int array; Li and other atoms get -1.
    """
    species = np.asarray(species)
    cn = np.asarray(b_coordination)
    ring = np.asarray(in_three_ring, bool)
    out = np.full(species.shape, -1, dtype=np.int32)
    suffix = np.where(ring, "r", "n")
    for i, (el, c, s) in enumerate(zip(species, cn, suffix)):
        if el == "B" and int(c) in (3, 4):
            name = f"B{int(c)}{s}"
        elif el == "O":
            name = f"O{s}"
        elif el == "Si":
            name = f"Si{s}"
        else:
            continue
        out[i] = STRAIN_CLASSES.index(name)
    return out


def class_average(values, classes, n_classes: int = len(STRAIN_CLASSES)):
    """Average a per-atom quantity over atom classes, skipping NaN values.

    Args:
        values: (..., N, D) per-atom values (e.g. (F, N, 3) local strain).
        classes: (N,) int class ids; negative ids are ignored.
        n_classes: C.

    Returns:
        (means (..., C, D), counts (C,) atoms per class); a class with no finite value has
        NaN means.
    """
    values = jnp.asarray(values)
    classes = jnp.asarray(classes)
    onehot = (classes[:, None] == jnp.arange(n_classes)[None, :]).astype(values.dtype)  # (N, C)
    counts = jnp.sum(onehot, axis=0)
    finite = jnp.isfinite(values)
    sums = jnp.einsum("nc,...nd->...cd", onehot, jnp.where(finite, values, 0.0))
    n = jnp.einsum("nc,...nd->...cd", onehot, finite.astype(values.dtype))
    means = sums / jnp.where(n > 0, n, jnp.nan)
    return means, counts


def _capacity(positions, cell, cutoff: float) -> int:
    """Largest neighbour count within ``cutoff`` (numpy, all images), rounded up to a multiple of 16."""
    s = positions @ np.linalg.inv(cell)
    grid = neighbors._image_grid(neighbors.images_needed(cell, cutoff))
    best = 0
    for i0 in range(0, len(s), 64):
        d = s[None, :, :] - s[i0:i0 + 64, None, :]
        d -= np.round(d)
        vec = (d[:, :, None, :] + grid[None, None]) @ cell
        r2 = np.sum(vec * vec, axis=-1)
        best = max(best, int(np.max(np.sum(r2 < cutoff * cutoff, axis=(1, 2)))))
    return 16 * (-(-best // 16)) + 16


@partial(jax.jit, static_argnames=("h", "cutoff", "weighting"))
def _strain_batch(ref_positions, ref_cell, positions, cells, nl, support, h, cutoff, weighting):
    fn = lambda p, c: local_deformation_gradient(ref_positions, ref_cell, p, c, nl, h=h, cutoff=cutoff,  # noqa: E731
                                                 support=support, weighting=weighting)
    return jax.vmap(fn)(positions, cells)


def deformation_gradient_trajectory(ref_positions, ref_cell, positions, cells, *, h: float = 4.0,
                                    cutoff: Optional[float] = None, support=None,
                                    weighting: str = "gaussian", chunk: int = 16,
                                    progress: bool = False):
    """F_i(t) for every frame of a trajectory, relative to one reference frame.

    Builds one neighbour list on the reference (outside jit; overflow is impossible since
    it is sized for the reference), then evaluates frames in vmapped chunks.

    Args:
        ref_positions: (N, 3), ref_cell: (3, 3), Å.
        positions: (F, N, 3), cells: (F, 3, 3), Å.
        h, cutoff, support, weighting: see :func:`local_deformation_gradient`.
        chunk: frames per vmapped call; memory grows as chunk * N * K * 3 floats times a few
            (K neighbours per atom: about 350 at h = 4 Å in a glass, so ~0.7 GB at chunk 16, N = 1000).

    Returns:
        numpy (F, N, 3, 3) deformation gradients.
    """
    from glassjax.errors import ConfigError

    if h <= 0:
        raise ConfigError(f"local strain: the Gaussian width h must be positive, got {h}")
    cutoff = float(2.5 * h if cutoff is None else cutoff)
    if cutoff <= 0:
        raise ConfigError(f"local strain: cutoff must be positive, got {cutoff}")
    ref_positions = jnp.asarray(ref_positions)
    dtype = ref_positions.dtype
    ref_cell = jnp.asarray(ref_cell, dtype)
    positions = np.asarray(positions)
    cells = np.asarray(cells)
    n = ref_positions.shape[0]
    if positions.ndim != 3 or positions.shape[1:] != (n, 3) or cells.shape != (positions.shape[0], 3, 3):
        raise ConfigError(f"local strain: expected positions (F, {n}, 3) and cells (F, 3, 3) matching the "
                          f"reference's {n} atoms, got {positions.shape} and {cells.shape}")
    if support is not None and np.asarray(support).shape != (n,):
        raise ConfigError(f"local strain: support must be an (N,) bool mask, got shape {np.asarray(support).shape}")
    chunk = max(1, min(int(chunk), positions.shape[0]))
    nl, _spec = neighbors.allocate(ref_positions, ref_cell, cutoff=cutoff, skin=0.0,
                                   capacity=_capacity(np.asarray(ref_positions), np.asarray(ref_cell), cutoff))
    if bool(nl.overflow):  # pragma: no cover - allocate sizes the list for this frame
        raise RuntimeError("reference neighbour list overflowed")
    sup = None if support is None else jnp.asarray(support, bool)
    out = []
    starts = range(0, positions.shape[0], chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="local strain", unit="chunk")
    for s in starts:
        p = positions[s:s + chunk]
        c = cells[s:s + chunk]
        m = p.shape[0]
        if m < chunk:  # pad the last chunk so that every call has the same shape (one compile)
            p = np.concatenate([p, np.repeat(p[-1:], chunk - m, axis=0)])
            c = np.concatenate([c, np.repeat(c[-1:], chunk - m, axis=0)])
        res = _strain_batch(ref_positions, ref_cell, jnp.asarray(p, dtype), jnp.asarray(c, dtype), nl, sup,
                            float(h), cutoff, weighting)
        out.append(np.asarray(res)[:m])
    return np.concatenate(out, axis=0) if out else np.zeros((0,) + ref_positions.shape + (3,))


def reference_classes(ref_frames, cutoffs=None) -> np.ndarray:
    """(N,) class ids (:data:`STRAIN_CLASSES`) of the first frame of ``ref_frames``.

    B coordination (O within the B-O cutoff, default 2.0 Å) and membership of T3O3 rings
    come from :func:`glassjax.analysis.rings.three_rings_trajectory`.
    """
    from glassjax.analysis.rings import three_rings_trajectory

    first = ref_frames.select([0])
    res = three_rings_trajectory(first, cutoffs=cutoffs)
    return strain_classes(first.species, res["cn_O"][0], res["in_3ring"][0])
