"""ManiDP what-if on a page: a target-density slider over `prunelab.methods.manidp.whatif` (the computation
is the core's).

A density whose what-if is stored (`prunelab.analysis.views`: shipped with a demo run, or computed on request
before) is drawn at once; any other is computed only when asked, with a progress bar, and stored next to
the run (a demo run's in the derived-file cache) so it is computed once. A read-only viewer
(`app_components.viewer_mode`) offers the stored densities alone and computes none."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from app_components import common, viewer_mode
from app_components.images import show_images
from prunelab.analysis import figures, results
from prunelab.runs.run_format import MODEL_FILE, RunStoreError

if TYPE_CHECKING:  # the core's what-if imports torch: loaded when the section is first shown
    from prunelab.methods.manidp.whatif import WhatIf

GALLERY = 8  # images per moved-group gallery


FINE_GRID = tuple(round(0.05 * step, 2) for step in range(1, 21))  # what a run without a stored curve offers


@st.cache_data(show_spinner=False, max_entries=64)
def _stored(path: str, stored: tuple[float, ...], density: float) -> WhatIf | None:
    from prunelab.analysis.views import load_whatif

    return load_whatif(path, density)


def _densities(run: Path, stored: list[float]) -> list[float]:
    """A demo run with a stored curve, or any run on a viewer, offers its stored densities only (each drawn at once);
    others the fine grid too."""
    if stored and (results.is_demo(run) or viewer_mode.active()):
        return stored
    return sorted({*FINE_GRID, *stored})


def _compute(run: Path, density: float) -> None:
    """Compute the what-if at `density` with a progress bar, store it, and draw the page again."""
    from prunelab.analysis import views

    bar = st.progress(0.0, text="Starting…")
    out = views.cache_dir(run) if results.is_demo(run) else None  # a demo run stays read-only
    views.compute_whatif(run, [density], out_dir=out, report=lambda fraction, text: bar.progress(fraction, text=text))
    _stored.clear()
    st.rerun()


def show(run: Path, names: list[str]) -> None:
    """The what-if section of a finished ManiDP run: slider, figures, MACs histograms and moved images."""
    if not (Path(run) / MODEL_FILE).is_file():
        demo = " This bundled demo run was shipped without it." if results.is_demo(run) else ""
        st.info(f"The what-if needs the run's gated model ({MODEL_FILE}), written when a run finishes.{demo}"
                + viewer_mode.offer(" Train a ManiDP run (Runs page) to try it."))
        return
    from prunelab.analysis import views
    from prunelab.data import DatasetError
    from prunelab.methods.manidp.whatif import target_density

    own = target_density(run) or 0.7
    stored = views.whatif_densities(run)
    if not stored and viewer_mode.active():  # no slider over densities none of which can be shown
        st.info(f"No what-if is stored with this run. {viewer_mode.NOT_COMPUTED}")
        return
    options = _densities(run, stored)
    if st.session_state.get("pi_whatif_density") not in options:
        st.session_state.pop("pi_whatif_density", None)  # another run, with other densities
    density = st.select_slider(
        "Target density (fraction of (image, channel) pairs kept per layer)", options, key="pi_whatif_density",
        value=min(options, key=lambda d: abs(d - own)), format_func=lambda d: f"{d:.2f}",
        help=f"The run was trained at {own:.2f}. The thresholds are recalibrated on the run's calibration images "
             "with the run's own rule; the weights stay as trained.")
    try:
        result = _stored(str(run), tuple(stored), float(density)) if density in stored else None
        if result is None and viewer_mode.active():  # a stored density whose file no longer holds it
            st.info(f"The what-if at density {density:.2f} is not stored with this run. {viewer_mode.NOT_COMPUTED}")
            return
        if result is None:
            st.info(f"The what-if at density {density:.2f} is not computed yet. It recalibrates the thresholds "
                    "(several passes over the calibration images) and evaluates every test image: tens of seconds "
                    "on a CPU, once; the result is stored next to the run.")
            if st.button(f"Compute the what-if at density {density:.2f}", key="pi_whatif_compute"):
                _compute(run, float(density))
            return
    except RunStoreError as error:  # model.pt or per_image.parquet missing (GatedModelMissing is one)
        st.info(f"Cannot recalibrate this run: {common.md_text(error)}")
        return
    except DatasetError as error:
        st.warning(f"The run's dataset cannot be loaded, so its images cannot be evaluated: {common.md_text(error)}")
        return
    except Exception as error:  # noqa: BLE001 - a broken or foreign run: say why instead of a traceback
        st.warning(f"Cannot recalibrate this run: {common.md_text(error)}")
        return
    if result.calibration.images == "test":
        st.info("This run's training images are not on this machine (only its test images are shipped), so the "
                "thresholds are calibrated on its test images instead of the run's calibration sample of training "
                "images: the density on the test images then matches the target a little more closely than the "
                "run's own rule would, and even at the run's own target the figures differ slightly from the "
                "run as trained.")
    _figures(result)
    st.plotly_chart(figures.whatif_histogram(result), key="pi_whatif_hist")
    _moves(run, result, names)


def _figures(result: WhatIf) -> None:
    trained = result.trained
    cols = st.columns(4)
    cols[0].metric("Test accuracy at this density", f"{result.test_acc:.1%}",
                   f"{result.test_acc - trained['test_acc']:+.1%}", help=f"As trained: {trained['test_acc']:.1%}.")
    cols[1].metric("Mean MACs per image at this density", f"{result.macs['mean'] / 1e6:.3f} M",
                   f"{result.macs['mean'] / trained['macs_mean'] - 1:+.1%}", delta_color="inverse",
                   help=f"As trained: {trained['macs_mean'] / 1e6:.3f} M; dense network "
                        f"{result.macs_dense / 1e6:.3f} M ({1 - result.macs['mean'] / result.macs_dense:.1%} fewer "
                        "MACs at this density).")
    cols[2].metric("Spread of MACs per image (std)", f"{result.macs['std'] / 1e6:.3f} M",
                   f"{result.macs['std'] / trained['macs_std'] - 1:+.1%}" if trained["macs_std"] else None,
                   delta_color="off", help=f"10th-90th percentile: {result.macs['p10'] / 1e6:.3f}-"
                                           f"{result.macs['p90'] / 1e6:.3f} M (as trained "
                                           f"{trained['macs_p10'] / 1e6:.3f}-{trained['macs_p90'] / 1e6:.3f} M).")
    cols[3].metric("Mean density on the test images", f"{result.density_measured:.3f}",
                   help=f"As trained: {trained['density']:.3f}. "
                        "Fraction of each gated layer's channels kept, averaged over test images and layers. "
                        f"Thresholds settled after {result.calibration.passes} calibration passes.")
    if result.density - result.reachable > 0.01:
        st.warning(f"The gates output exactly 0 for {1 - result.reachable:.1%} of the (image, channel) pairs of the "
                   f"calibration images; such a channel is pruned at any threshold, so this run keeps at most "
                   f"{result.reachable:.2f} of its channels, whatever the target.")


def _moves(run: Path, result: WhatIf, names: list[str]) -> None:
    frame = result.per_image
    st.markdown("**Which images move between the cheap and the costly half?** Each image's group is the half "
                "of the MACs ranking it falls in, as trained (rows) and at this density (columns).")
    st.dataframe(result.moves, key="pi_whatif_moves")
    wrong, right = result.became_wrong, result.became_right
    st.caption(f"{len(result.moved)} of {len(frame)} test images change half: "
               f"{len(result.crossed('cheap', 'costly'))} from cheap to costly, "
               f"{len(result.crossed('costly', 'cheap'))} from costly to cheap. {wrong} images become wrong and "
               f"{right} become right.")
    for before, after in (("cheap", "costly"), ("costly", "cheap")):
        rows = result.crossed(before, after)
        if rows.empty:
            continue
        st.markdown(f"**{before} as trained → {after} at density {result.density:.2f}** "
                    f"({len(rows)} images{f', the first {GALLERY}' if len(rows) > GALLERY else ''}; "
                    "MACs at this density)")
        show_images(str(run), _rows(rows.head(GALLERY)), names, f"pi_whatif_{before}_{after}")


def _rows(frame: Any) -> Any:
    return frame[["index", "label", "pred", "loss", "macs"]]
