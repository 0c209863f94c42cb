"""The autodiff force/virial wrapper against finite differences on a periodic pair potential."""

import numpy as np
import jax
import jax.numpy as jnp

from glassjax import neighbors as nbl
from glassjax.potential import energy_forces_virial, stress_from_virial


def _lj_energy(positions, cell, nl, cutoff=3.0):
    rij, mask = nbl.pair_vectors(positions, cell, nl)
    r2 = jnp.where(mask, jnp.sum(rij * rij, -1), 1.0)
    inv6 = (1.0 / r2) ** 3
    e = 4.0 * (inv6 * inv6 - inv6)
    rc6 = (1.0 / cutoff**2) ** 3
    ec = 4.0 * (rc6 * rc6 - rc6)
    r = jnp.sqrt(r2)
    # shifted-force so energy and forces are smooth at the cutoff
    de = 4.0 * (-12 * rc6 * rc6 + 6 * rc6) / cutoff
    e = e - ec - (r - cutoff) * de
    return 0.5 * jnp.sum(jnp.where(mask & (r < cutoff), e, 0.0))


def _system():
    rng = np.random.default_rng(5)
    cell = np.array([[4.2, 0.0, 0.0], [0.7, 4.0, 0.0], [-0.5, 0.4, 4.4]])  # thinner than 2*cutoff
    g = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3) / 3.0
    pos = (g + rng.normal(0, 0.02, g.shape)) @ cell
    return jnp.asarray(pos), jnp.asarray(cell)


def test_forces_and_virial_match_finite_differences():
    pos, cell = _system()
    nl, spec = nbl.allocate(pos, cell, cutoff=3.0, skin=0.5)
    e, f, w = energy_forces_virial(_lj_energy, pos, cell, nl)
    h = 1e-5
    f_fd = np.zeros(pos.shape)
    for i in range(pos.shape[0]):
        for a in range(3):
            d = jnp.zeros_like(pos).at[i, a].set(h)
            f_fd[i, a] = -(_lj_energy(pos + d, cell, nl) - _lj_energy(pos - d, cell, nl)) / (2 * h)
    np.testing.assert_allclose(np.asarray(f), f_fd, atol=1e-7)
    w_fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            ep = _lj_energy(pos @ (np.eye(3) + eps), cell @ (np.eye(3) + eps), nl)
            em = _lj_energy(pos @ (np.eye(3) - eps), cell @ (np.eye(3) - eps), nl)
            w_fd[a, b] = -(ep - em) / (2 * h)
    np.testing.assert_allclose(np.asarray(w), w_fd, atol=1e-7)
    np.testing.assert_allclose(np.asarray(w), np.asarray(w).T, atol=1e-10)  # rotation invariance


def test_virial_equals_pair_sum_and_stress_sign():
    pos, cell = _system()
    nl, _ = nbl.allocate(pos, cell, cutoff=3.0, skin=0.5)
    e, f, w = energy_forces_virial(_lj_energy, pos, cell, nl)
    # W = -sum over pairs r_ij (x) dE/dr_ij, from the pair-vector gradient directly
    rij, _ = nbl.pair_vectors(pos, cell, nl)

    def e_of_r(r):
        mask = nl.idx < pos.shape[0]
        r2 = jnp.where(mask, jnp.sum(r * r, -1), 1.0)
        inv6 = (1.0 / r2) ** 3
        rc6 = (1.0 / 9.0) ** 3
        rr = jnp.sqrt(r2)
        de = 4.0 * (-12 * rc6 * rc6 + 6 * rc6) / 3.0
        ee = 4.0 * (inv6 * inv6 - inv6) - 4.0 * (rc6 * rc6 - rc6) - (rr - 3.0) * de
        return 0.5 * jnp.sum(jnp.where(mask & (rr < 3.0), ee, 0.0))

    g = jax.grad(e_of_r)(rij)
    w_pairs = -jnp.einsum("nka,nkb->ab", rij, g)
    np.testing.assert_allclose(np.asarray(w), np.asarray(w_pairs), atol=1e-10)
    # compressing the lattice (nearest neighbours well inside the repulsive wall) gives a
    # positive virial trace and a negative (compressive) ASE stress
    small = cell * 0.3
    nl2, _ = nbl.allocate(pos * 0.3, small, cutoff=3.0, skin=0.5)
    _, _, w2 = energy_forces_virial(_lj_energy, pos * 0.3, small, nl2)
    assert float(jnp.trace(w2)) > 0
    assert float(jnp.trace(stress_from_virial(w2, small))) < 0
