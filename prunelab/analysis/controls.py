"""Controls: a variant set against the variant its runs derive from, at equal MACs and budget, over seeds.

The questions a careful reader of a pruning paper asks are answered by control runs, each of which names its
parent (summary.json's `parent_run`): random channels keep a slimming run's per-layer counts with channels
drawn at random (does the |γ| criterion matter?); a from-scratch network trains a slimming run's architecture
from fresh weights (do the inherited weights matter? Liu et al., ICLR 2019), or a uniformly thinner network of
a ManiDP run's mean MACs per image (does per-image routing pay over a static network of equal average MACs?).

Each control run is paired with its own parent (the same seed, by construction of the `controls` suite), and
the claim that the method beats its control is judged on the paired differences

    d_s = acc(control_s) - acc(parent_s),   mean(d) ± sd(d) over the n pairs,

beyond seed noise when |mean(d)| > NOISE_Z * sd(d) / sqrt(n) (`lessons.paired_verdict`, the rule of the
ManiDP ablation's matched-accuracy claims). The verdict reads on the method's claim: "holds" (the method beats
its control), "within seed noise" (the control matches it at this scale: that is the lesson, and the finding
says so plainly), "does not hold" (the control beats it). Controls and parents must share a setting
(`lessons.SETTING_KEYS`: the same data, network and epochs in all), so only equal budgets are compared.

The control methods hold their questions in their own packages (`MethodFacts.controls`, in
`prunelab/methods/<name>/claims.py`, built with `against_parents`); `controls(table)` loops over them within each
setting, and `Control.claim()` gives each as a `lessons.Claim` for the claims tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from prunelab.analysis.lessons import Claim, Stat, by_setting, paired_verdict, stat
from prunelab.config import METHOD_FACTS


@dataclass(frozen=True)
class Question:
    """What a control asks of the method it controls, in the words the pages show."""

    question: str  # 'Does the |γ| criterion matter?'
    lesson: str  # the method's claim the verdict judges: 'the |γ| criterion beats random channels ...'
    paper: str  # the papers' words next to the measured figure
    matches: str  # what it means when the control matches the method: '... buys nothing measurable here'


@dataclass(frozen=True)
class Control:
    """One control variant against the variant of its runs' parents: figures over seeds and the verdict."""

    lesson: str  # Question.lesson (with its setting, when several are judged)
    question: str
    control: str  # the control's variant
    reference: str  # the variant it controls
    control_method: str
    reference_method: str
    acc: Stat  # test accuracy of the control's runs
    reference_acc: Stat  # of their parents
    macs: Stat  # MACs per image of the control's runs
    reference_macs: Stat
    difference: Stat  # control minus parent test accuracy, pair by pair
    paper: str
    verdict: str  # lessons.paired_verdict on "the method beats its control"
    finding: str  # the verdict in one plain sentence

    def claim(self) -> Claim:
        """This control as a claim of the claims tables: the method beats its control."""
        measured = (f"test accuracy: {self.reference} {self.reference_acc.text('.1f', percent=True)} at "
                    f"{_macs(self.reference_macs)} MACs; {self.control} {self.acc.text('.1f', percent=True)} at "
                    f"{_macs(self.macs)} MACs; paired difference (control − parent) "
                    f"{self.difference.text('.1f', percent=True)}. {self.finding}")
        gap = f"{self.difference.mean * 100:+.1f} points (control − parent)" if self.difference.n else "no pairs"
        return Claim(self.lesson, self.paper, measured, self.verdict, self.question, gap)


def _macs(value: Stat) -> str:
    return f"{value.mean / 1e6:.2f} M" if value.n else "?"


def _finding(question: Question, control: str, reference: str, difference: Stat, verdict: str) -> str:
    """The verdict in one sentence a student reads without the table."""
    points = f"{abs(difference.mean) * 100:.1f} points"
    if verdict == "within seed noise":
        return (f"{control} matches {reference} at this scale ({difference.mean * 100:+.1f} ± "
                f"{difference.std * 100:.1f} points over {difference.n} seeds, within seed noise): "
                f"{question.matches}. That is the lesson.")
    if verdict == "holds":
        return f"{reference} beats {control} by {points}, beyond seed noise."
    if verdict == "does not hold":
        return (f"{control} beats {reference} by {points}, beyond seed noise: the opposite of the method's claim at "
                f"this scale.")
    if verdict.startswith(("holds", "does not hold")):
        return f"{control} and {reference} differ by {points} on one seed: the noise is unknown."
    return "Not enough runs to judge."


def against_parents(table: pd.DataFrame, method: str,
                    question_for: Callable[[str], Question | None]) -> list[Control]:
    """Each variant of `method` in `table` (an ablation table: `run_id`, `parent_run`, `method`, `variant`,
    `test_acc`, `macs_per_image`) against the variant of its runs' parents, one Control per pair of variants;
    `question_for(parent's method)` says what the control asks of that method (None: no question, skipped).
    Each control run is paired with its own parent; runs whose parent is not in `table` are left out."""
    needed = {"run_id", "parent_run", "method", "variant", "test_acc", "macs_per_image"}
    if table.empty or not needed <= set(table.columns):
        return []
    runs = table[table["method"] == method]
    runs = runs[runs["parent_run"].notna()]
    parents = table.drop_duplicates("run_id").set_index("run_id")
    found = []
    for variant, group in runs.groupby("variant", sort=False):
        group = group[group["parent_run"].astype(str).isin(parents.index)]
        if group.empty:
            continue
        mothers = parents.loc[group["parent_run"].astype(str)]
        for (reference, reference_method), pair in group.groupby(
                [mothers["variant"].to_numpy(), mothers["method"].to_numpy()], sort=False):
            question = question_for(str(reference_method))
            if question is None:
                continue
            mine = parents.loc[pair["parent_run"].astype(str)]
            difference = stat(pair["test_acc"].to_numpy(float) - mine["test_acc"].to_numpy(float))
            verdict = paired_verdict(difference, greater=False)  # the method's claim: the control is lower
            found.append(Control(
                question.lesson, question.question, str(variant), str(reference), method, str(reference_method),
                stat(pair["test_acc"]), stat(mine["test_acc"]), stat(pair["macs_per_image"]),
                stat(mine["macs_per_image"]), difference, question.paper, verdict,
                _finding(question, str(variant), str(reference), difference, verdict)))
    return found


def controls(table: pd.DataFrame) -> list[Control]:
    """Every control the runs in `table` (an ablation table) hold, each control method's in the methods' order,
    within each setting (`lessons.by_setting`: a control names its setting when several are judged)."""
    if table.empty:
        return []
    judges = [facts.controls for facts in METHOD_FACTS.values() if facts.controls is not None]
    return by_setting(table, lambda part: [control for judge in judges for control in judge(part)])


CONTROL_COLUMNS = ["question", "variant", "method", "role", "accuracy", "± acc", "seeds", "MACs / image",
                   "difference", "paper", "verdict"]


def control_table(found: Sequence[Control]) -> pd.DataFrame:
    """Two rows per control, the variant it controls and the control (CONTROL_COLUMNS): accuracy mean and std
    over seeds, MACs per image, the paired difference (control − parent, in points), the paper's words and
    the verdict; figures as fractions (the pages format them)."""
    rows = []
    for control in found:
        for role, variant, method, acc, macs in (
                ("method", control.reference, control.reference_method, control.reference_acc,
                 control.reference_macs),
                ("control", control.control, control.control_method, control.acc, control.macs)):
            is_control = role == "control"
            rows.append({"question": control.question, "variant": variant, "method": method, "role": role,
                         "accuracy": acc.mean, "± acc": acc.std, "seeds": acc.n, "MACs / image": macs.mean,
                         "difference": control.difference.mean if is_control else float("nan"),
                         "paper": control.paper if is_control else "",
                         "verdict": control.verdict if is_control else ""})
    return pd.DataFrame(rows, columns=CONTROL_COLUMNS)
