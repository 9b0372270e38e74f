"""A run's method card: its form, the formulas exactly as the run computed them, and every departure from
the authors' code with its reason and where its effect is measured.

`method_card(config)` reads only the run's validated method config (prunelab.config): each formula is chosen
by the same fields the training code branches on, so the card cannot show the paper's formula for a run
that computed another. The departures' texts live beside the fields that switch them
(`prunelab.config.Departure`, in each method's `MethodFacts.departures`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunelab.config import METHOD_FACTS, Departure
from prunelab.methods.manidp.config import NAME as MANIDP
from prunelab.methods.slimming.config import NAME as SLIMMING


@dataclass(frozen=True)
class Formula:
    label: str
    latex: str
    note: str = ""  # what in this run makes it so (e.g. "CE_i attached: the reference")


@dataclass(frozen=True)
class MethodCard:
    method: str
    form: str | None  # "reference", "prunelab" or None (a method without forms)
    formulas: list[Formula] = field(default_factory=list)
    departures: list[Departure] = field(default_factory=list)  # the departures in effect, in the facts' order
    reference_code: tuple[str, ...] = ()
    safeguards: tuple[str, ...] = ()  # changes from the authors' code in every form (MethodFacts.safeguards)

    @property
    def title(self) -> str:
        label = METHOD_FACTS[self.method].label if self.method in METHOD_FACTS else self.method
        if self.form is None:
            return label
        if not self.departures:
            return f"{label}, reference form (as the authors' code runs it)"
        names = ", ".join(d.name for d in self.departures)
        return f"{label}, {self.form} form: {len(self.departures)} departure(s) from the authors' code ({names})"


def _in_effect(config: Any) -> list[Departure]:
    facts = METHOD_FACTS.get(config.name)
    names = set(getattr(config, "departures", []) or [])
    return [d for d in (facts.departures if facts else ()) if d.name in names]


def _manidp_formulas(c: Any) -> list[Formula]:
    if c.small_gate_init:
        gate = Formula("gate", r"\pi^l(x)=\mathrm{ReLU}\big(W_2\,\mathrm{ReLU}(W_1\,p(x)+b_1)+b_2\big)",
                       "small_gate_init: W₂ ~ N(0, 0.1²), b₂ = 1, no clamp")
    else:
        gate = Formula("gate", r"\pi^l(x)=\min\big(\mathrm{ReLU}(W_2\,\mathrm{ReLU}(W_1\,p(x))+b_2),\,1000\big)",
                       "reference: W₁ (no bias) and W₂ Kaiming-normal, b₂ = 1")
    mask = Formula("mask", r"\hat\pi^l(x)=\pi^l(x)\odot\mathbb{1}[\pi^l(x)\ge\xi^l]",
                   "the indicator is a constant in backprop; every image keeps its most salient channel per layer")
    ce = r"\mathrm{sg}(CE_i)" if c.detached_complexity_weight else "CE_i"
    if c.complexity:
        weight = Formula("complexity weight",
                         rf"\lambda(x_i)={c.lambda_prime:g}\cdot\mathbb{{1}}[{ce}<C]"
                         rf"\left(\frac{{C-{ce}}}{{C}}\right)^{{{c.gamma_c:g}}},\quad "
                         rf"C={c.complexity_scale:g}\cdot\overline{{CE}}_{{\text{{previous epoch}}}}",
                         "detached_complexity_weight: sg = stop-gradient" if c.detached_complexity_weight
                         else "reference: CE_i attached, so λ(x_i) sends a gradient into each easy image's loss")
    else:
        weight = Formula("complexity weight", rf"\lambda(x_i)={c.lambda_prime:g}",
                         "complexity term off: one weight for every image")
    sparsity = Formula("sparsity", r"L_s=\sum_l \frac{1}{N}\sum_i \lambda(x_i)\,\overline{\pi^l(x_i)}")
    formulas = [gate, mask, weight, sparsity]
    if c.similarity:
        feature = r"\mathrm{ReLU}(F^l)" if c.post_relu_similarity_features else "F^l"
        t_cos = r"\cos_\epsilon" if c.smoothed_gate_cosine else r"\cos"
        if c.gates_only_similarity:
            r_term, grad = rf"\mathrm{{sg}}\big(\cos(p({feature}_i),p({feature}_j))\big)", \
                "gates_only_similarity: R detached, T differentiable in the gates' own parameters only"
        else:
            r_term, grad = rf"\cos(p({feature}_i),p({feature}_j))", \
                "reference: T and R attached, so the term trains the backbone and the gates"
        formulas.append(Formula(
            "similarity", rf"L_{{sim}}={c.gamma_sim:g}\sum_l \frac{{\lVert T^l-R^l\rVert_F^2}}{{N^2}},\ "
            rf"T^l_{{ij}}={t_cos}(\pi^l_i,\pi^l_j),\ R^l_{{ij}}={r_term}",
            grad + ("; F = conv_a after BN+ReLU, conv_b after BN (signed)" if not c.post_relu_similarity_features
                    else "; post_relu_similarity_features: R from the ReLU of conv_b's output")))
    else:
        formulas.append(Formula("similarity", r"L_{sim}=0", "similarity term off"))
    formulas.append(Formula("loss", r"L=\frac{1}{N}\sum_i CE_i+L_s+L_{sim}"))
    if c.pair_quantile_thresholds:
        formulas.append(Formula(
            "thresholds", r"\xi^l=\text{quantile}_{1-\eta(t)}\{\pi^l_c(x_i)\},\ "
            r"\eta(t)=\eta^*+(1-\eta^*)\tfrac{1+\cos(\pi\min(1,t/(T/2)))}{2}",
            f"pair_quantile_thresholds: (image, channel) pairs of 2,000 training images, η* = {c.target_density:g}"))
    else:
        formulas.append(Formula(
            "thresholds", r"\xi^l=\mathrm{rank}_{\lceil\eta(e)c_l\rceil}\Big(\tfrac{1}{n}\sum_{i}\pi^l(x_i)\Big),\ "
            r"\eta(e)=\tfrac{1+\eta^*}{2}+\tfrac{1-\eta^*}{2}\cos\big(\pi\tfrac{e+1}{E}\big)",
            f"reference: channel means over epoch e's training images, set after every epoch from the second on, "
            f"η* = {c.target_density:g}"))
    return formulas


def _slimming_formulas(c: Any) -> list[Formula]:
    scope = getattr(c, "prune_residual", False)
    where = "every BN" if scope else "each block's interior BN (bn_a)"
    decay = getattr(c, "bn_weight_decay", None)
    decay_text = "the run's weight decay" if decay is None else f"weight decay {decay:g}"
    return [
        Formula("objective", rf"L=\sum_i CE(f(x_i),y_i)+{c.sparsity_lambda:g}\sum_{{\gamma}}|\gamma|",
                f"L1 on the γ of {where} (a subgradient step); γ gets {decay_text}"),
        Formula("pruning", rf"\text{{keep }}c\iff|\gamma_c|>\theta,\ \theta=\text{{quantile}}_{{{c.prune_ratio:g}}}"
                           r"\{|\gamma|\}", f"one global threshold over {where}; at least "
                           f"{c.min_channels} channel(s) kept per layer"),
        Formula("fine-tuning", rf"\text{{{c.finetune_epochs} epochs on the smaller network}}"),
    ]


FORMULAS = {MANIDP: _manidp_formulas, SLIMMING: _slimming_formulas}


def method_card(config: Any) -> MethodCard:
    """The card of a run's method config (`RunConfig.method`)."""
    facts = METHOD_FACTS.get(config.name)
    build = FORMULAS.get(config.name)
    return MethodCard(config.name, getattr(config, "form", None), build(config) if build else [],
                      _in_effect(config), facts.reference_code if facts else (), facts.safeguards if facts else ())
