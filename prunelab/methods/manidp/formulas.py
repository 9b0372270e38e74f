"""ManiDP's formulas on the method card (`prunelab.analysis.method_card`), exactly as a run computed them: each
chosen by the config fields the training code branches on (the form's departures, the terms switched on), with
the run's own numbers (the method's `MethodFacts.formulas`)."""

from __future__ import annotations

from typing import Any

from prunelab.analysis.method_card import Formula


def formulas(c: Any) -> list[Formula]:
    """The formulas of a run's ManiDP config (`ManiDPConfig`): the gate, its mask, the complexity weight, the
    sparsity and similarity terms, the loss and the thresholds, each in the variant the config selects."""
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
