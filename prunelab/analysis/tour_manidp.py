"""The ManiDP tour (Tang et al., CVPR 2021), six steps over one dataset's runs: one image and its sub-network
(channels kept per layer) → the density knob and which images get cheaper (the stored what-if,
`prunelab.analysis.views`) → difficulty against MACs → similar images, similar gates (T against R) → the ablation
at matched MACs → dynamic against static at equal average MACs.

Each step opens on the run the Per-image and Similarity pages open on (`prunelab.methods.manidp.lesson_runs`) and
judges the paper's claims with `prunelab.methods.manidp.claims` within that run's setting and form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from prunelab.analysis import figures, lessons, results, tables, views
from prunelab.analysis.lessons import Claim, Stat
from prunelab.analysis.tour_base import (
    Knob,
    Step,
    StepView,
    form_of,
    millions,
    nothing,
    percent,
    row_at,
    run_id,
    same_variant,
    stat_of,
)
from prunelab.methods.baseline.config import NAME as BASELINE
from prunelab.methods.manidp import evidence, lesson_runs
from prunelab.methods.manidp.artefacts import PER_IMAGE, PROBE
from prunelab.methods.manidp.claims import claims
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.manidp.report import relative_macs_by_quintile
from prunelab.runs.run import Run

PER_IMAGE_PAGE, SIMILARITY_PAGE, ABLATIONS_PAGE = ("app_pages/per_image.py", "app_pages/similarity.py",
                                                   "app_pages/ablations.py")
NO_MANIDP = "These runs hold no finished ManiDP run on this dataset."
RANKS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # where in the MACs ranking the first step's image sits
GALLERY = 6  # cheapest and costliest images shown with the difficulty step
MEASURES = {"parent_loss": "the parent model's loss (the paper's kind of test)",
            "difficulty": "difficulty known to the dataset", "loss": "this run's own loss"}
EQUAL_MACS = 0.10  # a static variant within 10% of the dynamic one's mean MACs counts as equal


def opening(table: pd.DataFrame) -> str | None:
    """The run the Per-image page opens on (the full method, with its model.pt, the preferred form, lowest seed)."""
    return lesson_runs.opening_run(table)


def setting_table(table: pd.DataFrame, run: str, form: str | None = None) -> pd.DataFrame:
    """The runs in `run`'s setting, ManiDP's narrowed to `form` (default: `run`'s own)."""
    return lessons.in_form(lessons.in_setting_of(table, run), MANIDP, form_of(table, run) if form is None else form)


def per_image(table: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    run = opening(table)
    frame = Run(run).read(PER_IMAGE) if run is not None else None
    return None if frame is None or frame.empty else (run, frame)


def caption(row: pd.Series, names: list[str]) -> str:
    return f"#{int(row['index'])} {tables.class_name(names, row['label'])} · {row['macs'] / 1e6:.2f} M MACs"


def images_of(run: str, rows: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """(caption, image) of the test images in `rows`; [] when the run's dataset is not here."""
    images = results.load_test_images(run, rows["index"].to_numpy())
    if images is None:
        return []
    names = results.class_names(run)
    return [(caption(row, names), image) for (_, row), image in zip(rows.iterrows(), images, strict=True)]


# ----------------------------------------------------------------------------------------------
# 1. one image and its sub-network


def ranks(table: pd.DataFrame) -> list[float]:
    return list(RANKS) if opening(table) is not None else []


def rank_text(rank: Any) -> str:
    return {0.0: "the cheapest", 0.5: "the median", 1.0: "the costliest"}.get(float(rank), f"{float(rank):.0%} up")


def one_image(table: pd.DataFrame, rank: Any) -> StepView:
    found = per_image(table)
    if found is None:
        return nothing(NO_MANIDP)
    run, frame = found
    ordered = frame.sort_values(["macs", "index"], kind="stable").reset_index(drop=True)
    row = ordered.iloc[round(float(rank) * (len(ordered) - 1))]
    names = results.class_names(run)
    image = results.load_test_images(run, [int(row["index"])])
    summary = Run(run).summary or {}
    dense = float(summary.get("macs_dense") or np.nan)
    figure = figures.image_and_densities(None if image is None else image[0], row,
                                         f"{rank_text(rank)} test image: {caption(row, names)}")
    mask = same_variant(table, run)
    measured = [f"This image ({tables.class_name(names, row['label'])}, predicted "
                f"{tables.class_name(names, row['pred'])}): {row['macs'] / 1e6:.2f} M MACs, "
                f"{row['macs'] / dense:.0%} of the dense network's {dense / 1e6:.2f} M.",
                f"Over this run's {len(frame)} test images: {frame['macs'].mean() / 1e6:.2f} M ± "
                f"{frame['macs'].std() / 1e6:.2f} M MACs per image (mean ± std over images).",
                f"{row_at(table, run)['variant']}, over seeds: MACs reduction "
                f"{percent(stat_of(table, mask, 'macs_reduction'))}, test accuracy "
                f"{percent(stat_of(table, mask, 'test_acc'))}."]
    variant = str(row_at(table, run)["variant"])
    found_claims = [c for c in lessons.budget_claims(setting_table(table, run)) if c.lesson.startswith(variant)]
    return StepView(figure, measured, found_claims, run=run_id(run))


# ----------------------------------------------------------------------------------------------
# 2. the density knob


def densities(table: pd.DataFrame) -> list[float]:
    run = opening(table)
    return views.whatif_densities(run) if run is not None else []


def own_density(table: pd.DataFrame, options: list[Any]) -> Any:
    own = row_at(table, opening(table))["target_density"]
    return min(options, key=lambda d: abs(d - float(own))) if pd.notna(own) else options[-1]


def density_knob(table: pd.DataFrame, density: Any) -> StepView:
    run = opening(table)
    if run is None:
        return nothing(NO_MANIDP)
    result = views.load_whatif(run, float(density)) if density is not None else None
    if result is None:
        frame = Run(run).read(PER_IMAGE)
        return StepView(None if frame is None else figures.macs_histogram(frame["macs"]),
                        note="This run has no stored what-if curve: its per-image MACs as trained only. The Per-image "
                             "page computes the what-if at any density on request.", run=run_id(run))
    trained = result.trained
    cheaper, costlier = result.crossed("costly", "cheap"), result.crossed("cheap", "costly")
    mask = same_variant(table, run)
    measured = [f"At target density {result.density:.2f}: test accuracy {result.test_acc:.1%} (as trained "
                f"{trained['test_acc']:.1%}), {result.macs['mean'] / 1e6:.2f} M MACs per image on average (as trained "
                f"{trained['macs_mean'] / 1e6:.2f} M), {1 - result.macs['mean'] / result.macs_dense:.1%} fewer than "
                "the dense network.",
                f"{len(result.moved)} of {len(result.per_image)} test images change half of the MACs ranking: "
                f"{len(cheaper)} become cheap, {len(costlier)} become costly; {result.became_wrong} become wrong and "
                f"{result.became_right} right.",
                f"As trained, over seeds: MACs reduction {percent(stat_of(table, mask, 'macs_reduction'))} at target "
                f"density {float(row_at(table, run)['target_density']):.2f}."]
    return StepView(figures.whatif_histogram(result), measured, run=run_id(run),
                    images=images_of(run, cheaper.head(GALLERY)) if len(cheaper) else [],
                    images_note=f"Images that were in the costly half as trained and are in the cheap half at density "
                                f"{result.density:.2f} (the cheapest {GALLERY}).")


# ----------------------------------------------------------------------------------------------
# 3. difficulty against MACs


def measures(table: pd.DataFrame) -> list[str]:
    found = per_image(table)
    if found is None:
        return []
    return [key for key in MEASURES if key in found[1] and found[1][key].notna().all()]


def difficulty(table: pd.DataFrame, measure: Any) -> StepView:
    found = per_image(table)
    if found is None or measure not in found[1]:
        return nothing(NO_MANIDP)
    run, frame = found
    setting = setting_table(table, run)
    control = evidence.control_of(setting, run)
    bars = {"this run": relative_macs_by_quintile(frame["macs"].to_numpy(), frame[measure].to_numpy())}
    other = Run(control).read(PER_IMAGE) if control is not None else None
    if other is not None and measure in other:
        bars["without the complexity term"] = relative_macs_by_quintile(other["macs"].to_numpy(),
                                                                       other[measure].to_numpy())
    figure = figures.difficulty_figure(frame, measure, MEASURES[measure], bars)
    gaps = [f"{row_at(table, path)['variant']}: relative MACs, hardest − easiest fifth by the parent's loss, "
            f"{stat_of(table, same_variant(table, path), 'complexity_quintile_gap').text('.3f')}"
            for path in (run, control) if path is not None]
    cheapest, costliest = tables.rank_by_macs(frame, GALLERY)
    return StepView(figure, [*gaps, f"Spearman ρ(MACs, {measure}) in this run: "
                             f"{tables.spearman(frame['macs'], frame[measure]):.3f}."],
                    claims(setting, figure="complexity_quintile_gap"), run=run_id(run),
                    images=images_of(run, pd.concat([cheapest, costliest])),
                    images_note=f"The {GALLERY} cheapest test images of this run (first row) and the {GALLERY} "
                                "costliest (second row).")


# ----------------------------------------------------------------------------------------------
# 4. similar images, similar gates


def probe_of(table: pd.DataFrame) -> tuple[str, Any] | None:
    run = opening(table)
    probe = Run(run).read(PROBE) if run is not None else None
    return None if probe is None else (run, probe)


def probe_layers(table: pd.DataFrame) -> list[str]:
    found = probe_of(table)
    return list(found[1].layer_names) if found is not None else []


def varied_layer(table: pd.DataFrame, options: list[Any]) -> Any:
    return options[lesson_runs.heatmap_layer(probe_of(table)[1].R)]


def similarity(table: pd.DataFrame, layer: Any) -> StepView:
    found = probe_of(table)
    if found is None or layer not in found[1].layer_names:
        return nothing(NO_MANIDP)
    run, probe = found
    position = probe.layer_names.index(layer)
    t, labels = tables.order_by_class(probe.T[position], probe.labels)
    r, _ = tables.order_by_class(probe.R[position], probe.labels)
    twins = lesson_runs.similarity_comparison(table, run)
    measured = [f"‖T − R‖ at {layer}: {tables.frobenius_gap(t, r):.3f} over {len(labels)} probe images."]
    measured += [f"{row_at(table, path)['variant']}: ρ(R, T) over held-out test pairs "
                 f"{stat_of(table, same_variant(table, path), 'similarity_rank_correlation').text('.3f')}"
                 for path in twins]
    return StepView(figures.similarity_heatmaps(t, r), measured,
                    claims(setting_table(table, run), figure="similarity_rank_correlation"), run=run_id(run))


# ----------------------------------------------------------------------------------------------
# 5. the ablation at matched MACs


def forms(table: pd.DataFrame) -> list[str]:
    return lessons.method_forms(table, MANIDP) if opening(table) is not None else []


def opening_form(table: pd.DataFrame, options: list[Any]) -> Any:
    return form_of(table, opening(table))


def ablation(table: pd.DataFrame, form: Any) -> StepView:
    run = opening(table)
    if run is None:
        return nothing(NO_MANIDP)
    setting = lessons.with_run_figures(setting_table(table, run, str(form)))
    groups = lessons.variant_groups(setting[setting["method"] == MANIDP])
    if groups["acc_at_matched_mean"].isna().all():
        figure = figures.mean_bars(groups["label"], groups["test_acc_mean"], groups["test_acc_std"],
                                   [figures.method_colour(MANIDP)] * len(groups),
                                   [f"{r:.1%} fewer MACs" for r in groups["macs_reduction_mean"]],
                                   "Test accuracy as trained, each at its own MACs (not matched)", "test accuracy")
        return StepView(figure, note=f"No ManiDP run of the {form} form here has a what-if curve to read its accuracy "
                                     "at matched MACs from: each variant at its own MACs reduction instead.",
                        run=run_id(run))
    groups = groups[groups["acc_at_matched_mean"].notna()]
    reduction = float(setting.loc[setting["method"] == MANIDP, "matched_reduction"].median())
    figure = figures.mean_bars(groups["label"], groups["acc_at_matched_mean"], groups["acc_at_matched_std"],
                               [figures.method_colour(MANIDP)] * len(groups),
                               [f"n = {int(n)}" for n in groups["seeds"]],
                               f"Accuracy at {reduction:.1%} fewer MACs, mean ± std over seeds", "test accuracy")
    measured = [f"{row['label']}: {percent(Stat(row['acc_at_matched_mean'], row['acc_at_matched_std'], row['seeds']))}"
                for _, row in groups.iterrows()]
    return StepView(figure, measured, claims(setting, figure="acc_at_matched"), run=run_id(run))


# ----------------------------------------------------------------------------------------------
# 6. dynamic against static at equal average MACs


def dynamic_variants(table: pd.DataFrame) -> list[str]:
    run = opening(table)
    if run is None:
        return []
    setting = setting_table(table, run)
    return list(dict.fromkeys(setting.loc[setting["method"] == MANIDP, "variant"]))


def opening_variant(table: pd.DataFrame, options: list[Any]) -> Any:
    return row_at(table, opening(table))["variant"]


def dynamic_static(table: pd.DataFrame, variant: Any) -> StepView:
    run = opening(table)
    if run is None:
        return nothing(NO_MANIDP)
    setting = setting_table(table, run)
    groups = lessons.variant_groups(setting)
    dynamic = groups[(groups["method"] == MANIDP) & (groups["variant"] == variant)]
    static = groups[~groups["method"].isin([MANIDP, BASELINE])]
    shown = pd.concat([groups[groups["method"] == BASELINE], static, dynamic])
    figure = figures.accuracy_figure(shown, "macs_per_image").update_layout(
        height=460, title="Accuracy against MACs per image, mean ± std over seeds (top-left is best)")
    if dynamic.empty:
        return nothing(NO_MANIDP)
    mine = setting["variant"] == variant
    acc, macs = stat_of(setting, mine, "test_acc"), stat_of(setting, mine, "macs_per_image")
    measured = [f"{variant}: test accuracy {percent(acc)} at {millions(macs)} MACs per image (sub-networks' mean)."]
    if static.empty:
        return StepView(figure, measured, note="No static run (slimming, a control) in this setting to compare with.",
                        run=run_id(run))
    nearest = static.iloc[(static["macs_per_image_mean"] - macs.mean).abs().argsort().iloc[0]]
    theirs = setting["variant"] == nearest["variant"]
    other, other_macs = stat_of(setting, theirs, "test_acc"), stat_of(setting, theirs, "macs_per_image")
    gap = macs.mean / other_macs.mean - 1
    measured.append(f"Nearest static variant in MACs, {nearest['variant']}: {percent(other)} at "
                    f"{millions(other_macs)} ({gap:+.0%} MACs for the dynamic one).")
    note, judged = "", []
    if abs(gap) > EQUAL_MACS:
        note = (f"No static variant here lies within {EQUAL_MACS:.0%} of its MACs (the nearest is {gap:+.0%} away): "
                "this is not an equal-MACs comparison; read the chart.")
    else:
        (ours, control), seeds = lessons.shared_seeds(setting, [mine, theirs])
        better, worse = stat_of(setting, ours, "test_acc"), stat_of(setting, control, "test_acc")
        judged.append(Claim(f"{variant} beats {nearest['variant']} at equal average MACs",
                            "ManiDP (Tang et al., 2021): a sub-network per image reaches a lower error than static "
                            "pruning at similar FLOPs (CIFAR-10 ResNet-56: 6.36% error at −62.4% FLOPs).",
                            f"test accuracy: {variant} {percent(better)}; {nearest['variant']} {percent(worse)}{seeds}",
                            lessons.verdict_of(better, worse, holds_if_greater=True), "dynamic above static",
                            f"{better.mean:.1%} against {worse.mean:.1%}"))
    return StepView(figure, measured, judged, note=note, run=run_id(run))


STEPS = (
    Step("One image and its sub-network",
         "ManiDP keeps a different set of channels for every image. Which, and what does one image cost?",
         "ManiDP (Tang et al., 2021): a gate per layer reads the image's features and keeps its channels whose "
         "saliency passes the layer's threshold, so each image runs its own sub-network and pays its own FLOPs "
         "(CIFAR-10 ResNet-56: 6.30% → 6.36% test error at −62.4% FLOPs, after 400 epochs).",
         "One test image at the chosen place in the run's MACs ranking, and the fraction of each gated layer's "
         "channels it keeps; MACs are counted from its masks (verified on the sliced sub-network). Over seeds: the "
         "MACs reduction and test accuracy of the run's variant.",
         Knob("Image, by its place in the MACs ranking", ranks, lambda t, o: 0.5, rank_text, slider=True),
         one_image, PER_IMAGE_PAGE),
    Step("The density knob",
         "The target density sets how many (image, channel) pairs the thresholds keep. Move it: which images get "
         "cheaper, and what does accuracy do?",
         "ManiDP: a layer-wise remain rate η (here the target density) sets the thresholds ξ; an image keeps a channel "
         "where its saliency π passes ξ, so the budget is set on average and every image's gates decide where it goes.",
         "The run's saved gated model with its thresholds recalibrated at the chosen density (weights as trained, the "
         "stored what-if): per-image MACs as trained against at this density, accuracy, and the images that change "
         "half of the MACs ranking (those that become cheap are shown).",
         Knob("Target density", densities, own_density, lambda d: f"{float(d):.2f}", slider=True), density_knob,
         PER_IMAGE_PAGE),
    Step("Difficulty against MACs",
         "Do harder images get larger sub-networks?",
         "ManiDP's complexity term: images with a loss above C are not pushed to be sparse; its visualisation shows "
         "the costliest sub-networks on cluttered, ambiguous images and the cheapest on clean ones.",
         "Every test image's MACs against a difficulty (left) and relative MACs by fifths of it (right), this run "
         "beside its control without the complexity term; the paper's kind of test ranks images by the parent "
         "model's loss, measured before the gates existed. Below: the cheapest and the costliest images.",
         Knob("Difficulty measure", measures, None, lambda m: MEASURES.get(str(m), str(m))), difficulty,
         PER_IMAGE_PAGE),
    Step("Similar images, similar gates",
         "Do images that look alike to the network share a sub-network?",
         "ManiDP's similarity term keeps the manifold structure of the features in the sub-networks: it penalises "
         "‖T − R‖ between the gates' similarity T and the features' similarity R, so image pairs with similar features "
         "get similar gates.",
         "T (cosine similarity of the probe images' gate vectors) and R (of their pooled features) at one layer, "
         "images ordered by class, and T − R; the claim is judged on held-out pairs as Spearman's ρ(R, T), with the "
         "term against without it, mean ± std over seeds.",
         Knob("Gated layer", probe_layers, varied_layer), similarity, SIMILARITY_PAGE),
    Step("The ablation at matched MACs",
         "Each term on and off: which variant is most accurate at the same MACs?",
         "ManiDP (Tang et al., 2021), ablation table: at similar FLOPs, each term adds accuracy, and both terms "
         "together give the best.",
         "Each variant's test accuracy at one MACs reduction (the median of the form's runs), read along each run's "
         "what-if curve (weights as trained, thresholds recalibrated), mean ± std over seeds.",
         Knob("Form of ManiDP", forms, opening_form), ablation, ABLATIONS_PAGE),
    Step("Dynamic against static",
         "Does a sub-network per image beat one static small network of the same average MACs?",
         "ManiDP (Tang et al., 2021): dynamic pruning beats static pruning at similar FLOPs (its CIFAR-10 and ImageNet "
         "tables set it against static methods).",
         "Accuracy against MACs per image of the ManiDP variant, every static variant (Network Slimming, the controls) "
         "and the baseline in this setting, mean ± std over seeds; the nearest static variant in MACs is judged "
         "against it when it lies within 10% of its MACs.",
         Knob("ManiDP variant", dynamic_variants, opening_variant), dynamic_static, ABLATIONS_PAGE),
)
