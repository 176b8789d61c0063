"""Realism metrics: structure features, the classifier two-sample test, Frechet distance, the aerial ResNet-18."""

import importlib.util

import numpy as np
import pytest

from terradream.training.realism import (
    MIN_CROP_PX,
    STRUCTURE_FEATURE_NAMES,
    _accuracy_numpy,
    _balanced_xy,
    compare_sets,
    frechet_distance,
    structure_features,
    two_sample_accuracy,
)

HAVE_GEOEMBED = importlib.util.find_spec("geoembed") is not None
needs_geoembed = pytest.mark.skipif(
    not HAVE_GEOEMBED, reason="geoembed (the aerial ResNet-18 weights) is not installed: pip install --no-deps geoembed"
)


def smooth_noise(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Low-pass filtered white noise, uint8 RGB."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    lowpass = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.05**2))
    grey = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, size, size))) * lowpass).real
    grey = (grey - grey.mean(axis=(1, 2), keepdims=True)) / grey.std(axis=(1, 2), keepdims=True)
    img = np.clip(128 + 40 * grey, 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=-1)


def stripes(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Sharp straight stripes at a random angle and period, with a little noise, uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 16)
        wave = np.sign(np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period))
        img = np.clip(128 + 60 * wave + rng.normal(0, 4, wave.shape), 0, 255).astype(np.uint8)
        out[i] = img[..., None]
    return out


def test_structure_features_shape_finite_and_deterministic():
    crops = np.concatenate([smooth_noise(3), stripes(3), np.full((1, 64, 64, 3), 77, np.uint8)])
    f = structure_features(crops)
    assert f.shape == (7, len(STRUCTURE_FEATURE_NAMES))
    assert 30 <= f.shape[1] <= 60
    assert np.isfinite(f).all()
    np.testing.assert_array_equal(f, structure_features(crops))
    np.testing.assert_array_equal(f[2:5], structure_features(crops[2:5]))  # per crop, whatever the batch


def test_structure_features_ignore_brightness_contrast_and_quarter_turns():
    crops = stripes(4, seed=3)
    f = structure_features(crops)
    dimmer = (crops.astype(np.float64) * 0.5 + 20).round().astype(np.uint8)
    np.testing.assert_allclose(structure_features(dimmer), f, rtol=0.05, atol=0.02)
    turned = np.ascontiguousarray(np.rot90(crops, k=1, axes=(1, 2)))
    np.testing.assert_allclose(structure_features(turned), f, rtol=1e-6, atol=1e-6)


def test_structure_features_are_finite_at_the_smallest_crop_they_accept():
    small = np.concatenate([smooth_noise(3, size=MIN_CROP_PX), stripes(3, size=MIN_CROP_PX)])
    assert np.isfinite(structure_features(small)).all()
    with pytest.raises(ValueError):
        structure_features(small[:, 1:, 1:])


def test_structure_features_reject_bad_input():
    with pytest.raises(ValueError):
        structure_features(np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(ValueError):
        structure_features(np.zeros((2, 16, 16, 3), np.uint8))


def test_two_sample_accuracy_chance_for_one_distribution_and_one_for_different_ones():
    a, b = smooth_noise(60, seed=1), smooth_noise(60, seed=2)
    same = two_sample_accuracy(structure_features(a), structure_features(b))
    assert abs(same - 0.5) < 0.15
    different = two_sample_accuracy(structure_features(smooth_noise(40, seed=1)), structure_features(stripes(40)))
    assert different > 0.95


def test_two_sample_accuracy_balances_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(50, 8)) + 3.0
    acc = two_sample_accuracy(a, b, seed=4)
    assert acc > 0.95
    assert acc == two_sample_accuracy(a, b, seed=4)
    x, y = _balanced_xy(a, b, seed=0)
    assert x.shape == (100, 8) and y.sum() == 50
    with pytest.raises(ValueError):
        two_sample_accuracy(a[:1], b)


def test_numpy_fallback_agrees_with_the_test():
    rng = np.random.default_rng(1)
    x, y = _balanced_xy(rng.normal(size=(80, 6)), rng.normal(size=(80, 6)), seed=0)
    assert abs(_accuracy_numpy(x, y, folds=5, seed=0, c=1.0) - 0.5) < 0.15
    x, y = _balanced_xy(rng.normal(size=(80, 6)), rng.normal(size=(80, 6)) + 2.5, seed=0)
    assert _accuracy_numpy(x, y, folds=5, seed=0, c=1.0) > 0.95


def test_frechet_distance_zero_for_identical_sets_and_exact_for_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
    assert frechet_distance(a, a) < 1e-6 * np.trace(np.cov(a, rowvar=False))
    shift = rng.normal(size=16)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    b = rng.normal(size=(300, 16)) * 3.0 + 2.0
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    assert frechet_distance(a, b) > 10 * frechet_distance(a[:150], a[150:])


def test_frechet_distance_small_sets_stay_finite():
    rng = np.random.default_rng(0)
    fd = frechet_distance(rng.normal(size=(5, 64)), rng.normal(size=(7, 64)))
    assert np.isfinite(fd) and fd >= 0


@pytest.fixture(scope="module")
def aerial():
    from terradream.training.realism import AerialFeatures

    return AerialFeatures(batch_size=2)


@needs_geoembed
def test_aerial_features_load_and_give_finite_deterministic_features(aerial):
    crops = np.concatenate([smooth_noise(1, size=128), stripes(1, size=128)])
    assert aerial.dim == 512
    f = aerial(crops)
    assert f.shape == (2, 512) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(f, aerial(crops))
    assert np.abs(f[0] - f[1]).max() > 0


@needs_geoembed
def test_aerial_embedding_is_geoembeds_unit_vector_and_resizes_other_sizes():
    from terradream.training.realism import AerialFeatures

    embed = AerialFeatures(layer="embed")(stripes(1, size=96))  # resized to 128 px, as geoembed does
    assert embed.shape == (1, 256)
    np.testing.assert_allclose(np.linalg.norm(embed, axis=1), 1.0, atol=1e-5)


def test_compare_sets_reports_every_measure():
    def colour_stats(crops: np.ndarray) -> np.ndarray:  # a cheap stand-in for AerialFeatures
        return np.concatenate([crops.mean(axis=(1, 2)), crops.std(axis=(1, 2))], axis=1)

    real, fake, control = smooth_noise(12, seed=1), stripes(12), smooth_noise(12, seed=2)
    result = compare_sets(real, fake, control, colour_stats)
    assert result["acc_fake"] > 0.9 and result["fd_fake"] > result["fd_control"]
    assert result["n_real"] == result["n_fake"] == result["n_control"] == 12
    no_control = compare_sets(real, fake, None, colour_stats)
    assert no_control["acc_control"] is None and no_control["fd_control"] is None
    assert no_control["fd_fake"] == result["fd_fake"]
