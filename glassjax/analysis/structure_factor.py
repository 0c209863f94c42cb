"""Neutron structure factor: Faber-Ziman partial and total S(q) from g_ab(r), Lorch window.

Partial Faber-Ziman structure factors by the sine transform of the partial g(r) (from
:mod:`glassjax.analysis.rdf`) up to R = r_max, with the Lorch window L(r)::

    S_ab(q) = 1 + 4 pi rho  int_0^R r^2 (g_ab(r) - 1) sin(q r)/(q r) L(r) dr
    L(r)    = sin(pi r / R) / (pi r / R)

and the total neutron S(q) weighted by the coherent scattering lengths b_a::

    S(q) - 1 = sum_ab c_a c_b b_a b_b (S_ab(q) - 1) / (sum_a c_a b_a)^2

(c_a atomic fractions, rho the number density).  Equivalently, for a single configuration
and q != 0, (1/N) |sum_j b_j exp(i q.r_j)|^2 = <b^2> - <b>^2 + <b>^2 S(q).

Coherent scattering lengths (fm, from the project's design notes; natural abundance unless
an isotope is chosen): Li -1.90 (7Li -2.22), B 5.30 (11B 6.65), O 5.803, Si 4.1491.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

#: Coherent neutron scattering lengths, fm (natural abundance and selected isotopes).
SCATTERING_LENGTHS_FM: Dict[str, float] = {
    "Li": -1.90,
    "7Li": -2.22,
    "B": 5.30,
    "11B": 6.65,
    "O": 5.803,
    "Si": 4.1491,
}


def scattering_lengths(elements: Sequence[str], isotopes: Optional[Mapping[str, str]] = None,
                       custom: Optional[Mapping[str, float]] = None) -> np.ndarray:
    """Coherent scattering lengths (fm) for ``elements``.

    Args:
        elements: element symbols in type order, e.g. ``["Li", "B", "O"]``.
        isotopes: element -> isotope label, e.g. ``{"B": "11B", "Li": "7Li"}`` (isotope-enriched
            samples as in neutron experiments on borates).
        custom: element -> b (fm), overrides everything (for elements not tabulated).

    Returns:
        (T,) array of b in fm.
    """
    from glassjax.errors import ConfigError

    isotopes = dict(isotopes or {})
    custom = dict(custom or {})
    out = []
    for e in elements:
        if e in custom:
            out.append(float(custom[e]))
            continue
        key = isotopes.get(e, e)
        if key not in SCATTERING_LENGTHS_FM:
            raise ConfigError(f"S(q): no coherent scattering length for {key!r}; known: "
                              f"{sorted(SCATTERING_LENGTHS_FM)} (pass custom={{'{e}': b_fm}})")
        out.append(SCATTERING_LENGTHS_FM[key])
    return np.asarray(out, dtype=float)


def lorch(r, r_max: float):
    """Lorch window L(r) = sin(pi r / R) / (pi r / R) (numpy sinc), shape of r."""
    return np.sinc(np.asarray(r) / r_max)


def partial_sq(q, r, g_partial, density: float, r_max: float, window: bool = True):
    """Faber-Ziman partial S_ab(q) by the windowed sine transform (midpoint rule over bins).

    Args:
        q: (Q,) 1/Å (q > 0).
        r: (B,) bin centres, Å (uniform bins of width r_max / B starting at 0).
        g_partial: (T, T, B) partial g(r).
        density: number density N / V, 1/Å^3.
        r_max: R, Å (upper integration limit and Lorch length).
        window: apply the Lorch window.

    Returns:
        (T, T, Q) S_ab(q).
    """
    q = np.asarray(q, dtype=float)
    r = np.asarray(r, dtype=float)
    dr = r_max / r.shape[0]
    L = lorch(r, r_max) if window else np.ones_like(r)
    kernel = 4.0 * np.pi * density * dr * (r ** 2 * L)[None, :] * np.sinc(np.outer(q, r) / np.pi)  # (Q, B)
    return 1.0 + np.einsum("abk,qk->abq", np.asarray(g_partial) - 1.0, kernel)


def total_sq(s_partial, concentrations, b) -> np.ndarray:
    """Faber-Ziman total S(q) from partials: (T, T, Q), (T,), (T,) -> (Q,)."""
    c = np.asarray(concentrations, dtype=float)
    b = np.asarray(b, dtype=float)
    w = np.outer(c * b, c * b) / np.sum(c * b) ** 2
    return 1.0 + np.einsum("ab,abq->q", w, np.asarray(s_partial) - 1.0)


def neutron_sq(rdf_result: Mapping, elements: Sequence[str], q, isotopes=None, custom=None,
               window: bool = True):
    """Total and partial neutron S(q) from the output of :func:`glassjax.analysis.rdf.rdf`.

    Returns:
        dict with ``q`` (Q,), ``S`` (Q,) total Faber-Ziman S(q), ``S_partial`` (T, T, Q),
        ``F`` (Q,) = <b>^2 (S - 1) in fm^2 (the total scattering function F(Q)), ``b`` (T,) fm.
    """
    b = scattering_lengths(elements, isotopes, custom)
    counts = np.asarray(rdf_result["counts"], float)
    c = counts / counts.sum()
    sp = partial_sq(q, rdf_result["r"], rdf_result["g_partial"], rdf_result["density"],
                    rdf_result["r_max"], window=window)
    s = total_sq(sp, c, b)
    return {"q": np.asarray(q, float), "S": s, "S_partial": sp, "F": np.sum(c * b) ** 2 * (s - 1.0), "b": b}
