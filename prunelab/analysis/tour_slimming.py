"""The Network Slimming tour (Liu et al., ICCV 2017), six steps over one dataset's runs: what γ is (its histogram
at λ = 0) → λ and the γ histogram over epochs → the global threshold (channels removed per layer and accuracy right
after pruning, re-pruned as the knob moves) → fine-tuning recovers → the controls at equal MACs (random channels,
the architecture trained from scratch: every method of the registry besides the baseline and the two papers'
methods) → MACs against milliseconds (the speed benchmark result of `assets/speed`).

Each step opens on the runs the Slimming page opens on (`prunelab.methods.slimming.lesson_runs`) and judges the
paper's claims with `prunelab.methods.slimming.claims` within that run's setting and form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from prunelab.analysis import figures, lessons, live, tables, views
from prunelab.analysis.lessons import Claim
from prunelab.analysis.tour_base import (
    Knob,
    Step,
    StepView,
    claims_about,
    form_of,
    millions,
    nothing,
    percent,
    row_at,
    run_id,
    same_variant,
    stat_of,
)
from prunelab.config import METHOD_FACTS
from prunelab.methods.baseline.config import NAME as BASELINE
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming import lesson_runs
from prunelab.methods.slimming.artefacts import GAMMA_HISTORY
from prunelab.methods.slimming.claims import PILE_UP, PRUNING_BARELY_HURTS, claims
from prunelab.methods.slimming.config import NAME as SLIMMING
from prunelab.runs.artefacts import METRICS
from prunelab.runs.run import Run
from prunelab.runs.run_format import DENSE_MODEL_FILE, NEAR_ZERO_GAMMA_KEY
from prunelab.speed import report
from prunelab.speed.figures import speedup_figure

PAGE = "app_pages/slimming.py"
NO_SLIMMING = "These runs hold no finished Network Slimming run on this dataset."
EQUAL_MACS = 0.02  # a control without a recorded parent counts at equal MACs within 2% of the slimming variant's


# ----------------------------------------------------------------------------------------------
# the runs a step reads


def opening(table: pd.DataFrame) -> str | None:
    """The run the Slimming page opens on (the preferred form, its lowest seed, the largest λ)."""
    return lesson_runs.opening_run(table)


def by_lambda(table: pd.DataFrame) -> dict[float, str]:
    """λ -> one run of it (ascending λ) in the opening run's setting and form, at its seed where there is one."""
    run = opening(table)
    if run is None:
        return {}
    paths = lesson_runs.lambda_comparison(table, run)
    return {float(row_at(table, path)["sparsity_lambda"]): path for path in paths}


def run_at(table: pd.DataFrame, lam: Any) -> str | None:
    """The run of λ = `lam` in the opening run's setting and form (`by_lambda`); None when there is none."""
    return by_lambda(table).get(float(lam)) if lam is not None else None


def lambdas(table: pd.DataFrame) -> list[float]:
    return list(by_lambda(table))


def setting_table(table: pd.DataFrame, run: str) -> pd.DataFrame:
    """The runs in `run`'s setting, slimming's narrowed to `run`'s form: what its claims are judged on."""
    return lessons.in_form(lessons.in_setting_of(table, run), SLIMMING, form_of(table, run))


def lambda_text(value: Any) -> str:
    return f"λ = {float(value):g}"


def largest(table: pd.DataFrame, options: list[Any]) -> Any:
    return options[-1]


def opening_lambda(table: pd.DataFrame, options: list[Any]) -> Any:
    run = opening(table)
    return float(row_at(table, run)["sparsity_lambda"]) if run is not None else options[-1]


def share_line(table: pd.DataFrame, path: str) -> str:
    mask = same_variant(table, path)
    share = stat_of(table, mask, NEAR_ZERO_GAMMA_KEY)
    lam = float(row_at(table, path)["sparsity_lambda"])
    return f"{lambda_text(lam)}: share of |γ| below 0.05 after sparsity training {percent(share)}"


# ----------------------------------------------------------------------------------------------
# 1. what γ is


def gamma_epochs(table: pd.DataFrame) -> list[int]:
    runs = by_lambda(table)
    if not runs:
        return []
    history = Run(next(iter(runs.values()))).read(GAMMA_HISTORY)
    return [int(epoch) for epoch in history.epochs] if history is not None else []


def what_gamma_is(table: pd.DataFrame, epoch: Any) -> StepView:
    runs = by_lambda(table)
    if not runs:
        return nothing(NO_SLIMMING)
    lam, path = next(iter(runs.items()))
    history = Run(path).read(GAMMA_HISTORY)
    if history is None:
        return nothing("The λ = 0 run has no γ history (gamma_history.npz).")
    row = tables.epoch_row(history.epochs, int(epoch))
    values = tables.layer_gammas(history.gammas, history.layer_names, row)
    figure = figures.gamma_panels({f"{lambda_text(lam)}, seed {int(row_at(table, path)['seed'])}, "
                                   f"{'at initialisation' if int(epoch) == 0 else f'after epoch {int(epoch)}'}":
                                   history}, int(epoch))
    measured = [f"At this epoch, {tables.near_zero_share(values):.1%} of the {values.size} scales lie below "
                f"{tables.NEAR_ZERO_GAMMA} (this seed).", share_line(table, path) + "."]
    note = "" if lam == 0 else f"These runs have no λ = 0; the smallest is {lam:g}."
    return StepView(figure, measured, note=note, run=run_id(path))


# ----------------------------------------------------------------------------------------------
# 2. λ and the γ histogram over epochs


def lambda_over_epochs(table: pd.DataFrame, lam: Any) -> StepView:
    path = run_at(table, lam)
    if path is None:
        return nothing(NO_SLIMMING)
    history = Run(path).read(GAMMA_HISTORY)
    if history is None:
        return nothing("This run has no γ history (gamma_history.npz).")
    measured = [share_line(table, other) for other in by_lambda(table).values()]
    return StepView(figures.gamma_epochs(history), measured,
                    claims_about(claims(setting_table(table, path)), PILE_UP), run=run_id(path))


# ----------------------------------------------------------------------------------------------
# 3. the global threshold


def prune_ratios(table: pd.DataFrame) -> list[float]:
    return list(views.PRUNE_RATIOS) if opening(table) is not None else []


def own_ratio(table: pd.DataFrame, options: list[Any]) -> Any:
    ratio = float(row_at(table, opening(table))["prune_ratio"])
    return min(options, key=lambda option: abs(option - ratio))


def with_dense_model(table: pd.DataFrame, path: str) -> str | None:
    """`path`, or another seed of its variant, whose dense model (after sparsity training) is here."""
    seeds = table[same_variant(table, path)].sort_values("seed")
    for candidate in [path, *seeds["path"]]:
        if (Path(candidate) / DENSE_MODEL_FILE).is_file():
            return str(candidate)
    return None


def global_threshold(table: pd.DataFrame, ratio: Any) -> StepView:
    run = opening(table)
    if run is None:
        return nothing(NO_SLIMMING)
    path = with_dense_model(table, run)
    if path is None:
        return nothing("Re-pruning needs the dense model saved after sparsity training (dense_model.pt); no seed "
                       "of this variant has it here.")
    try:
        result = views.prune_what_if(path, float(ratio))
    except Exception as error:  # noqa: BLE001 - a broken or foreign run: say why instead of a traceback
        return nothing(f"Cannot re-prune this run: {error}")
    curve = [(r, held["acc"]) for r in views.PRUNE_RATIOS if (held := views.load_prune(path, r)) is not None]
    channels = tables.channels_frame(result["layers"])
    figure = figures.threshold_figure(channels, float(ratio), result["acc"], curve)
    mask = same_variant(table, path)
    measured = [f"At {float(ratio):.0%} the threshold |γ| = {result['threshold']:.3g} removes "
                f"{tables.prune_denominator_text(result)}: {result['macs'] / 1e6:.2f} M MACs per image "
                f"({result['macs'] / result['macs_dense'] - 1:+.1%}), test accuracy with no fine-tuning "
                f"{result['acc']:.1%} (seed {int(row_at(table, path)['seed'])}).",
                f"At the run's own ratio, over seeds: {percent(stat_of(table, mask, 'acc_before_prune'))} before "
                f"pruning, {percent(stat_of(table, mask, 'acc_after_prune'))} right after."]
    return StepView(figure, measured, claims_about(claims(setting_table(table, path)), PRUNING_BARELY_HURTS),
                    run=run_id(path))


# ----------------------------------------------------------------------------------------------
# 4. fine-tuning recovers


def fine_tuning(table: pd.DataFrame, lam: Any) -> StepView:
    path = run_at(table, lam)
    if path is None:
        return nothing(NO_SLIMMING)
    mask = same_variant(table, path)
    curves, prune_step = {}, None
    for _, row in table[mask].sort_values("seed").iterrows():
        frame = live.epoch_curves(Run(row["path"]).read(METRICS))
        if frame.empty:
            continue
        curves[f"seed {int(row['seed'])}"] = frame
        steps = live.boundaries(live.phase_spans(frame))
        prune_step = steps[0][0] if steps else prune_step
    setting = setting_table(table, path)
    baseline = stat_of(setting, setting["method"] == BASELINE, "test_acc")
    figure = figures.recovery_figure(curves, prune_step, baseline, table.loc[mask, ["seed", "acc_before_prune",
                                                                                   "acc_after_prune"]])
    variant = str(row_at(table, path)["variant"])
    measured = [f"{variant}, over seeds: {percent(stat_of(table, mask, 'acc_before_prune'))} before pruning, "
                f"{percent(stat_of(table, mask, 'acc_after_prune'))} right after, "
                f"{percent(stat_of(table, mask, 'test_acc'))} after fine-tuning.",
                f"The baseline trained for as many epochs in all: {percent(baseline)}."]
    return StepView(figure, measured, claims_about(lessons.budget_claims(setting), variant), run=run_id(path))


# ----------------------------------------------------------------------------------------------
# 5. the controls at equal MACs


def control_methods() -> list[str]:
    """The controls: every method of the registry besides the baseline and the two papers' methods."""
    return [name for name in METHOD_FACTS if name not in (BASELINE, SLIMMING, MANIDP)]


def controls_of(table: pd.DataFrame, mask: pd.Series) -> dict[str, pd.Series]:
    """label -> mask of the control runs of the slimming variant `mask` selects: those whose parent is one of its
    runs, else (naming no parent) those of its dataset, model and width within EQUAL_MACS of its mean MACs; one
    group per control method and budget."""
    ids = set(table.loc[mask, "run_id"].astype(str))
    macs = float(table.loc[mask, "macs_per_image"].mean())
    alike = pd.Series(True, index=table.index)
    for key in ("dataset", "model", "width"):
        alike &= table[key] == table.loc[mask, key].iloc[0]
    orphan = table["parent_run"].isna()  # a control that names no parent run: matched by its MACs
    near = alike & orphan & ((table["macs_per_image"] - macs).abs() <= EQUAL_MACS * macs)
    found = table["method"].isin(control_methods()) & (table["parent_run"].astype(str).isin(ids) | near)
    groups = {}
    for (method, epochs), part in table[found].groupby(["method", "epochs_total"], sort=False):
        groups[f"{METHOD_FACTS[str(method)].label} · {int(epochs)} epochs"] = table.index.isin(part.index)
    return {label: pd.Series(chosen, index=table.index) for label, chosen in groups.items()}


def controls(table: pd.DataFrame, lam: Any) -> StepView:
    path = run_at(table, lam)
    if path is None:
        return nothing(NO_SLIMMING)
    mask = same_variant(table, path)
    variant = str(row_at(table, path)["variant"])
    found = controls_of(table, mask)
    names, means, stds, colours, texts = [variant], [], [], [figures.method_colour(SLIMMING)], []
    measured, judged, matched, beaten = [], [], [], []
    for label, control in {variant: mask, **found}.items():
        acc, macs = stat_of(table, control, "test_acc"), stat_of(table, control, "macs_per_image")
        means.append(acc.mean)
        stds.append(acc.std)
        texts.append(f"{macs.mean / 1e6:.2f} M MACs · {acc.n} seed{'s' if acc.n != 1 else ''}")
        measured.append(f"{label}: test accuracy {percent(acc)} at {millions(macs)} MACs per image.")
        if control is mask:
            continue
        names.append(label)
        method = str(table.loc[control, "method"].iloc[0])
        colours.append(figures.method_colour(method))
        (mine, theirs), seeds = lessons.shared_seeds(table, [mask, control])
        ours, other = stat_of(table, mine, "test_acc"), stat_of(table, theirs, "test_acc")
        verdict = lessons.verdict_of(ours, other, holds_if_greater=True)
        judged.append(Claim(f"the |γ| criterion beats {label} at equal MACs",
                            METHOD_FACTS[method].overview.replace("**", ""),
                            f"test accuracy: {variant} {percent(ours)}; {label} {percent(other)}{seeds}", verdict,
                            "slimming above the control", f"{ours.mean:.1%} against {other.mean:.1%}"))
        if verdict.startswith("within seed noise"):
            matched.append(label)
        elif verdict.startswith("does not hold"):
            beaten.append(f"{label} beats Network Slimming here by {(other.mean - ours.mean) * 100:.1f} points "
                          f"({verdict}{'' if 'one seed' in verdict else ': beyond seed noise'})")
    figure = figures.mean_bars(names, means, stds, colours, texts, "Test accuracy at equal MACs, mean ± std over "
                               "seeds", "test accuracy")
    sentences = []
    if not found:
        sentences.append("No control run of this slimming variant yet (the controls suite trains them for the "
                         "largest λ): " + "; or ".join(
            METHOD_FACTS[m].help for m in control_methods()) + ".")
    if matched:
        sentences.append(f"{' and '.join(matched)} {'is' if len(matched) == 1 else 'are'} as good as Network "
                         "Slimming here (within seed noise): at this scale, what the control takes away (the "
                         "criterion, or the inherited weights) makes no measurable difference, the lesson of Liu et "
                         "al. (2019).")
    if beaten:
        sentences.append("; ".join(beaten) + ": at this scale, what the control takes away costs Network Slimming "
                         "more than it gives (Liu et al. (2019) found training from scratch matching it).")
    note = " ".join(sentences)
    return StepView(figure, measured, judged, note=note, run=run_id(path))


# ----------------------------------------------------------------------------------------------
# 6. MACs against milliseconds


def speed_result() -> dict[str, Any] | None:
    """The first speed benchmark result of `prunelab.speed.report.speed_dir()`, None when there is none."""
    files = report.result_files()
    return report.read_result(files[0]) if files else None


def speed_models(table: pd.DataFrame) -> list[str]:
    result = speed_result()
    return list(dict.fromkeys(report.speed_rows(result)["model"])) if result is not None else []


def milliseconds(table: pd.DataFrame, model: Any) -> StepView:
    result = speed_result()
    if result is None:
        return nothing(f"No speed benchmark result in {report.speed_dir()}.")
    frame = report.speed_rows(result)
    facts = result.get("details", {}).get("speed", {}).get("headline_by_model", {}).get(str(model), {})
    measured = []
    for batch in ("b1", "b64"):
        cell = facts.get(f"static_{batch}")
        if cell:
            measured.append(f"Batch {batch[1:]}: {cell['macs_ratio']:.2f}× fewer MACs, {cell['speedup']:.2f}× faster "
                            f"in its fastest form ({report.FORM_LABELS.get(cell['form'], cell['form'])}): "
                            f"{cell['speedup_over_macs']:.0%} of the MACs reduction turns into time.")
    measured.append("One benchmark on this CPU: each ratio is the median of per-round ratios taken side by side "
                    "(the whiskers are their quartiles), not a mean over seeds.")
    label = report.MODEL_LABELS.get(str(model), str(model))
    figure = speedup_figure(frame, "static", str(model)).update_layout(title=f"{label}: the compact network's speedup")
    return StepView(figure, measured)


STEPS = (
    Step("What γ is",
         "Every channel of a convolution is followed by a BatchNorm scale γ. How are the |γ| spread when nothing "
         "pushes them (λ = 0)?",
         "Network Slimming (Liu et al., 2017) reads |γ| as a channel's importance: the BN output of a channel is "
         "γ x̂ + β, so a channel whose γ is near 0 passes almost nothing on. Its Figure 4: with λ = 0 the |γ| "
         "distribution is flat, with no clean place to cut.",
         "The |γ| of every prunable BatchNorm of the λ = 0 run at the chosen epoch (every γ starts at the run's "
         "initial value), the global threshold its prune ratio would cut at (dashed), and the share of |γ| below "
         "0.05, over seeds.",
         Knob("Epoch (0 = at initialisation)", gamma_epochs, largest, lambda e: f"epoch {e}", slider=True),
         what_gamma_is, PAGE),
    Step("λ and the γ histogram over epochs",
         "What does the L1 penalty λ·Σ|γ| do to the scales, epoch by epoch?",
         "Network Slimming (Liu et al., 2017, Fig. 4): with λ = 0 the |γ| distribution is flat; as λ grows it piles "
         "up near zero, which makes one global threshold a clean cut.",
         "One run per λ (same setting, form and seed): its |γ| histogram after every sparsity epoch, light to dark, "
         "and the share of |γ| below 0.05 after sparsity training, mean ± std over seeds.",
         Knob("Sparsity strength λ", lambdas, largest, lambda_text), lambda_over_epochs, PAGE),
    Step("The global threshold",
         "One threshold over every prunable channel: how many channels does each layer lose, and what does the "
         "network lose right after pruning, before any fine-tuning?",
         "Network Slimming: the channels below one global |γ| threshold carry little, so with a strong λ accuracy "
         "right after pruning stays close to the sparsity-trained network's; a per-layer minimum keeps a layer from "
         "losing every channel.",
         "The run's dense model (after sparsity training) re-pruned at the chosen ratio: channels per layer before and "
         "kept, and the test accuracy of the pruned network with no fine-tuning (left: this ratio; right: every ratio "
         "the slider offers). Over seeds: accuracy before and right after pruning at the run's own ratio.",
         Knob("Prune ratio (fraction of the prunable channels removed)", prune_ratios, own_ratio,
              lambda r: f"{float(r):.0%}", slider=True),
         global_threshold, PAGE),
    Step("Fine-tuning recovers",
         "After the cut, how much of the lost accuracy do a few epochs of fine-tuning bring back?",
         "Network Slimming: after pruning, fine-tuning recovers the accuracy; the compact network matches the "
         "unpruned one (CIFAR-10 VGG-19: 6.34% → 6.20% test error with 70% of the channels pruned, after 160 + 160 "
         "epochs).",
         "Test accuracy after every epoch of each seed, sparsity training then fine-tuning, the drop at the cut "
         "(before / right after pruning), and the baseline trained for as many epochs in all (band: mean ± std).",
         Knob("Sparsity strength λ", lambdas, largest, lambda_text), fine_tuning, PAGE),
    Step("The controls at equal MACs",
         "Would the same per-layer channel counts chosen at random do as well, or the pruned architecture trained "
         "from scratch? That is: do the |γ| criterion and the inherited weights matter?",
         "Network Slimming: the |γ| criterion keeps the channels that matter. Liu et al., \"Rethinking the Value of "
         "Network Pruning\" (ICLR 2019): for Network Slimming on CIFAR the pruned architecture trained from scratch "
         "typically matches the fine-tuned one: the value lies in the architecture found, less in the weights.",
         "Test accuracy of the slimming variant and of every control run at its MACs, mean ± std over seeds; a control "
         "is judged against slimming on the seeds both hold (a difference is real beyond two standard errors).",
         Knob("Sparsity strength λ of the slimming variant", lambdas, opening_lambda, lambda_text), controls,
         "app_pages/ablations.py"),
    Step("MACs against milliseconds",
         "The compact network has fewer MACs. Does it run that much faster on a CPU?",
         "Network Slimming: the pruned network is a normal, physically smaller network, so its savings need no "
         "special library or hardware (CIFAR-10 VGG-19: −51.0% FLOPs). FLOPs are not time: each layer's fixed cost "
         "and small, memory-bound layers keep a share of the time that removing channels cannot remove.",
         "The measured speedup of the compact network over the dense one, per form and batch size (bars, quartiles "
         "as whiskers), against the MACs ratio (dashed): the speedup the MACs alone would promise.",
         Knob("Network", speed_models, None, lambda m: report.MODEL_LABELS.get(str(m), str(m))), milliseconds,
         "app_pages/speed.py"),
)
