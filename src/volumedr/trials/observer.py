"""The model observer of a trial: a channelized Hotelling observer (CHO) with Laguerre-Gauss channels.

The CHO (Myers & Barrett 1987; Gallas & Barrett 2003 for LG channels; the VICTRE trial and the DBT
literature's standard for a signal-known-exactly task) reduces an ROI g to channel outputs
v = U^T g with the rotationally symmetric Laguerre-Gauss functions

    u_n(r) = sqrt(2) / a * exp(-pi r^2 / a^2) * L_n(2 pi r^2 / a^2),   n = 0 .. N-1,

(a = the channel width, here the finding's diameter in pixels, N = 6), and weighs them with the
Hotelling template w = K^-1 (mean v_present - mean v_absent), K the pooled channel covariance.

**Samples** (docs/trials.md): both classes are ROIs from two independent noise realisations of the
examination.  The signal-absent class is ROIs of the case simulated *without* its findings; the
signal-present class is ROIs of the case simulated *with* them, at the same offsets around the
finding but away from it, with the finding's own noise-free signal (the noise-free reconstruction
with the finding minus the one without) added: signal known exactly, background known statistically
(the background is the case's own anatomy around the finding plus the quantum noise).  The template is
trained on the first half of each class and tested on the other half; d' is the test statistic's
separation

    d' = (mean t_present - mean t_absent) / sqrt((var t_present + var t_absent) / 2)

and its standard error comes from a bootstrap over the test samples.  For a quantum-limited
background d'^2 grows in proportion to the dose; with no signal in either class d' is 0 within its
standard error (tests/test_trials.py).
"""
from __future__ import annotations

import numpy as np
from scipy.special import eval_laguerre

N_CHANNELS = 6
N_BOOTSTRAP = 200


def lg_channels(size: int, width_px: float, n_channels: int = N_CHANNELS) -> np.ndarray:
    """(n_channels, size, size) Laguerre-Gauss channels centred in a size x size ROI."""
    c = (size - 1) / 2.0
    y, x = np.mgrid[:size, :size]
    r2 = (x - c) ** 2 + (y - c) ** 2
    a = float(width_px)
    g = 2 * np.pi * r2 / a**2
    return np.stack([np.sqrt(2) / a * np.exp(-g / 2) * eval_laguerre(n, g) for n in range(n_channels)])


def roi_offsets(shape, centre_rc, size: int, *, exclude_radius: float, window: int, valid=None):
    """(row, col) top-left corners of ROIs of ``size`` on a grid of half an ROI around ``centre_rc`` within
    ``window`` pixels, inside the image (and ``valid``, where given), none nearer the centre than
    ``exclude_radius`` (so a background ROI never holds the finding itself)."""
    step = max(1, size // 2)
    r0, c0 = int(round(centre_rc[0])), int(round(centre_rc[1]))
    out = []
    half = size // 2
    for dr in range(-window, window + 1, step):
        for dc in range(-window, window + 1, step):
            if np.hypot(dr, dc) < exclude_radius:
                continue
            top, left = r0 + dr - half, c0 + dc - half
            if top < 0 or left < 0 or top + size > shape[0] or left + size > shape[1]:
                continue
            if valid is not None and not valid[r0 + dr, c0 + dc]:
                continue
            out.append((top, left))
    return out


def rois(image: np.ndarray, offsets, size: int) -> np.ndarray:
    return np.stack([image[t:t + size, l:l + size] for t, l in offsets]).astype(np.float64)


def cho_dprime(signal: np.ndarray, absent: np.ndarray, present_background: np.ndarray, channels: np.ndarray,
               rng: np.random.Generator | None = None) -> tuple[float, float]:
    """(d', standard error) of the CHO for ``signal`` (size x size, noise-free) on two sets of background
    ROIs (N, size, size): ``absent`` (signal-absent class) and ``present_background`` (the signal-present
    class before the signal is added).  Returns (nan, nan) with too few ROIs to estimate the covariance."""
    rng = rng or np.random.default_rng(0)
    C = channels.shape[0]
    U = channels.reshape(C, -1)
    va = absent.reshape(len(absent), -1) @ U.T
    vp = present_background.reshape(len(present_background), -1) @ U.T + U @ signal.ravel()
    n = min(len(va), len(vp))
    if n < 4 * C:
        return float("nan"), float("nan")
    perm_a, perm_p = rng.permutation(len(va)), rng.permutation(len(vp))
    va, vp = va[perm_a], vp[perm_p]
    ha, hp = len(va) // 2, len(vp) // 2
    train_a, test_a, train_p, test_p = va[:ha], va[ha:], vp[:hp], vp[hp:]
    K = 0.5 * (np.cov(train_a, rowvar=False) + np.cov(train_p, rowvar=False))
    ds = train_p.mean(axis=0) - train_a.mean(axis=0)
    K = K + 1e-9 * np.trace(K) / C * np.eye(C)
    w = np.linalg.solve(K, ds)
    ta, tp = test_a @ w, test_p @ w

    def sep(a, p):
        s = np.sqrt(0.5 * (a.var(ddof=1) + p.var(ddof=1)))
        return float((p.mean() - a.mean()) / s) if s > 0 else float("nan")

    d = sep(ta, tp)
    boot = [sep(ta[rng.integers(0, len(ta), len(ta))], tp[rng.integers(0, len(tp), len(tp))])
            for _ in range(N_BOOTSTRAP)]
    return d, float(np.nanstd(boot, ddof=1))
