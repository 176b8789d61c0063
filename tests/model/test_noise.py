"""The noise field: statistics, independence of streams and worlds, and fixed known values on every machine."""

import numpy as np
import pytest

from terradream.model.noise import gaussian_grid, noise_window, stream_key, world_seed

pytestmark = pytest.mark.unit


def test_standard_normal_statistics() -> None:
    x = gaussian_grid(stream_key(1, 12, 0, 0), np.arange(-200, 312), np.arange(1000, 1512)).astype(np.float64)
    assert abs(x.mean()) < 0.01
    assert abs(x.var() - 1.0) < 0.01
    assert abs(np.mean(x**3)) < 0.02  # symmetric
    assert abs(np.mean(x**4) - 3.0) < 0.05  # Gaussian kurtosis
    assert (np.abs(x) > 3).mean() < 0.004


def test_neighbours_are_uncorrelated() -> None:
    x = gaussian_grid(stream_key(7, 9, 0, 1), np.arange(512), np.arange(512)).astype(np.float64)
    for a, b in [(x[:, 1:], x[:, :-1]), (x[1:], x[:-1]), (x[1:, 1:], x[:-1, :-1])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_streams_channels_zooms_and_worlds_do_not_alias() -> None:
    rows, cols = np.arange(256), np.arange(256)
    keys = [stream_key(5, 10, 1, 0), stream_key(6, 10, 0, 0), stream_key(5, 10, 0, 1), stream_key(5, 11, 0, 0),
            stream_key(5, 10, 0, 0)]
    assert len({int(k) for k in keys}) == len(keys)
    fields = [gaussian_grid(k, rows, cols).ravel().astype(np.float64) for k in keys]
    for i in range(len(fields)):
        for j in range(i + 1, len(fields)):
            assert abs(np.corrcoef(fields[i], fields[j])[0, 1]) < 0.02


def test_window_reads_the_global_field_and_wraps_columns() -> None:
    width = 256 << 3
    big = noise_window(3, 3, 0, 3, 100, width - 64, 64, 128, width)
    left = noise_window(3, 3, 0, 3, 100, width - 64, 64, 64, width)
    wrapped = noise_window(3, 3, 0, 3, 100, 0, 64, 64, width)
    assert np.array_equal(big[:, :, :64], left)
    assert np.array_equal(big[:, :, 64:], wrapped)  # continuous across the antimeridian


def test_known_values_are_identical_everywhere() -> None:
    """Pinned outputs: a change here changes every tile ever generated, so it must be deliberate."""
    assert world_seed("earth") == 0x4236ABDFFCF3F8AA
    v = gaussian_grid(stream_key(world_seed("earth"), 12, 0, 0), np.array([0, 1]), np.array([0, 1]))
    assert v.dtype == np.float32
    assert v.tolist() == [[-0.37641239166259766, 0.7736520767211914], [0.4031381607055664, -0.31744384765625]]
    far = gaussian_grid(stream_key(1, 2, 3, 4), np.array([-5, 10**12]), np.array([7]))
    assert far.tolist() == [[0.1495504379272461], [-0.4288349151611328]]
    window = noise_window(world_seed("earth"), 12, 0, 3, 0, 0, 2, 2, 256 << 12)
    assert np.array_equal(window[0], v)  # channel 0 is its key's cosine; 1 the sine partner; 2 its own key's cosine
    assert window[1].tolist() == [[0.3756694793701172, -0.6729640960693359], [0.17947101593017578, -1.0822114944458008]]


def test_the_channels_of_a_window_are_independent() -> None:
    channels = noise_window(9, 11, 0, 3, 1000, 2000, 256, 256, 256 << 11).reshape(3, -1).astype(np.float64)
    assert abs(channels.mean()) < 0.01 and abs(channels.std() - 1.0) < 0.01
    corr = np.corrcoef(channels)
    assert np.abs(corr - np.eye(3)).max() < 0.02
