"""Test images on a page: upscaled, captioned with label, prediction, loss and MACs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from app_components import common
from prunelab.analysis import figures
from prunelab.analysis.tables import class_name

UPSCALE = 4  # 32x32 test images shown at 128x128 (nearest neighbour keeps the pixels crisp)


PER_ROW = 8  # images per row of a gallery unless the page lets the reader choose
BREAK = "\u200b"  # a zero-width space: a long 'automobile→automobile' may wrap after its arrow, never mid-word
# one gallery: exactly `per_row` images per row, each as wide as its share of the row, captions wrapped only
# between words, in a font that shrinks with the images (cqw: a percentage of the gallery's width)
GRID_CSS = """<style>
.st-key-{key} [data-testid="stElementContainer"], .st-key-{key} [data-testid="stFullScreenFrame"],
.st-key-{key} [data-testid="stFullScreenFrame"] > div {{width: 100%;}}
.st-key-{key} [data-testid="stImage"] {{display: grid; grid-template-columns: repeat({per_row}, minmax(0, 1fr));
  gap: 0.5rem; width: 100%; container-type: inline-size;}}
.st-key-{key} [data-testid="stImageContainer"] {{min-width: 0; width: 100%;}}
.st-key-{key} [data-testid="stImageContainer"] img, .st-key-{key} [data-testid="stImageCaption"] {{
  width: 100% !important; image-rendering: pixelated;}}
.st-key-{key} [data-testid="stImageCaption"] p {{font-size: clamp(9px, calc(100cqw / {per_row} / 8), 14px);
  overflow-wrap: normal; word-break: normal; hyphens: none;}}
</style>"""


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], key: str, per_row: int = PER_ROW) -> None:
    """`images` in rows of exactly `per_row` (Streamlit's own list wraps wherever its fixed widths run out,
    e.g. 7 + 1 for 8), each captioned, no caption broken inside a word."""
    with st.container(key=f"grid_{key}"):
        st.html(GRID_CSS.format(key=f"grid_{key}", per_row=int(per_row)))
        st.image(png_files(tuple(images)), caption=list(captions), width=32 * UPSCALE, output_format="PNG")


@st.cache_data(show_spinner=False, max_entries=256)
def png_files(images: tuple[np.ndarray, ...]) -> list[bytes]:
    """`images` as PNG files, encoded once per server for every session that shows them (Streamlit encodes an
    array on every run of every session)."""
    return [figures.png_bytes(image) for image in images]


def caption(row: pd.Series, names: Sequence[str]) -> str:
    """'#12 cat→dog · loss 1.23 · 4.567 M' (a figure the row lacks is left out; an unknown prediction is '?'; a
    zero-width space after the arrow lets a narrow caption wrap there)."""
    label = common.md_text(class_name(names, row["label"]))  # a folder dataset's class is its folder's name
    pred = common.md_text(class_name(names, row["pred"])) if pd.notna(row.get("pred")) else "?"
    text = f"#{int(row['index'])} {label}→{BREAK}{pred}"
    text += f" · loss {row['loss']:.2f}" if pd.notna(row.get("loss")) else ""
    return text + (f" · {row['macs'] / 1e6:.3f}\u00a0M" if pd.notna(row.get("macs")) else "")  # no break before M


def show_images(path: str, rows: pd.DataFrame, names: Sequence[str], key: str, per_row: int = PER_ROW) -> None:
    """Upscaled test images, `per_row` to a row, captioned index, label→prediction, loss and MACs (a table
    when the run's dataset cannot be loaded)."""
    images = common.cached_test_images(path, tuple(int(i) for i in rows["index"]))
    if images is None:
        shown = [c for c in ("index", "label", "pred", "loss", "macs") if c in rows]
        st.dataframe(rows[shown], hide_index=True, key=key)
        return
    image_grid([upscale(image) for image in images], [caption(r, names) for _, r in rows.iterrows()], key, per_row)


def upscale(image: np.ndarray) -> np.ndarray:
    """A uint8 [32, 32, 3] test image UPSCALE times larger, each pixel a block (crisp when shown)."""
    return figures.upscale(image, UPSCALE)
