"""Pure computations behind the analysis pages (Slimming, Per-image MACs, Similarity, Ablations).

Everything here takes arrays and frames read by `prunelab.analysis.results` and returns arrays and frames;
nothing imports Streamlit, so the pages stay thin and every number they show is unit-tested.

- Spearman's rank correlation `rho = pearson(rank(x), rank(y))` (average ranks for ties).
- The similarity gap `||T^l - R^l||_F` between gate-similarity and feature-similarity matrices.
- UMAP embeddings (umap-learn) of gate vectors or pooled features, with cosine distance as in T and R, and
  the table of their points (`point_table`: each test image's class, prediction, loss and MACs).
- |gamma| histograms on shared bin edges, so runs with different lambdas compare bin for bin.
- Ablation, sweep and CSV-export tables built from `prunelab.analysis.results.runs_table`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.config import METHOD_FACTS, METHOD_NAMES, METHOD_PARAMS, SWEEP_PARAMS
from prunelab.methods.manidp.config import MANIDP_VARIANTS as MANIDP_VARIANTS
from prunelab.methods.slimming.config import prune_ratio_phrase as prune_ratio_phrase
from prunelab.runs.run_format import NEAR_ZERO_GAMMA, NEAR_ZERO_GAMMA_KEY

# ------------------------------------------------------------------------------------------------
# rank correlation


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho = Pearson correlation of the average ranks of x and y.

    Pairs where either value is NaN are dropped; NaN is returned when fewer than 3 pairs remain or
    either variable is constant (the correlation is undefined).
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in shape: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 3:
        return float("nan")
    from scipy.stats import rankdata  # on first use: scipy.stats takes seconds to import

    ra, rb = rankdata(a) - (a.size + 1) / 2, rankdata(b) - (b.size + 1) / 2  # centred ranks
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def complexity_correlations(per_image: pd.DataFrame) -> dict[str, float]:
    """Spearman rho of an image's MACs against its CE loss and (where known) its difficulty."""
    result = {"loss": spearman(per_image["macs"], per_image["loss"])}
    if "difficulty" in per_image and per_image["difficulty"].notna().sum() >= 3:
        result["difficulty"] = spearman(per_image["macs"], per_image["difficulty"].astype(float))
    return result


# ------------------------------------------------------------------------------------------------
# per-image MACs


def density_columns(per_image: pd.DataFrame) -> list[str]:
    """The `density_<layer>` columns of per_image.parquet, in file order."""
    return [c for c in per_image.columns if c.startswith("density_")]


def layer_densities(row: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """One image's fraction of channels kept per gated layer: columns layer, density."""
    names = [c for c in row.keys() if str(c).startswith("density_")]  # noqa: SIM118 - Series or dict
    return pd.DataFrame({"layer": [str(c)[len("density_"):] for c in names],
                         "density": [float(row[c]) for c in names]})


def rank_by_macs(per_image: pd.DataFrame, count: int,
                 label: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cheapest `count`, most expensive `count`) images by MACs, optionally of one class only.

    Ties are broken by test-set index so the gallery is stable; the expensive frame is most expensive first.
    """
    rows = per_image if label is None else per_image[per_image["label"] == label]
    ordered = rows.sort_values(["macs", "index"], kind="stable")
    cheapest = ordered.head(count)
    expensive = ordered.iloc[::-1].head(count)
    return cheapest, expensive


def macs_of_indices(per_image: pd.DataFrame | None, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """MACs of the test images at `indices` (NaN where per_image has no row): colours the UMAP by MACs."""
    wanted = np.asarray(indices, dtype=np.int64)
    if per_image is None or per_image.empty:
        return np.full(wanted.shape, np.nan)
    lookup = per_image.drop_duplicates("index").set_index("index")["macs"].astype(float)
    return lookup.reindex(wanted).to_numpy()


# ------------------------------------------------------------------------------------------------
# similarity matrices


def class_order(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Permutation that sorts images by class (stable: the probe's own order within a class)."""
    return np.argsort(np.asarray(labels), kind="stable")


def order_by_class(matrix: np.ndarray, labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(matrix with rows and columns permuted so images of a class are contiguous, sorted labels)."""
    order = class_order(labels)
    return np.asarray(matrix)[np.ix_(order, order)], np.asarray(labels)[order]


def frobenius_gap(t: np.ndarray, r: np.ndarray) -> float:
    """||T - R||_F = sqrt(sum_ij (T_ij - R_ij)^2): how far gate similarity is from feature similarity."""
    diff = np.asarray(t, dtype=np.float64) - np.asarray(r, dtype=np.float64)
    return float(np.sqrt((diff * diff).sum()))


def similarity_gaps(layer_names: Sequence[str], ts: Sequence[np.ndarray],
                    rs: Sequence[np.ndarray]) -> pd.DataFrame:
    """Per layer: `gap` = ||T - R||_F and `gap_per_pair` = ||T - R||_F / P.

    `gap_per_pair` is the root-mean-square entry of T - R, i.e. sqrt of ManiDP's similarity loss
    `||T - R||_F^2 / P^2` for that layer; it compares runs whose probe sets differ in size P.
    """
    rows = []
    for position, (name, t, r) in enumerate(zip(layer_names, ts, rs, strict=True)):
        gap = frobenius_gap(t, r)
        rows.append({"layer": str(name), "position": position, "gap": gap,
                     "gap_per_pair": gap / max(1, len(t))})
    return pd.DataFrame(rows, columns=["layer", "position", "gap", "gap_per_pair"])


def gap_comparison(gaps_by_run: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Long frame (run, layer, position, gap, gap_per_pair) over several runs for a grouped bar chart."""
    frames = [frame.assign(run=run) for run, frame in gaps_by_run.items() if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=["run", "layer", "position", "gap", "gap_per_pair"])
    return pd.concat(frames, ignore_index=True)[["run", "layer", "position", "gap", "gap_per_pair"]]


# ------------------------------------------------------------------------------------------------
# UMAP

UMAP_MIN_POINTS = 5
UMAP_MAX_NEIGHBORS = 15


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


def concat_layers(per_layer: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate per-layer vectors [P, C_l] after scaling each layer's rows to unit norm.

    The cosine similarity of two concatenated rows is then the mean of their per-layer cosines, so a
    wide layer does not outweigh a narrow one.
    """
    return np.concatenate([unit_rows(v) for v in per_layer], axis=1)


def umap_neighbors(points: int) -> int:
    """UMAP's n_neighbors for a probe of `points` images: 15, or fewer on small sets (at least 2)."""
    return max(2, min(UMAP_MAX_NEIGHBORS, points - 1))


def umap_embedding(vectors: np.ndarray, random_state: int = 0, metric: str = "cosine") -> np.ndarray | None:
    """2-D UMAP embedding [P, 2] of `vectors` [P, D] (None when P < UMAP_MIN_POINTS).

    Cosine distance matches the similarities T and R the page shows. A fixed `random_state` makes the
    layout deterministic (UMAP then runs single-threaded, which is quick for a probe of ~64 images).
    Zero rows (every gate closed) get a tiny offset so cosine distance stays defined.
    """
    data = np.asarray(vectors, dtype=np.float32)
    if data.ndim != 2 or len(data) < UMAP_MIN_POINTS:
        return None
    if metric == "cosine":
        zero = ~np.any(data != 0, axis=1)
        data = data.copy()
        data[zero] = 1e-6
    reducer = _umap_class()(n_components=2, n_neighbors=umap_neighbors(len(data)), metric=metric,
                            random_state=random_state, n_jobs=1, init="spectral", min_dist=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spectral-init and disconnected-graph notices on tiny sets
        embedding = reducer.fit_transform(data)
    return np.asarray(embedding, dtype=np.float32)


def warm_up_umap() -> float:
    """Import umap-learn and compile (or load from numba's disk cache) its kernels; returns seconds taken.

    A fresh installation pays ~30 s of numba compilation on 2 CPU cores on the first UMAP; an app or CI
    job can call this once (e.g. in a background thread at start-up) so no page waits for it.
    """
    import time

    started = time.perf_counter()
    points = np.random.default_rng(0).random((UMAP_MIN_POINTS + 3, 4))
    umap_embedding(points)
    return time.perf_counter() - started


def warm_up_umap_in_background() -> threading.Thread:
    """Start `warm_up_umap` in a daemon thread (the app does this once per server process)."""
    thread = threading.Thread(target=_warm_up_quietly, name="prunelab-umap-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up_quietly() -> None:
    try:
        warm_up_umap()
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first UMAP compiles on demand
        return


def _umap_class() -> Any:
    """Import umap lazily (it takes seconds) and let numba keep its compiled kernels on disk.

    umap-learn JIT-compiles several `parallel=True` kernels without `cache=True`; compiling them costs
    ~20 s on 2 cores in every new process. Enabling numba's on-disk cache on those dispatchers makes
    that a one-time cost per installation (numba writes next to umap's sources, or to NUMBA_CACHE_DIR).
    """
    import umap

    _enable_numba_cache()
    return umap.UMAP


_NUMBA_CACHE_ENABLED = False


def _enable_numba_cache() -> None:
    global _NUMBA_CACHE_ENABLED
    if _NUMBA_CACHE_ENABLED:
        return
    _NUMBA_CACHE_ENABLED = True
    try:
        import umap.layouts
        import umap.umap_
        import umap.utils
        from numba.core.registry import CPUDispatcher
    except ImportError:
        return
    for module in (umap.umap_, umap.layouts, umap.utils):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher):
                try:
                    value.enable_caching()
                except Exception:  # noqa: BLE001 - caching is only a speed-up; compile as usual
                    continue


def class_name(names: Sequence[str], label: object) -> str:
    """The name of class `label` in `names`, or the label itself when `names` does not have it."""
    return names[int(label)] if 0 <= int(label) < len(names) else str(label)


def point_table(indices: np.ndarray, per_image: pd.DataFrame | None, names: Sequence[str],
                labels: np.ndarray) -> pd.DataFrame:
    """One row per point of a sub-network map (test image `indices`, with their `labels`): index, label, pred,
    loss and macs from `per_image` (NaN where it has no row for the image, or there is none), `class`,
    `prediction` ("?" when unknown) and `MACs` for the hover text."""
    frame = pd.DataFrame({"index": np.asarray(indices, dtype=np.int64)})
    if per_image is not None and not per_image.empty:
        known = per_image.set_index("index")[["label", "pred", "loss", "macs"]]
        frame = frame.join(known, on="index")
    for column in ("label", "pred", "loss", "macs"):
        if column not in frame:
            frame[column] = np.nan
    frame["label"] = frame["label"].fillna(pd.Series(np.asarray(labels), index=frame.index))
    frame["class"] = [class_name(names, label) for label in frame["label"].astype(int)]
    frame["prediction"] = [class_name(names, p) if pd.notna(p) else "?" for p in frame["pred"]]
    frame["MACs"] = frame["macs"]
    return frame


# ------------------------------------------------------------------------------------------------
# gamma histograms (Network Slimming)


def gamma_bin_edges(arrays: Sequence[np.ndarray], bins: int = 40) -> np.ndarray:
    """`bins + 1` equal-width edges from 0 to the largest |gamma| in any of `arrays` (shared by charts)."""
    top = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=1.0)
    return np.linspace(0.0, top if top > 0 else 1.0, bins + 1)


def epoch_row(epochs: Sequence[int] | np.ndarray, epoch: int) -> int:
    """Row of a gamma history for `epoch`: the last recorded epoch <= `epoch` (0 = at initialisation)."""
    recorded = np.asarray(epochs)
    before = np.nonzero(recorded <= epoch)[0]
    return int(before[-1]) if before.size else 0


def layer_gammas(gammas: Sequence[np.ndarray], layer_names: Sequence[str], row: int,
                 layer: str | None = None) -> np.ndarray:
    """|gamma| of one layer (or of every prunable layer when `layer` is None) at history row `row`."""
    if layer is None:
        return np.concatenate([np.abs(np.asarray(g)[row]) for g in gammas])
    names = list(layer_names)
    if layer not in names:
        return np.zeros(0, dtype=np.float32)
    return np.abs(np.asarray(gammas[names.index(layer)])[row])




def threshold_at_epoch(thresholds: np.ndarray | None, row: int) -> float | None:
    """The global threshold recorded for history row `row` (None for runs that predate the record)."""
    if thresholds is None or row >= len(thresholds):
        return None
    return float(thresholds[row])


def near_zero_share(values: np.ndarray) -> float:
    """The share of `values` (|gamma| of prunable BNs) below NEAR_ZERO_GAMMA; NaN when there are none."""
    values = np.asarray(values)
    return float(np.mean(values < NEAR_ZERO_GAMMA)) if values.size else float("nan")


def near_zero_shares(histories: Mapping[str, Any], epoch: int) -> dict[str, float]:
    """Per run (label 'λ=...'), the share of all prunable |gamma| below NEAR_ZERO_GAMMA at `epoch`."""
    shares = {}
    for path, hist in histories.items():
        values = layer_gammas(hist.gammas, hist.layer_names, epoch_row(hist.epochs, epoch))
        label = f"λ={hist.sparsity_lambda:g} ({Path(str(path)).name})"
        shares[label] = near_zero_share(values)
    return shares


def gamma_histogram(values: np.ndarray, edges: np.ndarray) -> pd.DataFrame:
    """Counts of |gamma| per bin (values above the last edge fall into the last bin)."""
    clipped = np.clip(np.abs(np.asarray(values, dtype=np.float64)), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "center": (edges[:-1] + edges[1:]) / 2,
                         "count": counts})


def prune_denominator_text(counts: Mapping[str, Any]) -> str:
    """What a slimming prune ratio is a fraction of, from `channels_removed`, `channels_prunable` and
    `channels_all` (prunelab.methods.slimming.run_channel_counts): '40% of 336 prunable channels;
    27% of all 496 channels' (a channel coupled by residual adds counts once). One sentence when the
    scope is the whole network; without `channels_all` the second half is left out."""
    removed, prunable, every = (counts.get(k) for k in ("channels_removed", "channels_prunable", "channels_all"))
    if not prunable or removed is None:
        return "the prunable channels"
    text = f"{removed / prunable:.0%} of {int(prunable):,} prunable channels"
    if not every:
        return text
    if int(every) == int(prunable):
        return f"{text} (every channel of the network)"
    return f"{text}; {removed / every:.0%} of all {int(every):,} channels"


def channels_frame(layers: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """pruning.json / what_if layers as columns layer, before, after, removed, guard_fired."""
    frame = pd.DataFrame({
        "layer": [str(layer["name"]) for layer in layers],
        "before": [int(layer["channels_before"]) for layer in layers],
        "after": [int(layer["channels_after"]) for layer in layers],
        "guard_fired": [bool(layer.get("guard_fired", False)) for layer in layers],
    })
    frame.insert(3, "removed", frame["before"] - frame["after"])
    return frame


def pipeline_stages(summary: Mapping[str, Any], finetune_epochs: int | None) -> list[tuple[str, float]]:
    """A slimming run's accuracy through its pipeline as (label, accuracy), the stages its summary has:
    before pruning, right after, and at the end, named 'After fine-tuning' only when it fine-tuned (a run
    with 0 fine-tune epochs ends where pruning left it)."""
    final = "After fine-tuning" if finetune_epochs is None or finetune_epochs > 0 else "Final (0 fine-tune epochs)"
    stages = [("Before pruning", "acc_before_prune"), ("Right after pruning", "acc_after_prune"),
              (final, "acc_after_finetune")]
    return [(label, float(summary[key])) for label, key in stages if summary.get(key) is not None]


def before_after(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Slimming summary as rows (quantity, before, after, change): params, MACs and latencies."""
    pairs = [("params", "params_before", "params_after"), ("MACs per image", "macs_before", "macs_after"),
             ("latency batch 1 (ms)", "latency_ms_b1_before", "latency_ms_b1_after"),
             ("latency batch 64 (ms)", "latency_ms_b64_before", "latency_ms_b64_after")]
    rows = []
    for name, before_key, after_key in pairs:
        before, after = summary.get(before_key), summary.get(after_key)
        if before is None or after is None:
            continue
        change = (float(after) - float(before)) / float(before) if float(before) else float("nan")
        rows.append({"quantity": name, "before": float(before), "after": float(after), "change": change})
    return pd.DataFrame(rows, columns=["quantity", "before", "after", "change"])


# ------------------------------------------------------------------------------------------------
# ablations and sweeps

ABLATION_COLUMNS = ["run_id", "name", "suite", "method", "variant", "dataset", "model", "width", "seed", "test_acc",
                    "macs_per_image", "macs_reference", "macs_reduction", "params", "epochs", "epochs_total",
                    "parent_run", "path"]
# carried along for the variant groups and the papers' claims (prunelab.analysis.lessons): every method's settings
# that its run form shows (prunelab.config.ParamFacts.form; a field two methods share, as `form`, once), then
# summary figures
ABLATION_EXTRAS = [*dict.fromkeys(p.name for params in METHOD_PARAMS.values() for p in params.values() if p.form),
                   "acc_before_prune", "acc_after_prune", NEAR_ZERO_GAMMA_KEY, "similarity_gap_mean",
                   "spearman_macs_loss", "spearman_macs_difficulty", "macs_per_image_with_gates",
                   "macs_reduction_with_gates", "density_mean", "departures", "macs_cv", "decision_disagreement",
                   "complexity_quintile_gap", "similarity_rank_correlation"]


def form_label(row: Mapping[str, Any] | pd.Series) -> str | None:
    """A run's form as a label: 'reference' (no departure), 'prunelab' (every departure of its method), or
    'reference + small_gate_init' (the reference with the departures named); None for a method without forms."""
    form = row.get("form")
    if not isinstance(form, str):
        return None
    departures = row.get("departures")
    names = [str(name) for name in departures] if isinstance(departures, list | tuple | np.ndarray) else []
    facts = METHOD_FACTS.get(str(row.get("method")))
    every = [d.name for d in facts.departures] if facts else []
    if not names:
        return "reference"
    if form == "prunelab" and sorted(names) == sorted(every):
        return "prunelab"
    return f"{form} + {', '.join(names)}" if form == "reference" else f"{form}: {', '.join(names)}"


def variant_label(row: Mapping[str, Any] | pd.Series) -> str:
    """Human name of a run's setting, from its method's facts (`variant`): 'slimming (reference) λ=1e-4, prune
    50% of all channels', 'ManiDP (reference): both'; else the method's name. A method with forms names the
    run's form (`form_label`)."""
    method = row.get("method")
    form = form_label(row)
    suffix = f" ({form})" if form else ""
    facts = METHOD_FACTS.get(str(method))
    if facts is not None and facts.variant is not None:
        return facts.variant(row, suffix)
    return str(method)


def parent_variants(runs: pd.DataFrame) -> dict[Any, str]:
    """`variant_label` of every row of `runs` (by index), a row whose parent run (`parent_run`) is among them
    labelled with its parent's variant as `parent_variant`: a control's variant names the variant it controls
    ('random channels: counts of slimming λ=0.008, prune 50% of interior channels'), so the runs of its seeds,
    whose parents differ, form one variant."""
    by_id = {str(row["run_id"]): index for index, row in runs.iterrows()} if "run_id" in runs else {}
    labels: dict[Any, str] = {}

    def label(index: Any, depth: int = 0) -> str:
        if index not in labels:
            row = runs.loc[index]
            parent = by_id.get(str(row.get("parent_run"))) if pd.notna(row.get("parent_run")) else None
            if parent is not None and parent != index and depth < 8:  # 8: far deeper than any lineage
                row = {**row.to_dict(), "parent_variant": label(parent, depth + 1)}
            labels[index] = variant_label(row)
        return labels[index]

    for index in runs.index:
        label(index)
    return labels


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _reference_macs(row: Mapping[str, Any] | pd.Series) -> float:
    """The dense network's MACs the run is compared to (slimming: before pruning; ManiDP: all gates open)."""
    for key in ("macs_dense", "macs_before"):
        value = _num(row.get(key))
        if not np.isnan(value) and value > 0:
            return value
    return _num(row.get("macs_per_image"))


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with accuracy, MACs per image, params and MACs reduction = 1 - MACs / MACs_reference.

    MACs_reference is the same network without pruning (slimming: `macs_before`; ManiDP: `macs_dense`;
    baseline: itself, so 0 %). Ordered baseline, slimming, ManiDP, then by setting.
    """
    done = runs[(runs["state"] == "done") & runs["test_acc"].notna()] if not runs.empty else runs
    variants = parent_variants(done)
    rows = []
    for _, row in done.iterrows():
        reference, macs = _reference_macs(row), _num(row.get("macs_per_image"))
        reduction = 1.0 - macs / reference if reference and not np.isnan(reference) else float("nan")
        rows.append({
            **{key: row.get(key) for key in ABLATION_COLUMNS + ABLATION_EXTRAS if key in row},
            "variant": variants[row.name], "macs_reference": reference,
            "macs_reduction": reduction,
        })
    extras = [key for key in ABLATION_EXTRAS if key in done]
    table = pd.DataFrame(rows, columns=ABLATION_COLUMNS + extras)
    if table.empty:
        return table
    order = {name: i for i, name in enumerate(METHOD_NAMES)}
    table["_order"] = table["method"].map(order).fillna(3)
    table = table.sort_values(["_order", "variant", "name"], kind="stable").drop(columns="_order")
    return table.reset_index(drop=True)


def sweepable_params(runs: pd.DataFrame) -> list[str]:
    """Sweep parameters (prunelab.config.SWEEP_PARAMS) taking at least two distinct values among finished
    runs of their method."""
    found = []
    for param, facts in SWEEP_PARAMS.items():
        if param not in runs:
            continue
        values = runs.loc[(runs["method"] == facts.method) & (runs["state"] == "done"), param].dropna()
        if values.nunique() >= 2:
            found.append(param)
    return found


def sweep_table(runs: pd.DataFrame, param: str) -> pd.DataFrame:
    """Finished runs of the parameter's method sorted by its value: value, test_acc, macs_per_image, run."""
    columns = ["value", "test_acc", "macs_per_image", "name", "run_id", "suite"]
    if param not in SWEEP_PARAMS or param not in runs:
        return pd.DataFrame(columns=columns)
    method = SWEEP_PARAMS[param].method
    rows = runs[(runs["method"] == method) & (runs["state"] == "done") & runs[param].notna()
                & runs["test_acc"].notna()]
    table = pd.DataFrame({"value": rows[param].astype(float), "test_acc": rows["test_acc"].astype(float),
                          "macs_per_image": rows["macs_per_image"].astype(float), "name": rows["name"],
                          "run_id": rows["run_id"], "suite": rows["suite"]})
    return table.sort_values(["value", "name"], kind="stable").reset_index(drop=True)[columns]


def sweep_means(sweep: pd.DataFrame) -> pd.DataFrame:
    """A sweep (`sweep_table`) per value: seeds, and mean and sample std (NaN for one seed) of test accuracy
    and MACs per image, sorted by value: a curve through the means, not a zig-zag through single seeds."""
    columns = ["value", "seeds", "test_acc_mean", "test_acc_std", "macs_per_image_mean", "macs_per_image_std"]
    if sweep.empty:
        return pd.DataFrame(columns=columns)
    grouped = sweep.groupby("value", sort=True)
    figures = grouped[["test_acc", "macs_per_image"]].agg(["mean", "std"])
    figures.columns = [f"{figure}_{stat}" for figure, stat in figures.columns]
    return figures.assign(seeds=grouped.size()).reset_index()[columns]


EXPORT_NAMES = {"name": "run", "variant": "setting", "test_acc": "test_accuracy",
                "macs_per_image": "macs_per_image", "macs_reference": "macs_unpruned",
                "macs_reduction": "macs_reduction", "params": "params"}


def export_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The ablation table for CSV export: plain column names, no local paths."""
    keep = [c for c in table.columns if c != "path"]
    return table[keep].rename(columns=EXPORT_NAMES)


def to_csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV of `export_frame(table)` (no index column)."""
    return export_frame(table).to_csv(index=False).encode("utf-8")
