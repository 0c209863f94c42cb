"""Environment statistics (numpy, shape-agnostic) against the descriptor's own JAX path.

The reference builds the model's neighbour sections and raw environment matrix exactly as
the DeepPot-SE forward pass does (glassjax.model.nlist + env_mat) and takes the DeePMD-kit
statistics over all slots; environment_stats must agree for mixed system sizes, a cell
thinner than 2 rcut, a sel that truncates, and both switches.
"""

import numpy as np
import pytest

import jax.numpy as jnp

from glassjax.data.frames import Frames
from glassjax.model import nlist as dpnl
from glassjax.model.descriptor import DescriptorConfig
from glassjax.model.env_mat import environment_matrix
from glassjax.model.stats import environment_stats, periodic_pairs


def _reference(dc, frames):
    t_n = dc.ntypes
    num, tot, sq = np.zeros((t_n, 2)), np.zeros((t_n, 2)), np.zeros((t_n, 2))
    idx = {s: k for k, s in enumerate(dc.type_map)}
    for fr in frames:
        types = np.array([idx[s] for s in fr.species], np.int32)
        for pos, cell in zip(fr.positions, fr.cells):
            sec = dpnl.build_sections(jnp.asarray(pos), jnp.asarray(cell), types, dc.rcut, dc.sel)
            rij = dpnl.section_pair_vectors(jnp.asarray(pos), jnp.asarray(cell), sec)
            env = np.asarray(environment_matrix(rij, sec.valid, dc.rcut, dc.rcut_smth, dc.switch, dc.env_protection))
            for t in range(t_n):
                e = env[types == t]
                if e.size:
                    r, a = e[..., 0], e[..., 1:]
                    num[t] += (r.size, a.size)
                    tot[t] += (r.sum(), a.sum())
                    sq[t] += ((r * r).sum(), (a * a).sum())
    avg = tot / np.maximum(num, 1)
    std = np.sqrt(np.clip(sq / np.maximum(num, 1) - avg ** 2, 0, None))
    return avg, std


def _frames(rng):
    out = []
    for n, box in ((24, (7.0, 7.5, 8.0)), (40, (9.0, 8.5, 8.0)), (18, (3.1, 9.0, 9.5))):  # last: thin cell
        species = np.array(["Li", "B", "O", "O"] * (n // 4) + ["O"] * (n % 4))
        pos = rng.uniform(0, 1, (2, n, 3)) * np.array(box)
        cells = np.repeat(np.diag(box)[None], 2, axis=0)
        cells[1] += rng.normal(0, 0.2, (3, 3))  # a triclinic frame
        out.append(Frames(species=species, positions=pos, cells=cells, source=f"random{n}"))
    return out


@pytest.mark.parametrize("switch,sel", [("quintic", (30, 30, 60)), ("cosine", (30, 30, 60)),
                                        ("quintic", (3, 2, 5))])  # the last truncates at sel
def test_environment_stats_match_descriptor(switch, sel):
    rng = np.random.default_rng(3)
    frames = _frames(rng)
    if min(sel) < 10:
        # a truncating sel keeps one of two equally distant periodic self-images (+a, -a) of the
        # thin cell: the choice is arbitrary, so compare on the ordinary cells only
        frames = frames[:2]
    dc = DescriptorConfig(type_map=["Li", "B", "O"], rcut=4.0, rcut_smth=0.5, sel=list(sel), neuron=[4],
                          axis_neuron=2, switch=switch)
    davg, dstd = environment_stats(dc, frames)
    avg, std = _reference(dc, frames)
    for t in range(3):
        np.testing.assert_allclose(davg[t, :, 0], avg[t, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dstd[t, :, 0], max(std[t, 0], 1e-2), rtol=1e-10)
        np.testing.assert_allclose(dstd[t, :, 1:], max(std[t, 1], 1e-2), rtol=1e-10)


def test_periodic_pairs_against_brute_force():
    rng = np.random.default_rng(0)
    cell = np.array([[3.0, 0, 0], [0.5, 4.0, 0], [0.2, 0.3, 5.0]])
    pos = rng.uniform(0, 1, (6, 3)) @ cell
    i, j, d = periodic_pairs(pos, cell, 4.5)
    got = sorted((int(a), int(b), round(float(np.linalg.norm(v)), 9)) for a, b, v in zip(i, j, d))
    want = []
    for a in range(6):
        for b in range(6):
            for n in np.ndindex(7, 7, 7):
                shift = (np.array(n) - 3) @ cell
                v = pos[b] + shift - pos[a]
                r = np.linalg.norm(v)
                if 0 < r < 4.5:
                    want.append((a, b, round(float(r), 9)))
    assert got == sorted(want)
