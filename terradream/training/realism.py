"""Realism metrics: compare a set of generated image crops with a set of real ones.

Three measures, all deterministic and CPU-only:

* ``structure_features``: ~50 hand-made statistics of each crop's greyscale structure (gradients, orientation
  coherence, Laplacian, edge density) over 4 scales. Brightness and contrast are divided out per crop, so they
  describe texture and geometry, not colour.
* ``two_sample_accuracy``: a classifier two-sample test. The cross-validated accuracy of a logistic regression
  that tells set a from set b: 0.5 means indistinguishable, 1.0 means always told apart.
* ``AerialFeatures`` + ``frechet_distance``: a Frechet distance (FID formula) on the pooled features of a
  ResNet-18 trained on aerial imagery, whose weights ship in the PyPI package ``geoembed`` (MIT). Only that
  package's weights file is used; its own runtime (netcl/OpenCL) is not needed.

``compare_sets`` runs them all for a real set, a generated set and an optional control set (e.g. a baseline
such as bicubic upsampling, or a second real set as a real-vs-real reference).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# ---------------------------------------------------------------------------------------------------------
# Structure features
# ---------------------------------------------------------------------------------------------------------

STRUCTURE_SCALES = 4
ORIENTATION_BINS = 8
_PER_SCALE_NAMES = (
    "grad_mean",  # mean gradient magnitude (standardised intensity units per pixel)
    "grad_std",
    "grad_q50",
    "grad_q90",
    "coherence_mean",  # mean of (l1 - l2) / (l1 + l2) of the local structure tensor
    "coherence_energy",  # sum(l1 - l2) / sum(l1 + l2): coherence weighted by local gradient energy
    "orient_entropy",  # entropy of the coherence-weighted histogram of dominant orientations, / log(bins)
    "orient_peak",  # mass of the fullest orientation bin
    "orient_orthogonal",  # mass of the fullest bin plus the bin at 90 degrees to it (grids, field mosaics)
    "lap_mean",  # mean |Laplacian|
    "lap_q90",
    "lap_log_kurtosis",  # log(E[L^4] / E[L^2]^2): log 3 for Gaussian noise, higher for sparse edges
    "edge_density",  # fraction of pixels whose gradient magnitude exceeds twice the crop's mean
)
STRUCTURE_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"s{s}_{name}" for s in range(STRUCTURE_SCALES) for name in _PER_SCALE_NAMES
)
# the coarsest scale keeps 7 px: the central gradient takes 2 and the two 3x3 smoothings 4, which leaves 1
MIN_CROP_PX = 7 * 2 ** (STRUCTURE_SCALES - 1)
_CHUNK = 32


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected crops of shape (N, H, W, 3), got {crops.shape}")
    if crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops, got {crops.dtype}")
    return crops


def _standardised_grey(crops: np.ndarray) -> np.ndarray:
    """(N, H, W) float64: luma, minus each crop's mean, divided by its standard deviation (flat crops stay 0)."""
    grey = crops.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    std = grey.std(axis=(1, 2), keepdims=True)
    return grey / np.maximum(std, 1e-6)


def _area_down2(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2].reshape(n, h2, 2, w2, 2).mean(axis=(2, 4))


def _binomial3(x: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 smoothing over the valid region (each side shrinks by 1 px)."""
    x = 0.25 * (x[:, :, :-2] + 2.0 * x[:, :, 1:-1] + x[:, :, 2:])
    return 0.25 * (x[:, :-2] + 2.0 * x[:, 1:-1] + x[:, 2:])


def _scale_stats(x: np.ndarray) -> np.ndarray:
    """(N, len(_PER_SCALE_NAMES)) statistics of one scale of standardised greyscale images (N, h, w)."""
    n = x.shape[0]
    eps = 1e-12
    gx = 0.5 * (x[:, 1:-1, 2:] - x[:, 1:-1, :-2])
    gy = 0.5 * (x[:, 2:, 1:-1] - x[:, :-2, 1:-1])
    mag = np.hypot(gx, gy).reshape(n, -1)
    grad_mean = mag.mean(axis=1)
    grad_std = mag.std(axis=1)
    grad_q50, grad_q90 = np.quantile(mag, [0.5, 0.9], axis=1)
    edge_density = (mag > 2.0 * grad_mean[:, None]).mean(axis=1)

    # structure tensor, smoothed twice with the binomial kernel (a 5x5 window)
    jxx = _binomial3(_binomial3(gx * gx)).reshape(n, -1)
    jyy = _binomial3(_binomial3(gy * gy)).reshape(n, -1)
    jxy = _binomial3(_binomial3(gx * gy)).reshape(n, -1)
    trace = jxx + jyy  # l1 + l2
    spread = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy**2)  # l1 - l2
    floor = 1e-3 * trace.mean(axis=1, keepdims=True) + eps  # flat areas count as incoherent, not as 0/0
    coherence_mean = (spread / (trace + floor)).mean(axis=1)
    coherence_energy = spread.sum(axis=1) / (trace.sum(axis=1) + eps)

    # dominant orientation in [0, pi), bins centred on 0, 22.5, 45, ... degrees, weighted by l1 - l2
    theta = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)
    width = np.pi / ORIENTATION_BINS
    bins = np.floor(np.mod(theta + 0.5 * width, np.pi) / width).astype(np.int64)
    bins = np.clip(bins, 0, ORIENTATION_BINS - 1)
    flat = (np.arange(n)[:, None] * ORIENTATION_BINS + bins).ravel()
    hist = np.bincount(flat, weights=spread.ravel(), minlength=n * ORIENTATION_BINS).reshape(n, -1)
    total = hist.sum(axis=1, keepdims=True)
    p = np.where(total > eps, hist / np.maximum(total, eps), 1.0 / ORIENTATION_BINS)  # no structure: uniform
    orient_entropy = -(p * np.log(np.maximum(p, eps))).sum(axis=1) / np.log(ORIENTATION_BINS)
    peak_bin = p.argmax(axis=1)
    orient_peak = p[np.arange(n), peak_bin]
    orient_orthogonal = orient_peak + p[np.arange(n), (peak_bin + ORIENTATION_BINS // 2) % ORIENTATION_BINS]

    lap = (x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4.0 * x[:, 1:-1, 1:-1]).reshape(n, -1)
    lap_abs = np.abs(lap)
    lap_mean = lap_abs.mean(axis=1)
    lap_q90 = np.quantile(lap_abs, 0.9, axis=1)
    m2 = (lap**2).mean(axis=1)
    m4 = (lap**4).mean(axis=1)
    lap_log_kurtosis = np.where(m2 > eps, np.log(np.maximum(m4, eps) / np.maximum(m2, eps) ** 2), np.log(3.0))

    return np.stack(
        [
            grad_mean,
            grad_std,
            grad_q50,
            grad_q90,
            coherence_mean,
            coherence_energy,
            orient_entropy,
            orient_peak,
            orient_orthogonal,
            lap_mean,
            lap_q90,
            lap_log_kurtosis,
            edge_density,
        ],
        axis=1,
    )


def structure_features(crops: np.ndarray) -> np.ndarray:
    """(N, 52) float64 structure statistics of uint8 RGB crops (N, S, S, 3); names in STRUCTURE_FEATURE_NAMES.

    Each crop is turned into standardised greyscale (luma minus its mean, over its standard deviation), then
    measured at 4 scales, each a 2x area downsample of the one before; scales are not re-standardised, so how
    the gradient energy falls with scale (the spectrum's slope) is part of the features. Orientation statistics
    are rotation-invariant (entropy and peak mass of the orientation histogram, not its position). Pure numpy;
    the same crops give the same features bit for bit.
    """
    crops = _check_crops(crops)
    n, h, w, _ = crops.shape
    if min(h, w) < MIN_CROP_PX:
        raise ValueError(f"crops must be at least {MIN_CROP_PX} px on a side, got {h}x{w}")
    out = np.empty((n, len(STRUCTURE_FEATURE_NAMES)), dtype=np.float64)
    per = len(_PER_SCALE_NAMES)
    for start in range(0, n, _CHUNK):
        x = _standardised_grey(crops[start : start + _CHUNK])
        for s in range(STRUCTURE_SCALES):
            if s:
                x = _area_down2(x)
            out[start : start + len(x), s * per : (s + 1) * per] = _scale_stats(x)
    return out


# ---------------------------------------------------------------------------------------------------------
# Classifier two-sample test
# ---------------------------------------------------------------------------------------------------------


def _balanced_xy(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two 2-D feature arrays with the same width, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features must be finite")
    n = min(len(a), len(b))
    if n < 2:
        raise ValueError(f"need at least 2 samples in each set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    if len(a) > n:
        a = a[np.sort(rng.choice(len(a), n, replace=False))]
    if len(b) > n:
        b = b[np.sort(rng.choice(len(b), n, replace=False))]
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
    return x, y


def _accuracy_sklearn(x: np.ndarray, y: np.ndarray, folds: int, seed: int, c: float) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(model, x, y, cv=cv, scoring="accuracy")))


def _logreg_newton(x: np.ndarray, y: np.ndarray, c: float, iterations: int = 50) -> np.ndarray:
    """L2 logistic regression (sklearn's objective: C * sum(log-loss) + |w|^2 / 2, bias not penalised)."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(xb.shape[1])
    reg = np.ones(xb.shape[1]) / c
    reg[-1] = 1e-8
    for _ in range(iterations):
        z = xb @ w
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # a sigmoid that cannot overflow
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1.0 - p))[:, None]).T @ xb + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _accuracy_numpy(x: np.ndarray, y: np.ndarray, folds: int, seed: int, c: float) -> float:
    """The same test without scikit-learn: stratified shuffled folds, standardisation fitted on each train split."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        for k, part in enumerate(np.array_split(idx, folds)):
            fold_of[part] = k
    scores = []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std[std == 0] = 1.0
        w = _logreg_newton((x[train] - mean) / std, y[train].astype(np.float64), c)
        z = ((x[test] - mean) / std) @ w[:-1] + w[-1]
        scores.append(np.mean((z > 0).astype(np.int64) == y[test]))
    return float(np.mean(scores))


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS/OpenMP thread: these problems are small, and on busy cores spinning worker threads cost 20x."""
    if importlib.util.find_spec("threadpoolctl") is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, folds: int = 5, seed: int = 0, c: float = 1.0) -> float:
    """Cross-validated accuracy of a logistic regression telling feature set a (N_a, D) from b (N_b, D).

    The larger set is subsampled (seeded) to the size of the smaller, so chance is exactly 0.5; features are
    standardised on each training split; L2 penalty with inverse strength c; stratified shuffled folds (fewer
    when a set has fewer samples than folds). 0.5: indistinguishable; 1.0: always told apart. With n samples
    per set, its noise under the null is about 0.5 / sqrt(2 n) (0.03 at n = 128). Uses scikit-learn when it is
    installed, else an equivalent numpy implementation (scores may differ slightly: different fold splits).
    """
    x, y = _balanced_xy(a, b, seed)
    folds = max(2, min(int(folds), len(y) // 2))
    with _single_threaded_blas():
        if importlib.util.find_spec("sklearn") is not None:
            return _accuracy_sklearn(x, y, folds, seed, c)
        return _accuracy_numpy(x, y, folds, seed, c)


# ---------------------------------------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------------------------------------


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray, ridge: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to feature sets (N_a, D) and (N_b, D) (the FID formula).

    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), in float64 via symmetric
    eigendecompositions (stable, no complex parts). A ridge of ``ridge`` times the mean per-dimension variance
    is added to both covariances, which keeps small-N (rank-deficient) covariances well conditioned while
    changing the distance negligibly. Identical sets give ~0. FD grows with N-dependent bias for small N:
    compare values only at equal set sizes.
    """
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two 2-D feature arrays with the same width, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 samples in each set, got {len(a)} and {len(b)}")
    with _single_threaded_blas():
        return _frechet(a, b, ridge)


def _frechet(a: np.ndarray, b: np.ndarray, ridge: float) -> float:
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    d = a.shape[1]
    eps = ridge * max(0.5 * (np.trace(cov_a) + np.trace(cov_b)) / d, 1e-12)
    cov_a = cov_a + eps * np.eye(d)
    cov_b = cov_b + eps * np.eye(d)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = 0.5 * (middle + middle.T)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    fd = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(fd, 0.0)


# ---------------------------------------------------------------------------------------------------------
# Aerial ResNet-18 (geoembed v3 weights)
# ---------------------------------------------------------------------------------------------------------


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.short: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.short is None else self.short(x)))


class AerialResNet18(nn.Module):
    """geoembed's "V3" tile encoder: a CIFAR-style ResNet-18 (3x3 stride-1 stem, no max-pool) for 128 px tiles.

    forward: input (B, 3, 128, 128) RGB scaled to [-1, 1] ((x / 255 - 0.5) / 0.5); layer4 gives (B, 512, 16, 16);
    average-pooled to 4x4, flattened channel-major (8192), a linear layer to 256, L2-normalised: the embedding
    geoembed returns. ``features`` gives the layer4 map.
    """

    def __init__(self, base: int = 64, embed_dim: int = 256, pool_size: int = 4):
        super().__init__()
        self.pool_size = pool_size
        self.stem = nn.Sequential(nn.Conv2d(3, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base, eps=1e-5), nn.ReLU())
        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1))

        self.layer1 = stage(base, base, 1)
        self.layer2 = stage(base, base * 2, 2)
        self.layer3 = stage(base * 2, base * 4, 2)
        self.layer4 = stage(base * 4, base * 8, 2)
        self.fc = nn.Linear(base * 8 * pool_size * pool_size, embed_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            h = layer(h)
        return h

    def embed(self, feat: torch.Tensor) -> torch.Tensor:
        k = (feat.shape[2] // self.pool_size, feat.shape[3] // self.pool_size)
        z = self.fc(F.avg_pool2d(feat, kernel_size=k, stride=k).flatten(1))
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.features(x))

    @classmethod
    def from_npz(cls, path: str | Path) -> AerialResNet18:
        """Build from geoembed's v3.npz: keys bb.<torch name> for the backbone; fc.weight stored (in, out)."""
        with np.load(path, allow_pickle=False) as data:
            base = int(data["base_channels"][0]) if "base_channels" in data.files else 64
            pool = int(data["pool_size"][0]) if "pool_size" in data.files else 4
            model = cls(base=base, embed_dim=int(data["embed_dim"][0]), pool_size=pool)
            state = {k[3:]: torch.from_numpy(np.array(data[k])) for k in data.files if k.startswith("bb.")}
            state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(data["fc.weight"].T))
            state["fc.bias"] = torch.from_numpy(np.array(data["fc.bias"]))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"{path}: weights do not fit the architecture: missing {missing}, unexpected {unexpected}")
        return model.eval()


def geoembed_weights_path(name: str = "v3.npz") -> Path:
    """Path of a weights file inside the installed ``geoembed`` package, found without importing it.

    (``importlib.resources.files("geoembed")`` would import geoembed, whose ``__init__`` needs its OpenCL
    runtime, netcl; locating the package's folder through its import spec does not.)
    """
    spec = importlib.util.find_spec("geoembed")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the geoembed package is not installed (pip install --no-deps geoembed)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"geoembed is installed but has no weights/{name}")


class AerialFeatures:
    """Pooled penultimate features of geoembed's aerial-imagery ResNet-18, for Frechet distances.

    ``layer="pool"`` (default): layer4 globally average-pooled, 512-d (as Inception's pool features for FID).
    ``layer="embed"``: geoembed's own 256-d L2-normalised embedding. Crops are uint8 RGB (N, S, S, 3); crops
    whose side is not 128 are resized to 128 with PIL bilinear, as geoembed does. Runs on CPU under no_grad in
    float32, in batches; weights load from the installed geoembed package (no downloads).
    """

    input_size = 128

    def __init__(self, layer: str = "pool", batch_size: int = 32, weights: str | Path | None = None):
        if layer not in ("pool", "embed"):
            raise ValueError(f"layer must be 'pool' or 'embed', got {layer!r}")
        self.layer = layer
        self.batch_size = int(batch_size)
        self.weights = Path(weights) if weights is not None else geoembed_weights_path()
        self.model = AerialResNet18.from_npz(self.weights)
        self.dim = self.model.fc.in_features // self.model.pool_size**2 if layer == "pool" else self.model.fc.out_features

    def preprocess(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 (N, S, S, 3) -> float32 (N, 3, 128, 128) in [-1, 1], as geoembed.preprocess."""
        crops = _check_crops(crops)
        size = self.input_size
        if crops.shape[1:3] != (size, size):
            from PIL import Image

            crops = np.stack(
                [np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BILINEAR)) for c in crops]
            )
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        return (x / 255.0 - 0.5) / 0.5

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = _check_crops(crops)
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                x = self.preprocess(crops[start : start + self.batch_size])
                feat = self.model.features(x)
                z = feat.mean(dim=(2, 3)) if self.layer == "pool" else self.model.embed(feat)
                out[start : start + len(x)] = z.numpy()
        return out


# ---------------------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------------------


def compare_sets(
    real: np.ndarray,
    fake: np.ndarray,
    control: np.ndarray | None = None,
    features: Callable[[np.ndarray], np.ndarray] | None = None,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """Realism of ``fake`` (and of an optional ``control``) against ``real``; all uint8 (N, S, S, 3) crop sets.

    Returns ``acc_fake`` / ``acc_control``: two-sample accuracy on structure_features (0.5 is best);
    ``acc_deep_fake`` / ``acc_deep_control``: the same test on the aerial ResNet features; ``fd_fake`` /
    ``fd_control``: Frechet distance on the aerial ResNet features (0 is best; compare at equal set sizes);
    and the set sizes. Control entries are None without a control set. ``features`` (crops -> (N, D) array)
    defaults to a new AerialFeatures(); pass one to reuse its loaded weights.
    """
    features = features if features is not None else AerialFeatures()
    s_real, d_real = structure_features(real), features(real)
    out: dict[str, float | int | None] = {"n_real": len(real)}
    for tag, crops in (("fake", fake), ("control", control)):
        if crops is None:
            out.update({f"n_{tag}": None, f"acc_{tag}": None, f"acc_deep_{tag}": None, f"fd_{tag}": None})
            continue
        deep = features(crops)
        out[f"n_{tag}"] = len(crops)
        out[f"acc_{tag}"] = two_sample_accuracy(s_real, structure_features(crops), folds=folds, seed=seed)
        out[f"acc_deep_{tag}"] = two_sample_accuracy(d_real, deep, folds=folds, seed=seed)
        out[f"fd_{tag}"] = frechet_distance(d_real, deep)
    return out
