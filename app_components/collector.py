"""Keep Streamlit's garbage collection after every script run cheap: freeze the objects imports made.

Streamlit runs a full collection, `gc.collect(2)`, after every script run (its `runner.postScriptGC` option), and
a full collection walks every object the server holds: some 450,000 once the app has imported torch, numba,
plotly and pandas, 0.2-0.7 s on a 2-core machine, for every page a session opens. In a viewer serving a class it
was the largest single cost: 38% of the server's CPU while 4 sessions opened three pages each (py-spy, 100 Hz).
`gc.freeze()` moves every object alive now into a permanent generation that collections skip. After a script
run that imported modules (a page's first view in this process), the new objects are mostly modules, classes
and functions, alive for the life of the server, so they are collected once and frozen; reference counting still
frees any frozen object nothing points to. What a session held at that moment stays frozen too: a few objects,
a handful of times per server (the module count grows only until every page has been opened once).
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_when_frozen = 0  # len(sys.modules) at the last freeze


def freeze_long_lived() -> bool:
    """Collect, then freeze every object alive, when modules were imported since the last freeze (the first
    run of each page in this process); True when it froze."""
    global _modules_when_frozen
    with _lock:
        if len(sys.modules) <= _modules_when_frozen:
            return False
        gc.collect()
        gc.freeze()
        _modules_when_frozen = len(sys.modules)
        return True
