"""The ten classes of the embedded `shapes` set, by label (no torch: the pages name them without loading it)."""

CLASS_NAMES = ("circle", "square", "triangle", "cross", "ring", "star", "diamond", "bar", "crescent", "heart")
