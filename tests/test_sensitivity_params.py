"""Parameter naming and sensitivity ranking (glassjax.sensitivity.params).

References: the model's own structure (embedding index of DescriptorConfig, atom counts per
type, which are the exact derivative of the energy with respect to each fitting net's output
bias), numpy recomputation of the scores, and a central finite difference on the top-ranked
scalar parameter.  The gradient ranked here is dE/dtheta of the tiny DeepPot on the 49-atom
LB70 glass; ranking works on any gradient pytree (trajectory or implicit derivatives alike).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from ase.io import read

from glassjax.errors import ConfigError
from glassjax.model import load_model
from glassjax.sensitivity import params as P

matplotlib.use("Agg")

MODELS = Path(__file__).resolve().parent / "data" / "md_models"


@pytest.fixture(scope="module")
def setup():
    model, variables = load_model(MODELS / "teter_distilled_lb.dp", dtype="float64")
    atoms = read(MODELS / "lb_glass_start.extxyz")
    types = model.types_from_species(atoms.get_chemical_symbols())
    pos = jnp.asarray(atoms.positions)
    cell = jnp.asarray(atoms.cell.array)
    nl, _ = model.neighbor_list(pos, cell, skin=0.0, types=types)
    constants = variables["constants"]

    @jax.jit
    def energy(theta):
        return model.energy_fn({"params": theta, "constants": constants}, types)(pos, cell, nl)

    theta = variables["params"]
    grads = jax.jit(jax.grad(energy))(theta)
    return dict(model=model, variables=variables, theta=theta, grads=grads, energy=energy, types=types)


def test_names_cover_every_parameter_once(setup):
    model, theta = setup["model"], setup["theta"]
    leaves = P.named_leaves(theta, model=model)
    assert len(leaves) == len(jax.tree_util.tree_leaves(theta))
    names, values, grads, leaf, index = P.flatten_parameters(setup["grads"], theta, model=model)
    assert len(names) == model.n_params(setup["variables"]) == len(set(names))
    # the whole variables dict names its "params" part the same way
    assert [n for n, _ in P.named_leaves(setup["variables"], model=model)] == [n for n, _ in leaves]
    # every row's value is the scalar it names (leaf number, flat index)
    raw = [np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(theta)]
    np.testing.assert_array_equal(values, np.array([raw[k][i] for k, i in zip(leaf, index)]))
    assert "fitting/type_B/layer_1/kernel[3,7]" in set(names)
    assert "embedding/Li-O/layer_0/bias[5]" in set(names)


def test_embedding_names_follow_the_descriptor_index(setup):
    model, theta = setup["model"], setup["theta"]
    named = dict(P.named_leaves(theta, model=model))
    tm = model.type_map
    cfg = model.config.descriptor
    for ti, a in enumerate(tm):
        for tj, b in enumerate(tm):
            raw = theta["descriptor"][f"embedding_{cfg.embedding_index(ti, tj)}"]["layer_1"]["w"]
            np.testing.assert_array_equal(named[f"embedding/{a}-{b}/layer_1/kernel"], np.asarray(raw))


def test_fitting_names_follow_atom_types(setup):
    # E = sum_i F_{t_i}(D_i) + const: dE / d(output bias of type t's net) = number of atoms of type t
    named = dict(P.named_leaves(setup["grads"], model=setup["model"]))
    counts = np.bincount(setup["types"], minlength=3)
    for t, el in enumerate(setup["model"].type_map):
        np.testing.assert_allclose(named[f"fitting/type_{el}/layer_2/bias"], [counts[t]], rtol=1e-12)
    assert tuple(counts) == (6, 16, 27)  # Li6 B16 O27


@pytest.mark.parametrize("by", ["relative", "absolute"])
def test_scores_match_numpy_and_top_parameter_matches_fd(setup, by):
    theta, grads = setup["theta"], setup["grads"]
    table = P.rank_parameters(grads, theta, top=20, by=by, model=setup["model"])
    g = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(grads)])
    p = np.concatenate([np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(theta)])
    score = np.abs(g) if by == "absolute" else np.abs(p * g)
    np.testing.assert_allclose(table.scores, np.sort(score)[::-1][:20], rtol=1e-14)
    assert len(table) == 20 and np.all(np.diff(table.scores) <= 0)
    # the top scalar's gradient by a central finite difference of the energy
    h = 1e-5
    k, i = int(table.leaf[0]), int(table.index[0])
    num = (float(setup["energy"](P.perturb_scalar(theta, k, i, h)))
           - float(setup["energy"](P.perturb_scalar(theta, k, i, -h)))) / (2 * h)
    assert table.grads[0] == pytest.approx(num, rel=1e-6)
    np.testing.assert_allclose(table.values, [np.asarray(jax.tree_util.tree_leaves(theta)[a]).ravel()[b]
                                              for a, b in zip(table.leaf, table.index)])


def test_select_filters_to_fitting_parameters(setup):
    theta, grads, model = setup["theta"], setup["grads"], setup["model"]
    table = P.rank_parameters(grads, theta, top=None, select="fitting/", model=model)
    n_fit = sum(np.size(x) for x in jax.tree_util.tree_leaves(theta["fitting"]))
    assert len(table) == n_fit
    assert all(str(n).startswith("fitting/") for n in table.names)
    only_b = P.rank_parameters(grads, theta, top=5, select=lambda n: n.startswith("fitting/type_B/"), model=model)
    assert len(only_b) == 5 and all("type_B" in str(n) for n in only_b.names)
    with pytest.raises(ConfigError, match="select"):
        P.rank_parameters(grads, theta, select="nothing/", model=model)


def test_rank_groups_are_leaf_norms(setup):
    theta, grads, model = setup["theta"], setup["grads"], setup["model"]
    groups = P.rank_groups(grads, theta, by="absolute", model=model)
    assert len(groups) == len(jax.tree_util.tree_leaves(theta))
    named = dict(P.named_leaves(grads, model=model))
    for name, score in zip(groups.names, groups.scores):
        assert score == pytest.approx(np.sqrt(np.sum(named[name] ** 2)), rel=1e-12)
    assert np.all(np.diff(groups.scores) <= 0)
    rel = P.rank_groups(grads, theta, by="relative", select="embedding/", model=model)
    pv = dict(P.named_leaves(theta, model=model))
    assert all(str(n).startswith("embedding/") for n in rel.names)
    top = rel.names[0]
    assert rel.scores[0] == pytest.approx(np.linalg.norm(named[top] * pv[top]), rel=1e-12)


def test_plot_ranking_draws_one_bar_per_row(setup):
    import matplotlib.pyplot as plt

    table = P.rank_parameters(setup["grads"], setup["theta"], top=8, model=setup["model"])
    ax = P.plot_ranking(table, title="dE/d ln theta")
    assert len(ax.patches) == 8
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(n) for n in table.names]
    np.testing.assert_allclose([b.get_width() for b in ax.patches], table.scores)
    plt.close(ax.figure)


def test_generic_pytree_names_and_errors():
    theta = {"pair": {"epsilon": np.array(0.01), "sigma": np.array([3.4, 2.9])}}
    grads = {"pair": {"epsilon": np.array(-2.0), "sigma": np.array([0.5, 1.0])}}
    table = P.rank_parameters(grads, theta, top=None, by="absolute")
    assert list(table.names) == ["pair/epsilon", "pair/sigma[1]", "pair/sigma[0]"]
    np.testing.assert_allclose(table.scores, [2.0, 1.0, 0.5])
    with pytest.raises(ConfigError, match="by"):
        P.rank_parameters(grads, theta, by="log")
    with pytest.raises(ConfigError, match="different pytrees"):
        P.rank_parameters({"other": grads["pair"]}, theta)
    moved = P.perturb_scalar(theta, 1, 1, 0.1)
    assert moved["pair"]["sigma"][1] == pytest.approx(3.0) and theta["pair"]["sigma"][1] == 2.9
