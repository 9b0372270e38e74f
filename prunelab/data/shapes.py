"""The embedded ``shapes`` dataset: procedural 32x32 RGB shapes with a known per-image difficulty.

Nothing is downloaded. Images are rasterised on coordinate grids with torch, vectorised over a chunk
of images (2x supersampling then average pooling gives anti-aliased edges), so 12,000 images take a
few seconds on 2 CPU cores.

Every image has a ``difficulty`` ``d`` in [0, 1] (stratified uniform). It controls, monotonically:

* object size (radius ~13 px when easy, ~5 px when hard) and position jitter / rotation,
* contrast between object and background (0.85 when easy, 0.15 when hard),
* clutter: up to 7 distractor strokes drawn in colours close to the object colour,
* a background gradient and Gaussian pixel noise,
* occlusion: from ``d`` > 0.45 a background-coloured patch may hide part of the object.

``d = 0`` gives a big centred clean high-contrast shape. Generation is done in fixed chunks of
``CHUNK`` images, each seeded from ``(seed, split, chunk)``, so a smaller dataset is an exact prefix
of a larger one with the same seed.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from prunelab.data.shapes_names import CLASS_NAMES as SHAPE_NAMES

SHAPES_VERSION = 2
CHUNK = 250
IMAGE_SIZE = 32
SUPERSAMPLE = 2
MAX_STROKES = 7

CLASS_NAMES = list(SHAPE_NAMES)

_SPLIT_CODES = {"train": 1, "test": 2}


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_SAVED = 0


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch CPU ops single-threaded inside the block, restoring the setting afterwards.

    Dataset preparation is many small element-wise ops; with two OpenMP threads on a busy 2-core
    machine they can run 20-30x slower than with one. The setting is process-wide, so nested and
    concurrent users are counted and the first caller's value is restored by the last one out.
    """
    global _THREADS_USERS, _THREADS_SAVED
    with _THREADS_LOCK:
        if _THREADS_USERS == 0:
            _THREADS_SAVED = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_SAVED)


def _chunk_seed(seed: int, split: str, chunk: int) -> int:
    """A stable 63-bit seed per (seed, split, chunk); independent streams for train and test."""
    code = _SPLIT_CODES[split]
    value = (seed * 1_000_003 + code * 7_919 + chunk * 104_729 + SHAPES_VERSION * 31) & 0x7FFF_FFFF_FFFF_FFFF
    return value


def _inside(cls: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean inside-test of shape ``cls`` in local coordinates (unit ~ object radius, v points down)."""
    au, av = u.abs(), v.abs()
    r2 = u * u + v * v
    if cls == 0:  # circle
        return r2 <= 1.0
    if cls == 1:  # square
        return torch.maximum(au, av) <= 0.82
    if cls == 2:  # triangle pointing up, circumradius 1.15
        s = 1.0 / 1.15
        uu, vv = u * s, v * s - 0.12
        return (vv <= 0.5) & (0.866 * uu - 0.5 * vv <= 0.5) & (-0.866 * uu - 0.5 * vv <= 0.5)
    if cls == 3:  # plus-shaped cross
        return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))
    if cls == 4:  # ring
        return (r2 <= 1.0) & (r2 >= 0.5**2)
    if cls == 5:  # five-pointed star, outer radius 1.1, inner 0.48
        r = r2.sqrt() / 1.1
        phi = torch.atan2(u, -v)  # 0 at the top point
        sector = 2 * math.pi / 5
        a = torch.remainder(phi, sector)
        a = torch.minimum(a, sector - a)
        x, y = r * torch.cos(a), r * torch.sin(a)
        ri = 0.48 / 1.1 * 1.0
        bx, by = ri * math.cos(sector / 2), ri * math.sin(sector / 2)
        # inside when (x, y) is on the origin side of the edge (1, 0) -> (bx, by)
        cross = (bx - 1.0) * y - by * (x - 1.0)
        return cross >= 0.0
    if cls == 6:  # diamond
        return au + av <= 1.1
    if cls == 7:  # horizontal bar
        return (au <= 1.05) & (av <= 0.36)
    if cls == 8:  # crescent opening to the right
        return (r2 <= 1.0) & ((u - 0.45) ** 2 + v * v >= 0.78**2)
    if cls == 9:  # heart
        lobes = ((u + 0.45) ** 2 + (v + 0.3) ** 2 <= 0.52**2) | ((u - 0.45) ** 2 + (v + 0.3) ** 2 <= 0.52**2)
        tip = (v >= -0.3) & (v <= 0.95) & (au <= 0.96 * (0.95 - v) / 1.25)
        return lobes | tip
    raise ValueError(f"unknown shape class {cls}")


def _render_chunk(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Render ``n`` images (balanced labels, stratified difficulty) with one random generator."""
    g = generator
    size = IMAGE_SIZE

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    labels = torch.arange(n) % len(CLASS_NAMES)
    labels = labels[torch.randperm(n, generator=g)]
    difficulty = (torch.randperm(n, generator=g).float() + rand(n)) / n

    # rendering parameters follow a concave ramp of the difficulty so mid-range images are
    # already somewhat harder (a smoother accuracy-vs-difficulty curve than a linear ramp)
    d = 1.0 - (1.0 - difficulty) ** 1.5
    # geometry ------------------------------------------------------------------------------
    radius = (13.0 - 7.5 * d) * (1.0 + 0.15 * d * (2 * rand(n) - 1))
    max_shift = (15.0 - radius).clamp(min=0.0) * d
    cx = 16.0 + max_shift * (2 * rand(n) - 1)
    cy = 16.0 + max_shift * (2 * rand(n) - 1)
    angle = math.radians(20.0) * d * (2 * rand(n) - 1)
    aspect = 1.0 + 0.15 * d * (2 * rand(n) - 1)

    # supersampled coordinate grid in pixel units (pixel centres at k + 0.5)
    hi = size * SUPERSAMPLE
    coords = (torch.arange(hi, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    gy = coords.view(1, hi, 1)
    gx = coords.view(1, 1, hi)
    dx = (gx - cx.view(-1, 1, 1)) / radius.view(-1, 1, 1)
    dy = (gy - cy.view(-1, 1, 1)) / radius.view(-1, 1, 1)
    cos, sin = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
    u = (cos * dx + sin * dy) * aspect.view(-1, 1, 1)
    v = (-sin * dx + cos * dy) / aspect.view(-1, 1, 1)

    mask_hi = torch.zeros(n, hi, hi)
    for cls in range(len(CLASS_NAMES)):
        sel = (labels == cls).nonzero(as_tuple=True)[0]
        if sel.numel():
            mask_hi[sel] = _inside(cls, u[sel], v[sel]).float()
    alpha = F.avg_pool2d(mask_hi.unsqueeze(1), SUPERSAMPLE)  # [n,1,32,32]

    # colours -------------------------------------------------------------------------------
    contrast = 0.85 - 0.67 * d
    low = rand(n) * (1.0 - contrast)
    high = low + contrast
    swap = rand(n) < 0.5
    fg_lum = torch.where(swap, low, high)
    bg_lum = torch.where(swap, high, low)
    fg = (fg_lum.view(-1, 1) + 0.12 * (2 * rand(n, 3) - 1)).clamp(0, 1)
    bg = (bg_lum.view(-1, 1) + 0.12 * (2 * rand(n, 3) - 1)).clamp(0, 1)

    pix = torch.arange(size, dtype=torch.float32) + 0.5
    py, px = pix.view(1, 1, size, 1), pix.view(1, 1, 1, size)
    # background with a linear gradient that grows with difficulty
    gdir = rand(n) * 2 * math.pi
    gamp = 0.25 * d * rand(n)
    gcos, gsin = torch.cos(gdir).view(-1, 1, 1, 1), torch.sin(gdir).view(-1, 1, 1, 1)
    ramp = (gcos * (px - 16) + gsin * (py - 16)) / 16
    img = bg.view(n, 3, 1, 1) + gamp.view(-1, 1, 1, 1) * ramp  # [n,3,32,32]

    # the object
    img = img * (1 - alpha) + fg.view(n, 3, 1, 1) * alpha

    # distractor strokes: count grows with difficulty; colour close to the object colour
    n_strokes = (d * (MAX_STROKES + 0.99) * rand(n).sqrt()).floor()
    for k in range(MAX_STROKES):
        active = (n_strokes > k).float().view(-1, 1, 1, 1)
        ax, ay = rand(n) * size, rand(n) * size
        length = 4.0 + 10.0 * rand(n)
        theta = rand(n) * 2 * math.pi
        bx, by = ax + length * torch.cos(theta), ay + length * torch.sin(theta)
        ex, ey = (bx - ax).view(-1, 1, 1, 1), (by - ay).view(-1, 1, 1, 1)
        wx, wy = px - ax.view(-1, 1, 1, 1), py - ay.view(-1, 1, 1, 1)
        t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0, 1)
        dist = ((wx - t * ex) ** 2 + (wy - t * ey) ** 2).sqrt()
        width = 0.6 + 0.8 * rand(n).view(-1, 1, 1, 1)
        a_k = (width + 0.5 - dist).clamp(0, 1) * active
        col = (fg + 0.2 * (2 * rand(n, 3) - 1)).clamp(0, 1).view(n, 3, 1, 1)
        img = img * (1 - a_k) + col * a_k

    # occlusion: a background-coloured rectangle over part of the object
    occ_p = ((d - 0.45) / 0.55).clamp(0, 1) * 0.9
    occluded = rand(n) < occ_p
    ow = radius * (0.6 + 0.6 * rand(n))
    oh = radius * (0.6 + 0.6 * rand(n))
    ang = rand(n) * 2 * math.pi
    ocx = cx + radius * 0.8 * torch.cos(ang)
    ocy = cy + radius * 0.8 * torch.sin(ang)
    occ = (
        ((px - ocx.view(-1, 1, 1, 1)).abs() <= ow.view(-1, 1, 1, 1) / 2)
        & ((py - ocy.view(-1, 1, 1, 1)).abs() <= oh.view(-1, 1, 1, 1) / 2)
        & occluded.view(-1, 1, 1, 1)
    ).float()
    occ_col = (bg + 0.05 * (2 * rand(n, 3) - 1)).clamp(0, 1).view(n, 3, 1, 1)
    img = img * (1 - occ) + occ_col * occ
    visible = alpha * (1 - occ)

    # pixel noise
    sigma = 0.015 + 0.135 * d
    img = img + sigma.view(-1, 1, 1, 1) * torch.randn(n, 3, size, size, generator=g)
    images = (img.clamp(0, 1) * 255.0).round().to(torch.uint8)

    return {
        "images": images,
        "labels": labels.to(torch.int64),
        "difficulty": difficulty.to(torch.float32),
        "area": visible.sum(dim=(1, 2, 3)),
        "contrast": (fg - bg).abs().mean(dim=1),
        "noise": sigma,
        "strokes": n_strokes,
        "occluded": occluded,
    }


def generate_shapes(
    n: int, seed: int = 0, split: str = "train", *, return_info: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """Generate ``n`` shapes images deterministically from ``seed``.

    Returns ``(images uint8 [n,3,32,32], labels int64 [n], difficulty float32 [n])``; with
    ``return_info`` also a dict of per-image render facts (``area`` = visible object pixels,
    ``contrast``, ``noise``, ``strokes``, ``occluded``) used by tests and diagnostics.
    ``split`` ("train" or "test") selects an independent random stream.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n < 0:
        raise ValueError("n must be >= 0")
    parts: list[dict[str, torch.Tensor]] = []
    n_chunks = (n + CHUNK - 1) // CHUNK
    with single_thread():
        for chunk in range(n_chunks):
            g = torch.Generator().manual_seed(_chunk_seed(seed, split, chunk))
            parts.append(_render_chunk(CHUNK, g))
    if parts:
        out = {key: torch.cat([p[key] for p in parts])[:n] for key in parts[0]}
    else:
        out = _render_chunk(CHUNK, torch.Generator().manual_seed(0))
        out = {key: value[:0] for key, value in out.items()}
    images, labels, difficulty = out.pop("images"), out.pop("labels"), out.pop("difficulty")
    if return_info:
        return images, labels, difficulty, out
    return images, labels, difficulty
