"""PruneLab's Streamlit app: `streamlit run app.py` (a read-only viewer for a class: `streamlit run app.py --
--viewer`, or `PRUNELAB_VIEWER=1`; `app_components.viewer_mode`).

The Overview (home) charts the bundled demo; the Runs page starts runs, Live training watches one; the
analysis pages read finished run directories.
The pages (files in `app_pages/`), their titles and URL paths are listed in `app_components.shell`; an
analysis page whose file is missing is left out of the navigation so the app still starts.
"""

import sys

import streamlit as st

from app_components.preload import preload_chart_library

st.set_page_config(page_title="PruneLab", page_icon=":material/content_cut:", layout="wide")
preload_chart_library()  # first, so the browser compiles the chart code while the server works

from app_components import collector, common, shell, viewer_mode  # noqa: E402 - after the preload: these imports take ~0.4 s

if problem := viewer_mode.apply_options(sys.argv):  # before any page: a viewer must be one from its first page
    st.error(problem)
    st.stop()
navigation = shell.navigation()
st.sidebar.caption("PruneLab: train small CNNs, prune their channels statically (Network Slimming) or per "
                   "image (ManiDP), and see what each method keeps and what it costs in MACs.")
if viewer_mode.active():
    st.sidebar.caption(viewer_mode.SIDEBAR)
try:
    with shell.app_run():
        navigation.run()
finally:  # once the first page is drawn, so the compile does not compete with it for the CPU
    common.start_umap_warm_up()
    collector.freeze_long_lived()  # Streamlit's full collection after this run then skips what the imports made
