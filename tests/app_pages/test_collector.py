"""app_components.collector: the objects imports made are frozen once, so Streamlit's full collection after each
script run skips them."""

from __future__ import annotations

import gc
import sys
import types

from app_components import collector


def test_a_run_that_imported_modules_freezes_once_and_the_full_collection_skips_what_it_froze() -> None:
    collector.freeze_long_lived()  # whatever earlier tests imported
    assert not collector.freeze_long_lived()  # nothing imported since: nothing to do
    name = "prunelab_collector_probe"
    sys.modules[name] = types.ModuleType(name)  # a page's first view imports a module
    try:
        probe = [[i] for i in range(1000)]  # lists: objects the collector tracks
        frozen = gc.get_freeze_count()
        assert collector.freeze_long_lived()
        assert gc.get_freeze_count() >= frozen + len(probe)  # what was alive is in the permanent generation
        assert not any(probe[0] is seen for seen in gc.get_objects(generation=2))  # a full collection skips it
        assert not collector.freeze_long_lived()
    finally:
        del sys.modules[name]
        gc.unfreeze()
