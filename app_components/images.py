"""Test images on a page: upscaled, captioned with label, prediction, loss and MACs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from app_components import common

UPSCALE = 4  # 32x32 test images shown at 128x128 (nearest neighbour keeps the pixels crisp)


def class_name(names: Sequence[str], label: object) -> str:
    return names[int(label)] if 0 <= int(label) < len(names) else str(label)


def caption(row: pd.Series, names: Sequence[str]) -> str:
    """'#12 cat→dog · loss 1.23 · 4.567 M' (a figure the row lacks is left out; an unknown prediction is '?')."""
    label = class_name(names, row["label"])
    pred = class_name(names, row["pred"]) if pd.notna(row.get("pred")) else "?"
    text = f"#{int(row['index'])} {label}→{pred}"
    text += f" · loss {row['loss']:.2f}" if pd.notna(row.get("loss")) else ""
    return text + (f" · {row['macs'] / 1e6:.3f} M" if pd.notna(row.get("macs")) else "")


def show_images(path: str, rows: pd.DataFrame, names: Sequence[str], key: str) -> None:
    """A row of upscaled test images captioned index, label→prediction, loss and MACs (a table when the
    run's dataset cannot be loaded)."""
    images = common.cached_test_images(path, tuple(int(i) for i in rows["index"]))
    if images is None:
        shown = [c for c in ("index", "label", "pred", "loss", "macs") if c in rows]
        st.dataframe(rows[shown], hide_index=True, key=key)
        return
    big = [np.kron(image, np.ones((UPSCALE, UPSCALE, 1), dtype=np.uint8)) for image in images]
    st.image(big, caption=[caption(r, names) for _, r in rows.iterrows()], width=32 * UPSCALE, output_format="PNG")
