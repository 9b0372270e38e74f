"""prunelab.analysis.tables against plain reference computations (scipy, numpy loops, hand counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from prunelab.analysis import tables
from prunelab.methods.slimming.artefacts import GammaHistory

# ------------------------------------------------------------------------------------------------
# Spearman


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=200).astype(float)  # many ties
    y = x + rng.normal(0, 2, size=200)
    assert tables.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_known_values_and_nan_pairs() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert tables.spearman(x, [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert tables.spearman(x, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # monotone but non-linear: rank correlation is still 1
    assert tables.spearman(x, np.exp(np.array(x))) == pytest.approx(1.0)
    # NaN pairs are dropped, as scipy does with nan_policy="omit"
    with_nan = [1.0, np.nan, 3.0, 4.0, 2.0, 7.0]
    other = [2.0, 5.0, np.nan, 1.0, 3.0, 9.0]
    expected = spearmanr(with_nan, other, nan_policy="omit").statistic
    assert tables.spearman(with_nan, other) == pytest.approx(expected)


def test_spearman_undefined_cases_are_nan() -> None:
    assert np.isnan(tables.spearman([1, 2], [2, 1]))
    assert np.isnan(tables.spearman([1, 1, 1, 1], [1, 2, 3, 4]))
    with pytest.raises(ValueError):
        tables.spearman([1, 2, 3], [1, 2])


def test_complexity_correlations_uses_difficulty_only_when_known() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"macs": rng.normal(size=50), "loss": rng.normal(size=50),
                          "difficulty": [None] * 50})
    result = tables.complexity_correlations(frame)
    assert set(result) == {"loss"}
    assert result["loss"] == pytest.approx(spearmanr(frame["macs"], frame["loss"]).statistic)
    frame["difficulty"] = rng.normal(size=50)
    result = tables.complexity_correlations(frame)
    assert result["difficulty"] == pytest.approx(spearmanr(frame["macs"], frame["difficulty"]).statistic)


# ------------------------------------------------------------------------------------------------
# per-image helpers


def _per_image() -> pd.DataFrame:
    return pd.DataFrame({"index": [4, 1, 2, 3, 0, 5], "label": [0, 1, 0, 1, 0, 1],
                         "macs": [50.0, 10.0, 30.0, 10.0, 70.0, 20.0],
                         "density_a": [0.5, 0.25, 1.0, 0.75, 1.0, 0.5], "density_b": [1.0] * 6})


def test_rank_by_macs_orders_and_filters() -> None:
    frame = _per_image()
    cheap, costly = tables.rank_by_macs(frame, 3)
    assert cheap["index"].tolist() == [1, 3, 5]  # ties on 10 MACs broken by index
    assert costly["index"].tolist() == [0, 4, 2]
    cheap, costly = tables.rank_by_macs(frame, 2, label=0)
    assert cheap["index"].tolist() == [2, 4] and costly["index"].tolist() == [0, 4]


def test_layer_densities_and_macs_lookup() -> None:
    frame = _per_image()
    densities = tables.layer_densities(frame.iloc[0])
    assert densities["layer"].tolist() == ["a", "b"] and densities["density"].tolist() == [0.5, 1.0]
    assert tables.density_columns(frame) == ["density_a", "density_b"]
    macs = tables.macs_of_indices(frame, [0, 5, 99])
    assert macs[:2].tolist() == [70.0, 20.0] and np.isnan(macs[2])
    assert np.isnan(tables.macs_of_indices(None, [1, 2])).all()


# ------------------------------------------------------------------------------------------------
# similarity matrices


def test_frobenius_gap_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    t, r = rng.normal(size=(7, 7)), rng.normal(size=(7, 7))
    total = 0.0
    for i in range(7):
        for j in range(7):
            total += (t[i, j] - r[i, j]) ** 2
    assert tables.frobenius_gap(t, r) == pytest.approx(total ** 0.5)
    gaps = tables.similarity_gaps(["l0", "l1"], [t, t], [r, t])
    assert gaps["gap"].tolist() == pytest.approx([total ** 0.5, 0.0])
    assert gaps["gap_per_pair"][0] == pytest.approx(total ** 0.5 / 7)
    both = tables.gap_comparison({"with": gaps, "without": gaps.assign(gap=1.0)})
    assert len(both) == 4 and set(both["run"]) == {"with", "without"}
    assert tables.gap_comparison({}).empty


def test_order_by_class_groups_rows_and_columns() -> None:
    labels = np.array([2, 0, 1, 0])
    matrix = np.arange(16).reshape(4, 4)
    ordered, sorted_labels = tables.order_by_class(matrix, labels)
    order = [1, 3, 2, 0]
    assert sorted_labels.tolist() == [0, 0, 1, 2]
    assert np.array_equal(ordered, matrix[order][:, order])


def test_concat_layers_cosine_is_mean_of_layer_cosines() -> None:
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(5, 3)), 100 * rng.normal(size=(5, 8))]
    joint = tables.concat_layers(layers)

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    expected = np.mean([cosine(layer[0], layer[1]) for layer in layers])
    assert cosine(joint[0], joint[1]) == pytest.approx(expected)
    assert np.allclose(tables.unit_rows(np.zeros((2, 3))), 0.0)


# ------------------------------------------------------------------------------------------------
# UMAP


def test_umap_shape_determinism_and_structure() -> None:
    rng = np.random.default_rng(0)
    centres = np.abs(rng.normal(size=(2, 12))) * 5
    labels = np.repeat([0, 1], 12)
    points = np.abs(centres[labels] + rng.normal(0, 0.1, size=(24, 12)))
    first = tables.umap_embedding(points)
    second = tables.umap_embedding(points)
    assert first is not None and first.shape == (24, 2)
    assert np.isfinite(first).all() and np.array_equal(first, second)
    # two well-separated clusters stay separated: each point's nearest neighbour is of its own class
    dist = np.linalg.norm(first[:, None] - first[None], axis=-1) + np.eye(24) * 1e9
    assert (labels[dist.argmin(1)] == labels).mean() >= 0.95
    assert tables.umap_neighbors(64) == 15 and tables.umap_neighbors(6) == 5
    assert tables.umap_embedding(points[:4]) is None
    tiny = tables.umap_embedding(np.vstack([np.zeros((1, 12)), points[:5]]))  # a zero row is allowed
    assert tiny is not None and tiny.shape == (6, 2)
    assert tables.warm_up_umap() >= 0.0
    thread = tables.warm_up_umap_in_background()
    assert thread.daemon
    thread.join(timeout=120)
    assert not thread.is_alive()


# ------------------------------------------------------------------------------------------------
# gamma histograms and slimming tables


def test_gamma_histogram_counts_match_numpy() -> None:
    rng = np.random.default_rng(0)
    history = [rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)]
    edges = tables.gamma_bin_edges(history, bins=10)
    assert edges[0] == 0 and edges[-1] == pytest.approx(max(np.abs(h).max() for h in history))
    values = tables.layer_gammas(history, ["a", "b"], row=2)
    assert values.shape == (12,) and (values >= 0).all()
    hist = tables.gamma_histogram(values, edges)
    expected, _ = np.histogram(values, bins=edges)
    assert hist["count"].tolist() == expected.tolist() and hist["count"].sum() == 12
    only_b = tables.layer_gammas(history, ["a", "b"], row=1, layer="b")
    assert np.allclose(only_b, np.abs(history[1][1]))
    assert tables.layer_gammas(history, ["a", "b"], row=1, layer="zz").size == 0
    # values above the shared range land in the last bin instead of vanishing
    assert tables.gamma_histogram(np.array([0.1, 99.0]), np.linspace(0, 1, 5))["count"].sum() == 2


def test_epoch_row_threshold_at_epoch_and_near_zero_shares() -> None:
    assert tables.epoch_row([0, 1, 2, 3], 2) == 2
    assert tables.epoch_row([0, 2, 4], 3) == 1
    assert tables.epoch_row([0, 1], 10) == 1
    assert tables.threshold_at_epoch(np.array([0.0, 0.2, 0.3]), 1) == pytest.approx(0.2)
    assert tables.threshold_at_epoch(None, 1) is None  # runs written before thresholds were recorded
    history = GammaHistory(np.array([0, 1]), ["a", "b"],
                                   [np.array([[0.5, 0.5], [0.01, 0.5]]), np.array([[0.5, 0.5], [0.04, 0.06]])],
                                   1e-3, np.array([0.0, 0.05]))
    shares = tables.near_zero_shares({"/runs/x": history}, epoch=1)
    assert list(shares.values()) == [pytest.approx(0.5)]  # 0.01 and 0.04 of the four are below 0.05
    assert tables.near_zero_shares({"/runs/x": history}, epoch=0) == {next(iter(shares)): 0.0}


def test_near_zero_share() -> None:
    assert tables.near_zero_share(np.array([0.01, 0.049, 0.05, 0.3])) == pytest.approx(0.5)  # 0.05 is not below
    assert tables.near_zero_share(np.array([0.2, 0.7])) == 0.0
    assert np.isnan(tables.near_zero_share(np.array([])))


def test_point_table_joins_each_point_to_its_image() -> None:
    names = ["cat", "dog"]
    per_image = pd.DataFrame({"index": [7, 3, 9], "label": [1, 0, 1], "pred": [1, 1, 0],
                              "loss": [0.1, 2.0, 1.5], "macs": [4e6, 6e6, 5e6]})
    indices, labels = np.array([3, 9, 5]), np.array([0, 1, 2])  # image 5 has no per-image row; class 2 no name
    table = tables.point_table(indices, per_image, names, labels)
    rows = {int(i): r for i, r in zip(per_image["index"], per_image.to_dict("records"), strict=True)}
    for point, (index, label) in enumerate(zip(indices, labels, strict=True)):
        row = table.iloc[point]
        known = rows.get(int(index))
        assert row["index"] == index and row["label"] == label
        assert row["class"] == (names[label] if label < len(names) else str(label))
        if known is None:
            assert row["prediction"] == "?" and np.isnan(row["loss"]) and np.isnan(row["MACs"])
        else:
            assert row["prediction"] == names[known["pred"]]
            assert row["loss"] == known["loss"] and row["MACs"] == row["macs"] == known["macs"]
    alone = tables.point_table(indices, None, names, labels)  # no per-image table: the labels alone
    assert alone["class"].tolist() == ["cat", "dog", "2"] and (alone["prediction"] == "?").all()


def test_channels_frame_and_before_after() -> None:
    layers = [{"name": "a", "channels_before": 8, "channels_after": 3, "guard_fired": False},
              {"name": "b", "channels_before": 4, "channels_after": 1, "guard_fired": True}]
    frame = tables.channels_frame(layers)
    assert frame["removed"].tolist() == [5, 3] and frame["guard_fired"].tolist() == [False, True]
    summary = {"params_before": 200, "params_after": 50, "macs_before": 1000, "macs_after": 400,
               "latency_ms_b1_before": 2.0}
    table = tables.before_after(summary)
    assert table["quantity"].tolist() == ["params", "MACs per image"]  # latency pair is incomplete
    assert table["change"].tolist() == pytest.approx([-0.75, -0.6])


# ------------------------------------------------------------------------------------------------
# ablations and sweeps


def _runs() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        {"run_id": "b", "name": "b", "method": "baseline", "state": "done", "test_acc": 0.9,
         "macs_per_image": 100.0, "params": 10, "sparsity_lambda": nan, "prune_ratio": nan,
         "complexity": None, "similarity": None, "macs_before": nan, "macs_dense": nan,
         "lambda_prime": nan},
        {"run_id": "s1", "name": "s1", "method": "slimming", "state": "done", "test_acc": 0.8,
         "macs_per_image": 40.0, "params": 4, "sparsity_lambda": 1e-4, "prune_ratio": 0.5,
         "complexity": None, "similarity": None, "macs_before": 100.0, "macs_dense": nan,
         "lambda_prime": nan},
        {"run_id": "s2", "name": "s2", "method": "slimming", "state": "done", "test_acc": 0.7,
         "macs_per_image": 30.0, "params": 3, "sparsity_lambda": 1e-3, "prune_ratio": 0.5,
         "complexity": None, "similarity": None, "macs_before": 100.0, "macs_dense": nan,
         "lambda_prime": nan},
        {"run_id": "m", "name": "m", "method": "manidp", "state": "done", "test_acc": 0.85,
         "macs_per_image": 25.0, "params": 12, "sparsity_lambda": nan, "prune_ratio": nan,
         "complexity": True, "similarity": False, "macs_before": nan, "macs_dense": 100.0,
         "lambda_prime": 2.0},
        {"run_id": "r", "name": "r", "method": "slimming", "state": "running", "test_acc": nan,
         "macs_per_image": nan, "params": nan, "sparsity_lambda": 1e-2, "prune_ratio": 0.5,
         "complexity": None, "similarity": None, "macs_before": nan, "macs_dense": nan,
         "lambda_prime": nan},
    ]
    return pd.DataFrame(rows).assign(suite="x", dataset="shapes", model="resnet20", width=0.25, epochs=1,
                                     path="/p")


def test_ablation_table_rows_and_reduction() -> None:
    table = tables.ablation_table(_runs())
    assert table["run_id"].tolist() == ["b", "s1", "s2", "m"]  # the running run is left out
    assert table["macs_reduction"].tolist() == pytest.approx([0.0, 0.6, 0.7, 0.75])
    assert table.loc[3, "variant"] == "ManiDP: complexity only"
    assert table.loc[1, "variant"] == "slimming λ=0.0001, prune 50% of prunable channels"  # scope not recorded
    assert tables.ablation_table(_runs().iloc[:0]).empty


def test_sweep_table_and_params() -> None:
    runs = _runs()
    assert tables.sweepable_params(runs) == ["sparsity_lambda"]  # prune_ratio is constant, λ' has one run
    sweep = tables.sweep_table(runs, "sparsity_lambda")
    assert sweep["value"].tolist() == [1e-4, 1e-3] and sweep["test_acc"].tolist() == [0.8, 0.7]
    assert tables.sweep_table(runs, "unknown").empty


def test_csv_export_round_trips() -> None:
    import io

    table = tables.ablation_table(_runs())
    data = tables.to_csv_bytes(table)
    back = pd.read_csv(io.BytesIO(data))
    assert len(back) == len(table) and "path" not in back.columns
    assert back["test_accuracy"].tolist() == pytest.approx(table["test_acc"].tolist())
    assert back["macs_reduction"].tolist() == pytest.approx(table["macs_reduction"].tolist())


def test_prune_ratios_name_what_they_are_a_fraction_of() -> None:
    counts = {"channels_removed": 134, "channels_prunable": 336, "channels_all": 448}
    assert tables.prune_denominator_text(counts) == "40% of 336 prunable channels; 30% of all 448 channels"
    every = {"channels_removed": 179, "channels_prunable": 448, "channels_all": 448}
    assert tables.prune_denominator_text(every) == "40% of 448 prunable channels (every channel of the network)"
    assert tables.prune_denominator_text({"channels_removed": 5, "channels_prunable": 10}) == \
        "50% of 10 prunable channels"
    assert tables.prune_ratio_phrase(0.5, True, "resnet20") == "prune 50% of all channels"
    assert tables.prune_ratio_phrase(0.5, False, "resnet20") == "prune 50% of interior channels"
    assert tables.prune_ratio_phrase(0.5, False, "vgg11") == "prune 50% of all channels"  # no residual stream
    assert tables.variant_label({"method": "slimming", "sparsity_lambda": 1e-3, "prune_ratio": 0.4,
                                   "prune_residual": False, "model": "resnet20"}) == \
        "slimming λ=0.001, prune 40% of interior channels"
