"""Ring tracking: hand-built cooling/compression trajectories with known histories."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from glassjax.analysis.tracking import (_components_on_cycle, abundance_curve, ring_first_appearance,
                                        track_three_rings)
from glassjax.data.frames import Frames
from glassjax.errors import ConfigError

BOND = 1.40


def hexagon(centre):
    ang = np.deg2rad(60.0 * np.arange(6))
    return np.stack([BOND * np.cos(ang), BOND * np.sin(ang), np.zeros(6)], axis=1) + np.asarray(centre, float)


def pieces(centre, groups, shift=3.0):
    """The hexagon with each group of vertices moved ``shift`` Å outward (bonds between groups break)."""
    pos = hexagon(centre)
    c = np.asarray(centre, float)
    for g in groups:
        d = pos[g].mean(axis=0) - c
        pos[g] += shift * d / np.linalg.norm(d)
    return pos


def chain(centre):
    """The six ring atoms as an open zig-zag chain (5 bonds, ends 6 Å apart)."""
    k = np.arange(6)
    return np.stack([1.2 * k - 3.0, 0.7 * (k % 2), np.zeros(6)], axis=1) + np.asarray(centre, float)


def test_components_on_cycle_against_networkx():
    for present in itertools.product([False, True], repeat=6):
        G = nx.Graph()
        G.add_nodes_from(range(6))
        G.add_edges_from((k, (k + 1) % 6) for k in range(6) if present[k])
        ref = sorted((len(c) for c in nx.connected_components(G)), reverse=True)
        assert _components_on_cycle(list(present)) == ref


def test_first_appearance_on_synthetic_sets():
    a, b, c = frozenset({1, 2}), frozenset({3, 4}), frozenset({5, 6})
    sets = [{a}, {a, b}, {b}, {a, b, c}, {a, b, c}]
    rows = {r["atoms"]: r for r in ring_first_appearance(sets, temperatures=[1500, 1200, 900, 600, 300])}
    assert rows[(1, 2)]["first_continuous_frame"] == 3 and rows[(1, 2)]["first_seen_frame"] == 0
    assert rows[(3, 4)]["first_continuous_frame"] == 1 and rows[(3, 4)]["first_continuous_temperature"] == 1200
    assert rows[(5, 6)]["first_seen_temperature"] == 600 and rows[(5, 6)]["n_frames_present"] == 2
    curve = abundance_curve(sets)
    np.testing.assert_allclose(curve["present"], [1 / 3, 2 / 3, 1 / 3, 1, 1])
    np.testing.assert_allclose(curve["formed"], [0, 1 / 3, 1 / 3, 1, 1])
    with pytest.raises(ConfigError):
        ring_first_appearance(sets, temperatures=[1, 2])


@pytest.fixture(scope="module")
def history():
    """Five B3O3 sites over 4 frames (T = 1000, 800, 600, 300 K).

    A: chain -> ring from frame 1 ("6");  B: B-O-B-O + B-O pieces -> ring from frame 2 ("4+2");
    C: three B-O dimers -> ring at frame 3 ("2+2+2");  D: ring throughout;
    E: ring, opened into a chain at frame 1, ring again from frame 2.
    """
    centres = [(6, 6, 10), (16, 6, 10), (26, 6, 10), (6, 18, 10), (16, 18, 10)]
    ring = [hexagon(c) for c in centres]
    frames = []
    for f in range(4):
        parts = [
            chain(centres[0]) if f == 0 else ring[0],
            pieces(centres[1], [[4, 5]]) if f < 2 else ring[1],
            pieces(centres[2], [[0, 1], [2, 3], [4, 5]]) if f < 3 else ring[2],
            ring[3],
            chain(centres[4]) if f == 1 else ring[4],
        ]
        frames.append(np.concatenate(parts))
    species = ["B", "O"] * 15
    traj = Frames(species=species, positions=np.stack(frames), cells=np.repeat(np.eye(3)[None] * 34.0, 4, axis=0))
    return traj, track_three_rings(traj, temperatures=[1000, 800, 600, 300], reference=0, chunk=2)


def test_ring_first_appearance_cooling(history):
    traj, res = history
    np.testing.assert_array_equal(res["n_3rings"], [2, 2, 4, 5])
    by_site = {r["atoms"][0] // 6: r for r in res["first_appearance"]}
    assert {s: by_site[s]["first_continuous_frame"] for s in range(5)} == {0: 1, 1: 2, 2: 3, 3: 0, 4: 2}
    assert by_site[4]["first_seen_frame"] == 0 and by_site[4]["first_continuous_temperature"] == 600
    np.testing.assert_allclose(res["abundance"]["formed"], [0.2, 0.4, 0.8, 1.0])
    np.testing.assert_allclose(res["abundance"]["present"], [0.4, 0.4, 0.8, 1.0])


def test_new_ring_origins_compression(history):
    traj, res = history
    assert res["origin_counts"] == {"6": 1, "4+2": 1, "2+2+2": 1}
    last = {o["atoms"][0] // 6: o for o in res["origins"] if o["frame"] == 3}
    assert last[0]["category"] == "6" and last[0]["n_ref_bonds"] == 5
    assert last[1]["category"] == "4+2" and last[2]["category"] == "2+2+2"
    assert set(last) == {0, 1, 2}  # D and E were rings in the reference frame
    # reference classes: the dimers' B had one O, the chain's end B one and middle B two
    assert set(last[2]["ref_classes"].split("-")) == {"1Bn", "NBOn"}
    assert res["ref_classes"][18] == "2Br" and res["ref_classes"][19] == "BOr"


def test_cli_track_rings(history, tmp_path):
    import csv

    import ase.io

    from glassjax.cli import main

    traj, res = history
    path = tmp_path / "cooling.extxyz"
    ase.io.write(path, [traj.to_atoms(k) for k in range(traj.nframes)], format="extxyz")
    out = tmp_path / "track.csv"
    rc = main(["analyze", "track-rings", str(path), "--temperatures", "1000,800,600,300", "--chunk", "2",
               "-o", str(out)])
    assert rc == 0 and (tmp_path / "track.png").stat().st_size > 0
    rows = list(csv.DictReader(open(out)))
    got = {int(r["ring_atoms"].split()[0]) // 6: (int(r["first_continuous_frame"]),
                                                   float(r["first_continuous_temperature"])) for r in rows}
    assert got == {0: (1, 800.0), 1: (2, 600.0), 2: (3, 300.0), 3: (0, 1000.0), 4: (2, 600.0)}
    origins = list(csv.DictReader(open(tmp_path / "track_origins.csv")))
    assert sorted(o["category"] for o in origins if o["frame"] == "3") == ["2+2+2", "4+2", "6"]
    # wrong number of temperatures: one-line error, exit status 2
    assert main(["analyze", "track-rings", str(path), "--temperatures", "1000,300", "-o", str(out)]) == 2
