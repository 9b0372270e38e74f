"""ManiDP's report of a finished run: the per-image table, the probe set's similarities, the summary figures.

Pure functions over what the plug-in measured (`method.py` writes their results as artefacts):

- `per_image_table`: one row per test image (per_image.parquet): loss, prediction, `macs` of its
  sub-network from the masks (gates excluded), `gate_macs`, and `density_<layer>` = kept channels / c_l;
- `balanced_probe` and `probe_arrays`: a class-balanced test sample (probe.npz) with, per gated layer,
  the saliencies pi, the pooled features F it passes on, T = cos(pi_i, pi_j) and R = cos(F_i, F_j), and
  the mean over layers of ||T - R||_F (`similarity_gap_mean`);
- `gate_dynamism`: the per-image MACs' coefficient of variation and the share of (image, channel) decisions
  that differ from the channel's majority: are the gates dynamic at all?
- `summary_figures`: mean MACs per image and the reduction 1 - MACs / MACs_dense (with and without the
  gates' own MACs), density, batch-1 latencies, and the Spearman correlations rho(MACs, loss) and
  rho(MACs, difficulty): do harder images get larger sub-networks?
- `quintile_gap` and `similarity_rank_correlation`: the papers' own kind of test of the two terms (hard images
  get larger sub-networks; similar images similar sub-networks), see prunelab.methods.manidp.evidence;
- `spread` and `time_per_image`: which test images are checked and timed, and how.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunelab.methods.manidp.gates import (
    GateRecord,
    cosine_matrix,
    feature_similarity,
    normalized_cosine_matrix,
)
from prunelab.methods.manidp.macs import MacsPlan

QUINTILES = 5  # bins of external difficulty for the complexity figure (prunelab.methods.manidp.evidence)

if TYPE_CHECKING:
    from prunelab.methods.base import EvalResult


def per_image_arrays(test: EvalResult) -> dict[str, np.ndarray]:
    """Per test image, from an evaluation with ManiDP's `eval_extras`: loss, pred, label, active channels
    per gated layer (`counts`) and MACs from the masks."""
    return {"loss": test.loss.numpy(), "pred": test.pred.numpy(), "label": test.labels.numpy(),
            "counts": test.extras["counts"].numpy(), "macs": test.extras["macs"].numpy()}


def per_image_table(result: dict[str, np.ndarray], plan: MacsPlan, difficulty: torch.Tensor | None) -> Any:
    """per_image.parquet's rows as a DataFrame, from the test evaluation `result` (loss, pred, label,
    counts [N, L] of active channels per gated layer, macs [N])."""
    import pandas as pd

    n = len(result["loss"])
    columns: dict[str, Any] = {
        "index": np.arange(n, dtype=np.int64), "label": result["label"].astype(np.int64),
        "pred": result["pred"].astype(np.int64), "loss": result["loss"].astype(np.float32),
        "correct": result["pred"] == result["label"],
        "difficulty": (difficulty.numpy().astype(np.float32) if difficulty is not None
                       else pd.array([None] * n, dtype="Float32")),
        "macs": result["macs"].astype(np.int64),
        "gate_macs": np.full(n, plan.gate_macs, dtype=np.int64),
    }
    for i, (name, channels) in enumerate(zip(plan.gate_names, plan.gate_channels, strict=True)):
        columns[f"density_{name}"] = (result["counts"][:, i] / channels).astype(np.float32)
    return pd.DataFrame(columns)


def balanced_probe(labels: torch.Tensor, size: int, num_classes: int) -> torch.Tensor:
    """Up to `size` test positions: the first ones of each class in equal shares, sorted by class."""
    per_class = [size // num_classes + (1 if c < size % num_classes else 0) for c in range(num_classes)]
    chosen = [torch.nonzero(labels == c).squeeze(1)[:n] for c, n in enumerate(per_class)]
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.int64)


def probe_arrays(positions: torch.Tensor, labels: torch.Tensor, layer_names: list[str],
                 records: list[GateRecord], smoothed: bool = False) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(probe.npz's arrays, the gap figures and rho(R, T)) from the gate records of one forward pass over the probe
    images; T by the cosine the run trained with (`smoothed`: departure smoothed_gate_cosine). T and R are not
    stored: the reader derives them from the gates and features (`artefacts.PROBE`)."""
    arrays: dict[str, np.ndarray] = {"indices": positions.numpy().astype(np.int64),
                                     "labels": labels.numpy().astype(np.int64),
                                     "layer_names": np.array(layer_names)}
    gaps, r_min, ts, rs = [], 1.0, [], []
    for i, record in enumerate(records):
        gates, features = record.saliency.float(), record.features.float()
        t = cosine_matrix(gates) if smoothed else normalized_cosine_matrix(gates)
        r = feature_similarity(features)
        arrays[f"gates_{i}"] = gates.cpu().numpy()
        arrays[f"features_{i}"] = features.cpu().numpy()
        ts.append(t.cpu().numpy())
        rs.append(r.cpu().numpy())
        gaps.append(float(torch.linalg.matrix_norm(t - r)))
        r_min = min(r_min, float(r.min()))
    return arrays, {"similarity_gap_mean": float(np.mean(gaps)), "probe_r_min": r_min,
                    "probe_images": len(positions), "similarity_rank_correlation": similarity_rank_correlation(ts, rs)}


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation, None when undefined (constant input or fewer than 3 values)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(spearmanr(a, b).statistic)


def summary_figures(result: dict[str, np.ndarray], plan: MacsPlan, latency: dict[str, float],
                    difficulty: torch.Tensor | None) -> dict[str, Any]:
    """summary.json's per-image figures: MACs (gates beside, never inside), density, latencies, correlations."""
    dense = plan.dense_macs()
    mean_macs = float(result["macs"].mean())
    return {
        "macs_dense": dense, "macs_per_image": mean_macs, "macs_reduction": 1.0 - mean_macs / dense,
        # the gates' own two Linear layers, per image: reported beside, never hidden in, the figure above
        "macs_per_image_with_gates": mean_macs + plan.gate_macs,
        "macs_reduction_with_gates": 1.0 - (mean_macs + plan.gate_macs) / dense,
        "macs_per_image_min": int(result["macs"].min()), "macs_per_image_max": int(result["macs"].max()),
        "gate_macs_per_image": plan.gate_macs,
        "density_mean": float(np.mean(result["counts"] / np.array(plan.gate_channels))),
        "latency_ms_b1_dense": latency["dense"], "latency_ms_b1_masked": latency["masked"],
        "latency_ms_b1_sparse": latency.get("sparse"),
        "spearman_macs_loss": spearman(result["macs"], result["loss"]),
        "spearman_macs_difficulty": (None if difficulty is None
                                     else spearman(result["macs"], difficulty.numpy())),
    }


def macs_cv(macs: np.ndarray) -> float:
    """std / mean of per-image MACs (0 when every image costs nothing)."""
    macs = np.asarray(macs, dtype=np.float64)
    return float(macs.std() / macs.mean()) if macs.mean() > 0 else 0.0


def gate_dynamism(masks: np.ndarray, macs: np.ndarray) -> dict[str, float]:
    """How much the sub-network varies between images: `macs_cv` = std / mean of the per-image MACs, and
    `decision_disagreement` = the share of (image, channel) decisions `masks` [N, sum_l c_l] that differ from
    that channel's majority decision over the N images (0: one static sub-network for every image)."""
    masks = masks.astype(bool)
    majority = masks.mean(axis=0) >= 0.5
    macs = macs.astype(np.float64)
    return {"macs_cv": macs_cv(macs),
            "decision_disagreement": float((masks != majority).mean()) if masks.size else 0.0}


def relative_macs_by_quintile(macs: np.ndarray, difficulty: np.ndarray, bins: int = QUINTILES) -> np.ndarray:
    """[bins] mean of macs_i / mean(macs) over the images in each quantile bin of `difficulty`, easiest first
    (ties broken by position, so every bin holds n / bins images up to one)."""
    macs = np.asarray(macs, dtype=np.float64)
    order = np.argsort(np.asarray(difficulty, dtype=np.float64), kind="stable")
    relative = macs / macs.mean()
    return np.array([relative[part].mean() for part in np.array_split(order, bins)])


def quintile_gap(macs: np.ndarray, difficulty: np.ndarray) -> float:
    """Hardest-minus-easiest quintile of relative MACs (`relative_macs_by_quintile`)."""
    by_bin = relative_macs_by_quintile(macs, difficulty)
    return float(by_bin[-1] - by_bin[0])


def _upper(matrix: np.ndarray) -> np.ndarray:
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return np.asarray(matrix)[rows, cols]


def rank_correlation(t: np.ndarray, r: np.ndarray) -> float | None:
    """Spearman's rho between the upper triangles (pairs i < j) of T and R; None when either is constant."""
    from scipy.stats import spearmanr

    a, b = _upper(t), _upper(r)
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return float(spearmanr(a, b).statistic)


def similarity_rank_correlation(ts: list[np.ndarray], rs: list[np.ndarray]) -> float | None:
    """Mean over layers of `rank_correlation` (layers whose T or R is constant left out)."""
    values = [v for v in (rank_correlation(t, r) for t, r in zip(ts, rs, strict=True)) if v is not None]
    return float(np.mean(values)) if values else None


def spread(count: int, macs: np.ndarray) -> torch.Tensor:
    """`count` test positions spread over the MACs ranking (cheapest and most expensive included)."""
    order = np.argsort(macs, kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(np.int64))
    return torch.as_tensor(np.sort(order[picks]))


def time_per_image(forwards: dict[str, Any], images: torch.Tensor, repeats: int = 3,
                   warmup: int = 3) -> dict[str, float]:
    """Median wall-clock milliseconds of each `forward(image)` over single images (batch 1).

    The forwards are timed in turn on the same image, so a change of machine load hits them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in forwards}
    with torch.inference_mode():
        for forward in forwards.values():
            for i in range(min(warmup, images.shape[0])):
                forward(images[i:i + 1])
        for _ in range(repeats):
            for i in range(images.shape[0]):
                image = images[i:i + 1]
                for name, forward in forwards.items():
                    start = time.perf_counter()
                    forward(image)
                    times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def reach_text(summary: dict[str, Any], torchvision: bool) -> str | None:
    """One line on what the gates cannot reach (summary.json's `gates_*` figures; None for a run without them)."""
    gated, every = summary.get("gates_gated_channels"), summary.get("gates_channels_all")
    reach, dense = summary.get("gates_macs_in_reach"), summary.get("gates_macs_dense")
    if not all(isinstance(v, int | float) and v > 0 for v in (gated, every, reach, dense)):
        return None
    text = (f"The gates reach {int(gated):,} of the network's {int(every):,} BN channels; the layers whose inputs or "
            f"outputs they mask hold {reach / dense:.0%} of the dense MACs. The other {int(every - gated):,} channels "
            "(stem, shortcuts, and groups tied by a residual add, a multiply, a concatenation or a grouped "
            "convolution) stay at full width for every image, and the layers no gate touches hold "
            f"{1 - reach / dense:.0%} of the MACs: out of the method's reach.")
    if torchvision:
        text += (" On a torchvision model each gate scales its group's BN output before the activation (the same "
                 "as after it for ReLU; exact to fold into the BN for ReLU6 or Hardswish), and the features R "
                 "compares are those BN outputs (the reference: conv_a after BN+ReLU).")
    return text
