"""DeepPot-SE in glassjax: forces/virial by autodiff against finite differences, symmetry,
smoothness at the cutoffs, multi-image cells against a replicated supercell (built by ASE),
padding atoms, neighbour-list paths and overflow reporting, float32."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from ase import Atoms

from glassjax import neighbors as nbl
from glassjax.model import DeepPot, DeepPotConfig, DescriptorConfig, FittingConfig
from glassjax.model import nlist as dpnl
from glassjax.model.env_mat import cosine_switch, quintic_switch

TYPE_MAP = ("Li", "B", "Si", "O")
RCUT, RCUT_SMTH = 4.0, 1.5


def make_model(type_one_side=False, resnet_dt=True, sel=(12, 12, 12, 30), switch="quintic", dtype="float64",
               seed=0):
    cfg = DeepPotConfig(
        DescriptorConfig(type_map=TYPE_MAP, rcut=RCUT, rcut_smth=RCUT_SMTH, sel=sel, neuron=(4, 8),
                         axis_neuron=3, type_one_side=type_one_side, resnet_dt=resnet_dt, switch=switch),
        FittingConfig(neuron=(8, 8), resnet_dt=True))
    model = DeepPot(cfg, dtype=dtype)
    v = model.init(seed)
    rng = np.random.default_rng(seed + 100)
    t, s = len(TYPE_MAP), sum(sel)
    # non-trivial statistics and biases so every term is exercised
    consts = dict(v["constants"])
    consts["davg"] = jnp.asarray(np.concatenate([rng.uniform(0.1, 0.4, (t, 1, 1)) * np.ones((t, s, 1)),
                                                 np.zeros((t, s, 3))], axis=-1), model.dtype)
    std = rng.uniform(0.3, 1.2, (t, 1, 2))  # radial and angular std (one for x, y, z: rotation invariance)
    consts["dstd"] = jnp.asarray(std[..., [0, 1, 1, 1]] * np.ones((t, s, 4)), model.dtype)
    consts["out_bias"] = jnp.asarray(rng.normal(size=t), model.dtype)
    consts["bias_atom_e"] = jnp.asarray(rng.normal(size=t) * 0.1, model.dtype)
    return model, {"params": v["params"], "constants": consts}


def random_structure(n=36, seed=1, cell=None):
    rng = np.random.default_rng(seed)
    if cell is None:
        cell = np.array([[8.6, 0.0, 0.0], [1.1, 8.9, 0.0], [-0.8, 0.7, 9.2]])  # triclinic
    # rejection sampling for a minimum distance of 1.3 Å (glass-like, no overlaps)
    frac = []
    while len(frac) < n:
        f = rng.uniform(0, 1, 3)
        ok = True
        for g in frac:
            d = f - g
            d -= np.round(d)
            if np.linalg.norm(d @ cell) < 1.3:
                ok = False
                break
        if ok:
            frac.append(f)
    pos = np.array(frac) @ cell
    types = np.array(([0, 1, 2, 3, 3, 3] * n)[:n], dtype=np.int32)
    rng.shuffle(types)
    return pos, cell, types


@pytest.fixture(scope="module")
def model_and_vars():
    return make_model(type_one_side=True)


@pytest.fixture(scope="module")
def efv(model_and_vars):
    """Jitted (E, F, W, aux) with a dense candidate search over one image shell (cells
    here are >= 8 Å = 2 rcut thick).  Types are traced, so one compilation serves every
    structure of the same size."""
    model, v = model_and_vars

    @jax.jit
    def run(positions, cell, types):
        sec = dpnl.dense_sections(positions, cell, types, model.rcut, model.sel, (1, 1, 1))
        return model.energy_forces_virial(v, positions, cell, types, sec, with_aux=True)

    def make(types, images=None):
        return lambda positions, cell: run(positions, cell, jnp.asarray(types))

    return make


@pytest.fixture(scope="module")
def structure():
    return random_structure()


def test_forces_equal_finite_difference_of_energy(efv, structure):
    pos, cell, types = structure
    f = efv(types, dpnl.dense_images(cell, RCUT))
    e0, forces, _, aux = f(jnp.asarray(pos), jnp.asarray(cell))
    assert not bool(aux["overflow"])
    h = 1e-5
    rng = np.random.default_rng(0)
    for i in rng.choice(len(pos), 6, replace=False):
        for a in range(3):
            p1, p2 = pos.copy(), pos.copy()
            p1[i, a] += h
            p2[i, a] -= h
            fd = -(float(f(jnp.asarray(p1), jnp.asarray(cell))[0]) - float(f(jnp.asarray(p2), jnp.asarray(cell))[0])) / (2 * h)
            assert abs(fd - float(forces[i, a])) < 1e-7 * max(1.0, abs(fd))
    # total force vanishes (translation invariance)
    assert np.allclose(np.sum(np.asarray(forces), axis=0), 0.0, atol=1e-10)


def test_virial_equals_finite_difference_under_homogeneous_strain(efv, structure):
    pos, cell, types = structure
    f = efv(types, dpnl.dense_images(cell, RCUT))
    _, _, w, _ = f(jnp.asarray(pos), jnp.asarray(cell))
    h = 1e-6
    for a in range(3):
        for b in range(3):
            e = np.zeros((3, 3))
            e[a, b] = h
            d1, d2 = np.eye(3) + e, np.eye(3) - e
            ep = float(f(jnp.asarray(pos @ d1), jnp.asarray(cell @ d1))[0])
            em = float(f(jnp.asarray(pos @ d2), jnp.asarray(cell @ d2))[0])
            assert abs(-(ep - em) / (2 * h) - float(w[a, b])) < 1e-6 * max(1.0, abs(float(w[a, b])))
    assert np.allclose(np.asarray(w), np.asarray(w).T, atol=1e-9)  # rotation invariance => symmetric


def test_energy_invariant_under_rotation_translation_permutation(efv, structure):
    pos, cell, types = structure
    f = efv(types, dpnl.dense_images(cell, RCUT))
    e0 = float(f(jnp.asarray(pos), jnp.asarray(cell))[0])
    # rotation of positions and cell together (scipy's random rotation as the reference)
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=3).as_matrix()
    f_rot = efv(types, dpnl.dense_images(cell @ rot.T, RCUT))
    e_rot = float(f_rot(jnp.asarray(pos @ rot.T), jnp.asarray(cell @ rot.T))[0])
    assert abs(e_rot - e0) < 1e-10 * len(pos)
    # translation (also wraps some atoms through the boundary)
    e_tr = float(f(jnp.asarray(pos + np.array([3.3, -1.7, 12.9])), jnp.asarray(cell))[0])
    assert abs(e_tr - e0) < 1e-10 * len(pos)
    # permutation of atoms of the same species (a full random permutation with types moved along)
    perm = np.random.default_rng(7).permutation(len(pos))
    f_perm = efv(types[perm], dpnl.dense_images(cell, RCUT))
    e_perm = float(f_perm(jnp.asarray(pos[perm]), jnp.asarray(cell))[0])
    assert abs(e_perm - e0) < 1e-10 * len(pos)


def test_forces_follow_rotation(efv, structure):
    pos, cell, types = structure
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=5).as_matrix()
    f0 = np.asarray(efv(types, dpnl.dense_images(cell, RCUT))(jnp.asarray(pos), jnp.asarray(cell))[1])
    fr = np.asarray(efv(types, dpnl.dense_images(cell @ rot.T, RCUT))(jnp.asarray(pos @ rot.T),
                                                                       jnp.asarray(cell @ rot.T))[1])
    assert np.allclose(fr, f0 @ rot.T, atol=1e-10)


def test_switches_against_their_formulas():
    r = np.linspace(0.5, 5.0, 200)
    u = np.clip((r - RCUT_SMTH) / (RCUT - RCUT_SMTH), 0, 1)
    assert np.allclose(np.asarray(quintic_switch(jnp.asarray(r), RCUT_SMTH, RCUT)),
                       1 - 10 * u ** 3 + 15 * u ** 4 - 6 * u ** 5, atol=1e-14)
    # the 2022 paper, Eq. 2: s(r) = 1/r [cos(pi (r - r_cs)/(r_c - r_cs))/2 + 1/2]
    expect = np.where(r < RCUT_SMTH, 1.0, np.where(r < RCUT, 0.5 * np.cos(np.pi * u) + 0.5, 0.0))
    assert np.allclose(np.asarray(cosine_switch(jnp.asarray(r), RCUT_SMTH, RCUT)), expect, atol=1e-14)


@pytest.mark.parametrize("switch", ["quintic", "cosine"])
def test_energy_and_force_smooth_as_neighbour_crosses_cutoffs(switch, model_and_vars):
    """A Si-O pair plus a third atom moved radially through rcut_smth and rcut."""
    model, v = model_and_vars
    if switch != "quintic":  # same weights, other switch
        import dataclasses

        cfg = model.config
        model = DeepPot(dataclasses.replace(cfg, descriptor=dataclasses.replace(cfg.descriptor, switch=switch)))
    assert model.config.descriptor.switch == switch
    cell = np.eye(3) * 30.0  # isolated cluster
    types = np.array([2, 3, 3], np.int32)
    images = (0, 0, 0)

    @jax.jit
    def ef(x):
        sec = dpnl.dense_sections(x, jnp.asarray(cell), jnp.asarray(types), model.rcut, model.sel, images)
        e, f = jax.value_and_grad(lambda y: model.energy(v, y, jnp.asarray(cell), types, sec))(x)
        return e, -f

    def config(r):
        return jnp.asarray(np.array([[10.0, 10.0, 10.0], [11.6, 10.0, 10.0], [10.0, 10.0 + r, 10.0]]))

    # far apart: the third atom is invisible, so E equals its isolated energy plus the pair's
    e_far = float(ef(config(RCUT + 0.3))[0])
    e_iso = float(ef(jnp.asarray(np.array([[10.0, 10.0, 10.0], [11.6, 10.0, 10.0], [10.0, 25.0, 10.0]])))[0])
    assert abs(e_far - e_iso) < 1e-12
    for rc in (RCUT_SMTH, RCUT):
        for d in (1e-3, 1e-4):
            (e1, f1), (e2, f2) = ef(config(rc - d)), ef(config(rc + d))
            de = abs(float(e1) - float(e2))
            df = float(jnp.max(jnp.abs(f1 - f2)))
            assert de < 50 * d  # continuous energy (|dE/dr| bounded)
            assert df < 2e3 * d  # continuous force (bounded second derivative)
    # energy is exactly constant beyond rcut
    assert abs(float(ef(config(RCUT + 1e-6))[0]) - e_far) < 1e-12


def test_cell_smaller_than_twice_rcut_matches_replicated_supercell(model_and_vars):
    m2, v2 = model_and_vars
    pos, cell, types = random_structure(n=14, seed=4, cell=np.array([[6.1, 0, 0], [0.9, 5.8, 0], [0.3, -0.6, 6.4]]))
    assert np.min(nbl.cell_heights(cell)) < 2 * RCUT
    small = Atoms(numbers=types + 1, positions=pos, cell=cell, pbc=True)
    big = small.repeat((2, 2, 2))  # ASE builds the supercell independently
    e1, f1, w1, a1 = m2.energy_forces_virial(v2, pos, cell, types, with_aux=True)
    t_big = big.numbers - 1
    e8, f8, w8, a8 = m2.energy_forces_virial(v2, big.positions, big.cell[:], t_big, with_aux=True)
    assert not bool(a1["overflow"]) and not bool(a8["overflow"])
    assert abs(float(e8) - 8 * float(e1)) < 1e-10 * len(big)
    assert np.allclose(np.asarray(f8)[: len(pos)], np.asarray(f1), atol=1e-9)
    assert np.allclose(np.asarray(w8), 8 * np.asarray(w1), atol=1e-8)


def test_padding_atoms_contribute_nothing_and_see_nothing(model_and_vars, efv, structure):
    """31 real atoms padded to 36 (type -1, at arbitrary positions) against the 31-atom system
    evaluated on its own through the public path (own neighbour list, static types)."""
    model, v = model_and_vars
    pos, cell, types = structure
    n = 31
    pad_types = types.copy()
    pad_types[n:] = -1
    pad_pos = pos.copy()
    pad_pos[n:] = pos[:5] + 0.3  # padding atoms overlapping real ones: must stay invisible
    e1, g1, w1, _ = efv(pad_types)(jnp.asarray(pad_pos), jnp.asarray(cell))
    e0, g0, w0 = model.energy_forces_virial(v, pos[:n], cell, types[:n])
    assert abs(float(e1) - float(e0)) < 1e-12
    assert np.allclose(np.asarray(g1)[:n], np.asarray(g0), atol=1e-12)
    assert np.all(np.asarray(g1)[n:] == 0.0)
    assert np.allclose(np.asarray(w1), np.asarray(w0), atol=1e-12)


def test_neighbor_list_inside_jit_matches_fresh_sections(model_and_vars, structure):
    model, v = model_and_vars
    pos, cell, types = structure
    nl, spec = model.neighbor_list(pos, cell, skin=0.6)

    @jax.jit
    def step(x, nl):
        nl = nbl.update(nl, x, jnp.asarray(cell), spec)
        e, a = model.atomic_energies(v, x, jnp.asarray(cell), types, nl, with_aux=True)
        return jnp.sum(e), a["overflow"], nl

    rng = np.random.default_rng(2)
    x = pos + rng.normal(scale=0.1, size=pos.shape)  # within the skin: no rebuild needed
    e_nl, overflow, _ = step(jnp.asarray(x), nl)
    assert not bool(overflow)
    assert abs(float(e_nl) - float(model.energy(v, x, cell, types))) < 1e-11
    # a list that overflowed is reported through the energy's aux output, never ignored
    _, overflow, _ = step(jnp.asarray(pos), nl._replace(overflow=jnp.asarray(True)))  # no rebuild at pos
    assert bool(overflow)
    small = nbl.NeighborSpec(spec.cutoff, spec.skin, capacity=3, images=spec.images)
    bad = nbl.build(jnp.asarray(pos), jnp.asarray(cell), small)
    assert bool(bad.overflow)
    assert bool(dpnl.sections_from_neighbor_list(jnp.asarray(pos), jnp.asarray(cell), jnp.asarray(types), bad,
                                                 model.rcut, model.sel).overflow)


def test_sel_overflow_is_reported_with_counts(structure):
    pos, cell, types = structure
    def sections(sel):
        return dpnl.dense_sections(jnp.asarray(pos), jnp.asarray(cell), jnp.asarray(types), RCUT, sel, (1, 1, 1))

    sec = sections((2, 2, 2, 4))
    assert bool(sec.overflow)
    # independent count of O neighbours within rcut with ASE
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=types + 1, positions=pos, cell=cell, pbc=True)
    i, j = neighbor_list("ij", atoms, RCUT)
    counts = np.zeros((len(pos), 4), int)
    np.add.at(counts, (i, types[j]), 1)
    assert np.array_equal(np.asarray(sec.counts), counts)
    assert not bool(sections(tuple(int(c) for c in counts.max(axis=0))).overflow)
    assert bool(sections(tuple(int(c) for c in counts.max(axis=0) - np.array([0, 0, 0, 1]))).overflow)


def test_sections_hold_nearest_neighbours_of_each_type(model_and_vars, structure):
    """Each section lists exactly the type's neighbours within rcut (checked against ASE)."""
    pos, cell, types = structure
    model, _ = model_and_vars
    sec = model.sections(jnp.asarray(pos), jnp.asarray(cell), jnp.asarray(types))
    rij = np.asarray(dpnl.section_pair_vectors(jnp.asarray(pos), jnp.asarray(cell), sec))
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=types + 1, positions=pos, cell=cell, pbc=True)
    i_, j_, d_ = neighbor_list("ijd", atoms, RCUT)
    bounds = model.config.descriptor.sel_bounds
    valid = np.asarray(sec.valid)
    idx = np.asarray(sec.idx)
    for i in range(len(pos)):
        for t, (a, b) in enumerate(bounds):
            got = sorted(np.round(np.linalg.norm(rij[i, a:b][valid[i, a:b]], axis=1), 8))
            ref = sorted(np.round(d_[(i_ == i) & (types[j_] == t)], 8))
            assert got == ref
            assert np.all(types[idx[i, a:b][valid[i, a:b]]] == t)


def test_dense_and_list_paths_agree(model_and_vars, structure):
    model, v = model_and_vars
    pos, cell, types = structure
    sec_d = dpnl.dense_sections(jnp.asarray(pos), jnp.asarray(cell), jnp.asarray(types), model.rcut, model.sel,
                                dpnl.dense_images(cell, RCUT))
    e_d = model.energy(v, pos, cell, types, sec_d)
    assert abs(float(e_d) - float(model.energy(v, pos, cell, types))) < 1e-12


def test_float32_close_to_float64(model_and_vars, structure):
    model, v = model_and_vars
    pos, cell, types = structure
    from glassjax.model import cast_variables

    m32 = model.with_dtype("float32")
    v32 = cast_variables(v, jnp.float32)
    e64, f64, _ = model.energy_forces_virial(v, pos, cell, types)
    e32, f32, w32 = m32.energy_forces_virial(v32, pos, cell, types)
    assert e32.dtype == jnp.float32 and f32.dtype == jnp.float32
    assert abs(float(e32) - float(e64)) < 1e-5 * max(1.0, abs(float(e64)))
    assert np.max(np.abs(np.asarray(f32) - np.asarray(f64))) < 1e-4


def test_vmapped_padded_batch_equals_single_systems(model_and_vars, efv, structure):
    """The training path: frames padded to one shape (type -1), sections from the dense
    search, energies/forces/virials vmapped over the batch, equal to one-by-one results."""
    model, v = model_and_vars
    pos, cell, types = structure
    t2 = types.copy()
    t2[-6:] = -1  # a smaller system padded to the same size
    rng = np.random.default_rng(3)
    p2 = pos + rng.normal(scale=0.05, size=pos.shape)
    cells = np.stack([cell, cell * 1.02])
    batch_pos = np.stack([pos, p2 * 1.02])
    batch_typ = np.stack([types, t2])

    def one(x, c, t):
        sec = dpnl.dense_sections(x, c, t, model.rcut, model.sel, (1, 1, 1))
        return model.energy_forces_virial(v, x, c, t, sec)

    e, f, w = jax.jit(jax.vmap(one))(jnp.asarray(batch_pos), jnp.asarray(cells), jnp.asarray(batch_typ))
    for b in range(2):
        e1, f1, w1, _ = efv(batch_typ[b])(jnp.asarray(batch_pos[b]), jnp.asarray(cells[b]))
        assert abs(float(e[b]) - float(e1)) < 1e-11
        assert np.allclose(np.asarray(f[b]), np.asarray(f1), atol=1e-11)
        assert np.allclose(np.asarray(w[b]), np.asarray(w1), atol=1e-10)


def test_type_capacity_routes_traced_types_like_static_types(structure):
    """A padded batch under vmap (traced types) with per-type capacities: each type's
    embedding and fitting nets run on its own atoms only (type_one_side False, so both are
    grouped).  Energies and forces equal the public static-type evaluation of each system
    on its own; a capacity one short of a type's count is reported as overflow (NaN energy
    in strict mode)."""
    from glassjax.model.typegroups import TypeCapacity

    model, v = make_model(type_one_side=False)
    pos, cell, types = structure
    n2 = len(types) - 6
    order = np.argsort(types, kind="stable")  # second system: Li first, padding in place of 6 O
    t2 = types[order]
    t2[n2:] = -1  # a smaller system padded to the same size
    p2 = (pos[order] + np.random.default_rng(5).normal(scale=0.05, size=pos.shape)) * 1.02
    batch_pos, cells, batch_typ = np.stack([pos, p2]), np.stack([cell, cell * 1.02]), np.stack([types, t2])
    caps = TypeCapacity.of(batch_typ, len(TYPE_MAP))
    assert caps.capacity == tuple(int(c) for c in np.bincount(types, minlength=4))

    def efn(capacity):
        def one(x, c, t):
            sec = dpnl.dense_sections(x, c, t, model.rcut, model.sel, (1, 1, 1))
            fn = model.energy_fn(v, t, type_capacity=capacity)
            return jax.value_and_grad(lambda y: fn(y, c, sec))(x)
        return jax.jit(jax.vmap(one))

    e, g = efn(caps)(jnp.asarray(batch_pos), jnp.asarray(cells), jnp.asarray(batch_typ))
    for b, n in enumerate((len(types), n2)):
        e0, f0, _ = model.energy_forces_virial(v, batch_pos[b, :n], cells[b], batch_typ[b, :n])
        assert abs(float(e[b]) - float(e0)) < 1e-11
        np.testing.assert_allclose(-np.asarray(g[b, :n]), np.asarray(f0), atol=1e-11)
        assert np.all(np.asarray(g[b, n:]) == 0.0)
    short = list(caps.capacity)
    short[3] -= 1  # one oxygen too many for the capacity in the first system only
    e_short, _ = efn(tuple(short))(jnp.asarray(batch_pos), jnp.asarray(cells), jnp.asarray(batch_typ))
    assert np.isnan(float(e_short[0])) and abs(float(e_short[1]) - float(e[1])) < 1e-11
