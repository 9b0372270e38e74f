"""Pruning methods: one package per method (`<name>/config.py`: its config and facts, torch-free;
`<name>/method.py`: its plug-in, registered with `@register_method(<its config class>)`).

`catalog` finds the packages; importing this package imports no torch: the plug-in interface
(`base`) and the registry `METHODS` (every package's plug-in imported) load on first use.
"""

from typing import Any

__all__ = [
    "METHODS", "ArtefactWriter", "EvalResult", "Phase", "PruningMethod", "RunContext", "get_method", "register_method",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prunelab.methods import base
    from prunelab.methods.catalog import load_plugins

    load_plugins()
    return getattr(base, name)
