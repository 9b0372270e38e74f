"""Ablation-table rows for the claims' tests (`prunelab.analysis.lessons` and each method's `claims.py`)."""

from __future__ import annotations


def variant_rows(method: str, variant: str, values: dict[str, list[float]], **fixed: object) -> list[dict]:
    """One row per seed (0, 1, ...) of a variant in the shapes setting (resnet20 w0.5, 6 epochs): `values` gives
    each figure's value per seed, `fixed` any other column."""
    n = len(next(iter(values.values())))
    base = {"method": method, "variant": variant, "dataset": "shapes", "model": "resnet20", "width": 0.5,
            "epochs_total": 6, **fixed}
    return [{**base, "name": f"{variant}-s{i}", "seed": i, **{k: v[i] for k, v in values.items()}}
            for i in range(n)]
