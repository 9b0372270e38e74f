"""ManiDP's config and facts (no torch: read by the listings and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from prunelab.methods.manidp.artefacts import MANIDP_INFO, PER_IMAGE, PROBE
from prunelab.methods.spec import FORM_DESCRIPTION, Departure, Form, MethodFacts, MethodWithForm, deferred, field_facts

MANIDP_VARIANTS = {(False, False): "neither", (True, False): "complexity only",
                   (False, True): "similarity only", (True, True): "both"}
ONNX_NOTE = ("ONNX runs the ManiDP model densely with masks, not sparsely: every channel of every gated layer "
             "is computed and the pruned ones are multiplied by zero, so it costs the dense MACs plus the "
             "gates' for every image; the per-image savings need PruneLab's sparse executor.")


def _is_true(value: Any) -> bool:
    return (isinstance(value, bool) or type(value).__name__ == "bool_") and bool(value)


def settings(row: Mapping[str, Any]) -> str:
    terms = [name for name in ("complexity", "similarity") if _is_true(row[name])]
    return f"λ'={row['lambda_prime']:g}, γ={row['gamma_sim']:g}, terms: {' + '.join(terms) or 'none'}"


def variant(row: Mapping[str, Any], suffix: str) -> str:
    key = (_is_true(row.get("complexity")), _is_true(row.get("similarity")))
    return f"ManiDP{suffix}: {MANIDP_VARIANTS[key]}"


CLAIMS_MODULE = "prunelab.methods.manidp.claims"  # the paper's claims (pandas: imported on first use)
MANIDP_REFERENCE_CODE = (
    "huawei-noah/Efficient-Computing Pruning/ManiDP/models/resnet_cifar.py (MaskBlock, MaskedBasicblock)",
    "huawei-noah/Efficient-Computing Pruning/ManiDP/main.py (train, cal_similarity_loss, adjust_remain_rate, "
    "the threshold update after each epoch)",
)
MANIDP_DEPARTURES = (
    Departure(
        "small_gate_init", "small_gate_init", False, True,
        summary=("gates: second Linear's weight ~ N(0, 0.1²), first Linear with a bias, hidden width C_in "
                 "(C_in < 32) or C_in/2, no clamp; reference: both Linears Kaiming-normal, the first without "
                 "bias, hidden width C_out (C_out < 80) or C_out/2, saliency clamped at 1000"),
        reason=("π starts within a few tenths of 1 for every image, so training starts from the parent; the "
                "reference's init on a parent trained without gates lets π grow with its input through the "
                "residual stream (shapes: stage-3 π ≈ 79, logits ≈ 3e9 at the start; the reference form ended "
                "at chance or in NaN)"),
        effect="the shapes demo: reference against reference + small_gate_init, both terms (10.0% vs 40.2%)"),
    Departure(
        "post_relu_similarity_features", "post_relu_similarity_features", False, True,
        summary=("R from ReLU(conv_b's output): the non-negative part the block passes on; reference: conv_b's "
                 "signed BN output before the residual add"),
        reason="T = cos(π_i, π_j) ≥ 0 can never reach a negative R",
        effect="prunelab form against reference form (Similarity page: R heatmaps of both forms)"),
    Departure(
        "gates_only_similarity", "gates_only_similarity", False, True,
        summary=("the similarity term trains the gates' own parameters toward a detached R; reference: T and R "
                 "both attached, so the term trains the backbone as well as the gates"),
        reason=("measured on shapes: with the backbone in the term, ||T − R|| rose (the backbone moved R while "
                "chasing it)"),
        effect="||T − R|| and the feature/gate rank correlation, prunelab against reference form"),
    Departure(
        "smoothed_gate_cosine", "smoothed_gate_cosine", False, True,
        summary="T's cosine divides by sqrt(|π|² + 0.01²); reference: F.normalize (max(|π|, 1e-12))",
        reason="bounds the gradient of a near-zero gate vector (a hard floor sent γ = 10 runs to NaN)",
        effect="tests/prunelab/methods/manidp/test_gates.py (the cosine's gradient bound)"),
    Departure(
        "detached_complexity_weight", "detached_complexity_weight", False, True,
        summary="λ(x_i) is computed from a detached CE_i; reference: CE_i stays attached inside λ(x_i)",
        reason=("attached, dλ/dCE_i = −λ'/C < 0 rewards a higher loss on easy images in exchange for "
                "sparsity; detached, λ(x_i) is only a per-image weight"),
        effect="training loss and accuracy, prunelab against reference form"),
    Departure(
        "pair_quantile_thresholds", "pair_quantile_thresholds", False, True,
        summary=("ξ^l keeps a fraction η of the (image, channel) pairs of a 2,000-image calibration sample, "
                 "followed by a moving average within the epoch, η on a cosine over the first half of the steps; "
                 "reference: ξ^l = the mean saliency (over the epoch's training images) of the channel at rank "
                 "ceil(η c_l), set after every epoch from the second on, η(e) on a cosine over all epochs"),
        reason=("once gates differ between images, channel-mean thresholds keep far fewer pairs than η (22% of "
                "channels at η = 0.7 on shapes), so runs at the same target differed in compute"),
        effect="density reached against the target (test_density, macs_reduction), prunelab against reference"),
    Departure(
        "sampled_initial_c", "sampled_initial_c", False, True,
        summary=("C for the first epoch from the mean CE of 2,000 training images in training mode; reference: "
                 "of the whole training set in evaluation mode"),
        reason="one pass over 2,000 images instead of the whole training set before training starts",
        effect="complexity_c of the first epoch (metrics.jsonl)"),
)


class ManiDPConfig(MethodWithForm):
    """ManiDP (Tang et al., 2021): per-image gates with complexity and similarity alignment."""

    facts: ClassVar[MethodFacts] = MethodFacts(label="ManiDP", short="manidp",
                                               artefacts=(PER_IMAGE, PROBE, MANIDP_INFO),
                                               reference_code=MANIDP_REFERENCE_CODE,
                                               departures=MANIDP_DEPARTURES, order=2,
                                               colour="#f18f01", symbols=("diamond", "x", "cross", "star-diamond",
                                                                          "diamond-wide", "hourglass"),
                                               marker_size=10, help="a ManiDP run (`python -m prunelab run manidp`)",
                                               overview=(
        "**ManiDP** learns a gate per layer that keeps a different set of channels for every image, so "
        "easy images run a smaller sub-network than hard ones."),
                                               model_kind="dense ManiDP network with its gates",
                                               model_note=ONNX_NOTE, live_panel="gates", settings=settings,
                                               variant=variant, parent_field="init_from",
                                               claims=deferred(CLAIMS_MODULE, "setting_claims"),
                                               run_figures=deferred(CLAIMS_MODULE, "with_matched_accuracy"),
                                               budget_reference="ResNet-56",
                                               formulas=deferred("prunelab.methods.manidp.formulas", "formulas"),
                                               safeguards=(
        "every image keeps its most salient channel in every gated layer: the reference zeroes a layer whose "
        "channels all fall below the threshold, which no sliced sub-network or sparse executor can run",))

    name: Literal["manidp"] = "manidp"
    form: Form = Field("reference", title="Form", description=FORM_DESCRIPTION,
                       json_schema_extra=field_facts(form=True))
    lambda_prime: float = Field(0.1, ge=0.0, le=100.0, title="λ': max sparsity weight", description=(
        "maximum sparsity weight lambda' (default by form: reference 0.1, the authors' lambda_lasso; prunelab 0.05)"),
        json_schema_extra=field_facts(form=True, sweep="lp", aliases=("lambda'",)))
    gamma_sim: float = Field(0.1, ge=0.0, le=100.0, title="γ: similarity weight", description=(
        "similarity-alignment weight gamma (default by form: reference 0.1, the authors' lambda_graph; prunelab 3: "
        "on shapes, resnet20, 3 epochs, gamma = 1 lowered ||T - R|| by 9%, gamma = 3 by 36%)"),
        json_schema_extra=field_facts(form=True, sweep="g", aliases=("gamma",)))
    gamma_c: float = Field(1.0, ge=0.0, le=10.0, title="Complexity exponent", description="complexity exponent",
                           json_schema_extra=field_facts(form=True, sweep="gc"))
    complexity_scale: float = Field(0.5, gt=0.0, le=10.0, title="Complexity scale",
                                    description="C = scale * previous epoch mean CE")
    target_density: float = Field(0.7, gt=0.0, le=1.0, title="Target density",
                                  description="fraction of channels kept per layer at the end",
                                  json_schema_extra=field_facts(form=True, sweep="d", aliases=("density",)))
    complexity: bool = Field(True, title="Complexity-adaptive sparsity",
                             description="complexity-adaptive sparsity (off: one weight for every image)",
                             json_schema_extra=field_facts(form=True))
    similarity: bool = Field(True, title="Similarity alignment", description="similarity alignment term",
                             json_schema_extra=field_facts(form=True))
    gate_lr_scale: float = Field(1.0, gt=0.0, le=100.0, title="Gate learning-rate scale", description=(
        "the gates' learning rate over the backbone's; at most 100 (at 10 the saliencies already grew without "
        "bound, then NaN)"))
    probe_size: int = Field(64, ge=4, le=1024, title="Probe images",
                            description="test images saved for the similarity pages")
    init_from: str | None = Field(None, title="Parent run", description=(
        "parent run whose model.pt initialises the backbone: its run id in the same runs folder (suites "
        "record ids, never a machine's absolute path), or a run directory"))
    # departures from the authors' code (MANIDP_DEPARTURES): unset, each takes its form's value
    small_gate_init: bool = Field(False, title="Departure: small gate init",
                                  description=MANIDP_DEPARTURES[0].summary)
    post_relu_similarity_features: bool = Field(False, title="Departure: post-ReLU R",
                                                description=MANIDP_DEPARTURES[1].summary)
    gates_only_similarity: bool = Field(False, title="Departure: similarity trains gates only",
                                        description=MANIDP_DEPARTURES[2].summary)
    smoothed_gate_cosine: bool = Field(False, title="Departure: smoothed gate cosine",
                                       description=MANIDP_DEPARTURES[3].summary)
    detached_complexity_weight: bool = Field(False, title="Departure: detached complexity weight",
                                             description=MANIDP_DEPARTURES[4].summary)
    pair_quantile_thresholds: bool = Field(False, title="Departure: pair-quantile thresholds",
                                           description=MANIDP_DEPARTURES[5].summary)
    sampled_initial_c: bool = Field(False, title="Departure: sampled initial C",
                                    description=MANIDP_DEPARTURES[6].summary)

    @classmethod
    def form_defaults(cls) -> dict[str, tuple[Any, Any]]:
        return {"lambda_prime": (0.1, 0.05), "gamma_sim": (0.1, 3.0)}



METHOD_CONFIG = ManiDPConfig

NAME: str = METHOD_CONFIG.model_fields["name"].default  # the method's name, for code that names it
