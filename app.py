"""PruneLab's Streamlit app: `streamlit run app.py`.

The Runs page (home) starts and watches runs; the analysis pages read finished run directories.
An analysis page whose file is missing is left out of the navigation so the app still starts.
"""

from pathlib import Path

import streamlit as st

from pages import common

ROOT = Path(__file__).resolve().parent
PAGES = [
    ("pages/runs.py", "Runs", ":material/play_circle:"),
    ("pages/slimming.py", "Slimming", ":material/content_cut:"),
    ("pages/per_image.py", "Per-image MACs", ":material/image:"),
    ("pages/similarity.py", "Similarity", ":material/grid_on:"),
    ("pages/ablations.py", "Ablations", ":material/table_chart:"),
]

st.set_page_config(page_title="PruneLab", page_icon=":material/content_cut:", layout="wide")
pages = [st.Page(ROOT / path, title=title, icon=icon, default=(title == "Runs"))
         for path, title, icon in PAGES if (ROOT / path).is_file()]
navigation = st.navigation(pages)
common.start_umap_warm_up()
st.sidebar.caption("PruneLab: train small CNNs, prune their channels statically (Network Slimming) or per "
                   "image (ManiDP), and see what each method keeps and what it costs in MACs.")
navigation.run()
