"""Towns and districts of the structure field: denser centres, pitched roofs lit from one side, roads on district
edges where the field pattern changes."""

import numpy as np
import pytest

from terradream.model.lattice import Grid
from terradream.model.structure import _districts
from terradream.model.towns import ROOF_RELIEF, SUN, town_plan

pytestmark = pytest.mark.unit

Z, ROW0, COL0 = 17, 47_448_000, 67_336_000  # a z17 window at mid latitudes (0.9 m pixels)


def plan(core: float, theta: float = 0.3, size: int = 256):
    g = Grid.of_window(Z, ROW0, COL0, size, size)
    ones = np.ones((size, size), np.float32)
    rb = np.full((size, size), 12345, np.uint64)
    style = np.zeros((size, size), np.int64)
    return g, town_plan(7, g, rb, np.full((size, size), theta, np.float32), style, ones, ones * np.float32(core))


def test_a_town_centre_is_more_built_over_than_its_edge() -> None:
    _, edge = plan(0.0)
    _, centre = plan(1.0)
    assert 0.1 < edge.building.mean() < centre.building.mean() - 0.1


def test_roof_slopes_facing_the_sun_are_lighter() -> None:
    """Along a line across one ridge the roof takes two brightnesses, the slope facing the sun the lighter."""
    theta = 0.0  # streets along the x axis: every detached house has its ridge along the street or across it
    g, edge = plan(0.0, theta)
    inside = edge.building == 1.0
    lum = edge.roof.mean(-1)
    ratios = []
    for r in range(0, 256, 4):
        cols = np.nonzero(inside[r])[0]
        if len(cols) < 6:
            continue
        runs = np.split(cols, np.nonzero(np.diff(cols) > 1)[0] + 1)
        for run in runs:
            values = np.unique(np.round(lum[r, run], 5))
            if len(run) >= 6 and len(values) == 2:  # a ridge along the street (north-south): west and east slopes
                ratios.append(lum[r, run[-1]] / lum[r, run[0]])
    expected = (1 + ROOF_RELIEF * SUN[0]) / (1 - ROOF_RELIEF * SUN[0])  # east over west: below 1, the sun is west
    assert expected < 1
    assert len(ratios) > 20 and float(np.median(ratios)) == pytest.approx(expected, rel=1e-3)


def test_district_edges_are_where_districts_change_and_the_same_in_every_window() -> None:
    z, row0, col0 = 13, 2_964_000, 4_208_000
    g = Grid.of_window(z, row0, col0, 300, 300)
    d = _districts(7, g, edges=True)
    edge = d.edge_m
    assert edge is not None
    changes = np.diff(d.rb, axis=1) != 0
    assert changes.any()
    # a pixel next to a change of district is within about a pixel of the edge; most pixels are far from one
    assert np.all(np.minimum(edge[:, 1:], edge[:, :-1])[changes] < 1.5 * g.px_m)
    assert np.median(edge) > 10 * g.px_m
    shifted = _districts(7, Grid.of_window(z, row0 + 37, col0 + 51, 200, 200), edges=True)
    np.testing.assert_array_equal(shifted.edge_m, edge[37:237, 51:251])
    plain = _districts(7, g, edges=False)  # the same districts whether or not their edges are asked for
    np.testing.assert_array_equal(plain.rb, d.rb)
    np.testing.assert_array_equal(plain.theta, d.theta)
