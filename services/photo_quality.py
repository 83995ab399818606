"""Is a client's photo of a document good enough to read? Size, exposure, glare and blur checks.

Pure: takes a decoded, EXIF-transposed PIL image (any mode) and returns the problems found,
most important first, with the measurements behind them. Everything but the size check runs on
a grayscale copy scaled down so its longest side is WORK_LONG_SIDE px, so the figures do not
depend on the camera's resolution.

The thresholds were measured with `python bench/photo_quality.py --calibrate` on the "train"
split of `services.photo_samples` (150 synthetic photos per label); the bench reports precision
and recall on the separate "holdout" split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

PROBLEMS = ("too_small", "too_dark", "too_bright", "glare", "blurry")

WORK_LONG_SIDE = 1024
_BLOCK = 16  # px at the working resolution: contrast, edges and glare are measured per block

# too_small is a definition, not a measurement: a document filling a 600 px wide photo is imaged
# at ~70 px per inch (US letter), about the least at which 10-point print can still be read.
MIN_SHORT_SIDE = 600

# Measured by `python bench/photo_quality.py --calibrate` on the train split (150 photos per
# label): each is the cut between the good photos and that problem's photos with the fewest
# train errors (ties: the middle of the widest gap), rounded. Figures are train min..max.
#
# too_dark: the 95th percentile of brightness, i.e. the paper. good 137..255, too_dark 44..102.
MAX_DARK_P95 = 120.0
# too_bright: veiling flare lifts even the blackest ink, so both at least BRIGHT_CLIPPED of the
# pixels are clipped (>= 250) and the darkest 0.1% is no darker than BRIGHT_DARKEST.
# too_bright: clipped 0.112..1.000, darkest 0.1% 127..254; among good photos with >= 0.09
# clipped the darkest 0.1% reaches 107 at most, and no good photo is that dark-less, so
# BRIGHT_CLIPPED only needs to sit below the too_bright minimum. (Blurry photos of clipped white
# paper can fall in: blur greys thin print, up to 192.)
BRIGHT_CLIPPED = 0.09
BRIGHT_DARKEST = 117.0
# glare: a 4-connected blob of 16 px blocks saturated throughout (>= 245 everywhere: no ink left)
# covering at least GLARE_MIN_BLOB of the frame, while outside it (and 2 blocks around it) less
# than GLARE_MAX_ELSEWHERE of the pixels are clipped: otherwise it is white paper exposed to 255,
# still readable. glare: blob 0.008..0.133 with 0.000 clipped elsewhere; good photos with such a
# blob have 0.006..0.484 clipped elsewhere, and without clipping elsewhere a blob <= 0.003.
GLARE_MIN_BLOB = 0.0055
GLARE_MAX_ELSEWHERE = 0.003
# blurry: over the high-contrast blocks, the median of (steepest one-pixel step / block
# contrast), in the least sharp of 4 directions, so that camera shake (which blurs one direction
# only) counts. good 0.265..0.782 (5th pct 0.368), blurry 0.028..0.296 (95th pct 0.218): they
# overlap; the cut misses no train blurry photo and flags 2 of 150 good ones. Glare photos can
# measure low too (5th pct 0.231): the halo of the reflection eats the contrast.
MIN_SHARPNESS = 0.31


@dataclass(frozen=True)
class QualityReport:
    """What is wrong with a photo (a subset of PROBLEMS, most important first) and the figures."""

    problems: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _to_gray(image: Image.Image) -> Image.Image:
    """An 8-bit grayscale image of any mode (16-bit and float images are rescaled to 0-255)."""
    mode = image.mode
    if mode == "L":
        return image
    if mode == "RGB":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(image, dtype=np.float32)
        top = float(arr.max()) if arr.size else 0.0
        if mode.startswith("I;16") or top > 255:
            arr = arr / 257.0 if top <= 65535 else arr * (255.0 / top)
        elif mode == "F" and top <= 1.0:
            arr = arr * 255.0
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    try:
        return image.convert("RGB").convert("L")
    except ValueError:  # a mode Pillow cannot convert (e.g. "La"): its first band is the lightness
        return image.getchannel(0).convert("L")


def _working(gray: Image.Image) -> np.ndarray:
    w, h = gray.size
    k = WORK_LONG_SIDE / max(w, h)
    if k < 1:
        gray = gray.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR,
                           reducing_gap=2.0)
    return np.asarray(gray)


def _percentiles(g8: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    cum = np.cumsum(np.bincount(g8.ravel(), minlength=256))
    return [float(np.searchsorted(cum, q / 100 * cum[-1])) for q in qs]


def _blocks(a: np.ndarray) -> np.ndarray:
    """(rows, cols, _BLOCK * _BLOCK) view of `a` cut into blocks (the ragged edge is dropped)."""
    hb, wb = a.shape[0] // _BLOCK, a.shape[1] // _BLOCK
    return (a[: hb * _BLOCK, : wb * _BLOCK].reshape(hb, _BLOCK, wb, _BLOCK)
            .transpose(0, 2, 1, 3).reshape(hb, wb, _BLOCK * _BLOCK))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected group of True cells of `mask`, as a mask."""
    seen = np.zeros_like(mask)
    h, w = mask.shape
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, group = [(y0, x0)], []
        while stack:
            y, x = stack.pop()
            group.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if len(group) > len(best):
            best = group
    out = np.zeros_like(mask)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(steps):
        grown = mask.copy()
        grown[1:, :] |= mask[:-1, :]
        grown[:-1, :] |= mask[1:, :]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        mask = grown
    return mask


def _sharpness(g: np.ndarray, bmin: np.ndarray, bmax: np.ndarray, span: float) -> tuple[float, int]:
    """Edge steepness relative to edge contrast, in the least sharp direction, and the number
    of blocks it was measured on. A sharp edge climbs most of its contrast in one pixel (~0.7),
    a Gaussian blur of sigma s only about 0.4 / s of it."""
    contrast = bmax - bmin
    edge = contrast >= max(40.0, 0.5 * span)
    n = int(edge.sum())
    if n < 8:
        return 0.0, n
    h, w = g.shape
    scores = []
    for d in (np.abs(g[:, 1:] - g[:, :-1]), np.abs(g[1:, :] - g[:-1, :]),
              np.abs(g[1:, 1:] - g[:-1, :-1]), np.abs(g[1:, :-1] - g[:-1, 1:])):
        full = np.zeros((h, w), np.float32)
        full[: d.shape[0], : d.shape[1]] = d
        steepest = _blocks(full).max(axis=2)
        scores.append(float(np.median(steepest[edge] / contrast[edge])))
    return min(scores), n


def _measure(g8: np.ndarray) -> dict[str, float]:
    g = g8.astype(np.float32)
    p01, p05, p95, p995 = _percentiles(g8, (0.1, 0.5, 95, 99.5))
    m: dict[str, float] = {
        "mean": float(g.mean()), "p0.1": p01, "p95": p95,
        "dark_fraction": float((g8 <= 16).mean()), "bright_fraction": float((g8 >= 250).mean()),
    }
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    m["laplacian_var"] = float(lap.var()) if lap.size else 0.0  # for reference: content-dependent
    if min(g8.shape) < 2 * _BLOCK:
        m.update(sharpness=0.0, edge_blocks=0.0, glare_blob=0.0, sat_elsewhere=0.0)
        return m
    blocks = _blocks(g8)
    bmin = blocks.min(axis=2).astype(np.float32)
    bmax = blocks.max(axis=2).astype(np.float32)
    sharp, n = _sharpness(g, bmin, bmax, p995 - p05)
    m["sharpness"], m["edge_blocks"] = sharp, float(n)
    core = _largest_component(bmin >= 245)  # saturated blocks with no ink left in them
    m["glare_blob"] = float(core.mean())
    elsewhere = ~_grow(core, 2)
    saturated = (blocks >= 250).mean(axis=2)
    m["sat_elsewhere"] = float(saturated[elsewhere].mean()) if elsewhere.any() else 0.0
    return m


def assess(image: Image.Image) -> QualityReport:
    """The problems that would make this photo of a document hard to read, most important first."""
    w, h = image.size
    g8 = _working(_to_gray(image))
    m = {"width": float(w), "height": float(h), "work_width": float(g8.shape[1]),
         "work_height": float(g8.shape[0])}
    m.update(_measure(g8))
    problems = []
    if min(w, h) < MIN_SHORT_SIDE:
        problems.append("too_small")
    if m["p95"] < MAX_DARK_P95:
        problems.append("too_dark")
    if m["bright_fraction"] >= BRIGHT_CLIPPED and m["p0.1"] >= BRIGHT_DARKEST:
        problems.append("too_bright")
    if ("too_bright" not in problems and m["glare_blob"] >= GLARE_MIN_BLOB
            and m["sat_elsewhere"] < GLARE_MAX_ELSEWHERE):  # a glare over the whole photo is too_bright
        problems.append("glare")
    # Sharpness cannot be judged on a photo too dark or washed out to show its edges.
    if not {"too_small", "too_dark", "too_bright"} & set(problems) and m["sharpness"] < MIN_SHARPNESS:
        problems.append("blurry")
    return QualityReport(tuple(problems), m)
