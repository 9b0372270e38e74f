"""ManiDP (Tang et al., CVPR 2021): per-image gates pick a sub-network for every image.

- `gates.py`: the channel gate pi(x), its threshold mask and the cosine matrices T and R;
- `macs.py`: per-image MACs from the masks, checked against FlopCounterMode on the sliced sub-network;
- `executor.py`: the sparse executor, which runs only an image's kept channels;
- `unit_trace.py`: where a re-implementation first departs from the masked model;
- `report.py`: the per-image table, the probe set's T and R, the summary figures (pure functions);
- `method.py`: the plug-in `ManiDP`: losses, thresholds, checks, artefacts.
"""

from prunelab.methods.manidp.method import ManiDP

__all__ = ["ManiDP"]
