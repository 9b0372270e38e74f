"""The one registry of methods, torch-free half: every package under `prunelab/methods/` with a `config.py`.

Each method package's `config.py` defines `METHOD_CONFIG`, its config class (`name: Literal["<name>"]`,
`facts: ClassVar[MethodFacts]`); this module imports every such module (never the package's torch code),
orders them by `facts.order` and gives `prunelab.config` the union it validates runs with. The plug-ins
(`prunelab.methods.base.METHODS`) are the other half: each package's `method.py` registers its class
with `@register_method(<its config class>)`, and `load_plugins()` imports them.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pydantic import BaseModel

PACKAGE = "prunelab.methods"
_HERE = Path(__file__).resolve().parent


def method_packages() -> list[str]:
    """Module names of the method packages: the folders here with a `config.py`."""
    return [f"{PACKAGE}.{info.name}" for info in pkgutil.iter_modules([str(_HERE)])
            if info.ispkg and (_HERE / info.name / "config.py").is_file()]


def _collect() -> dict[str, type[BaseModel]]:
    classes = []
    for package in method_packages():
        module = importlib.import_module(f"{package}.config")
        cls = getattr(module, "METHOD_CONFIG", None)
        if cls is None:
            raise ValueError(f"{package}.config defines no METHOD_CONFIG")
        classes.append(cls)
    classes.sort(key=lambda cls: (cls.facts.order, cls.model_fields["name"].default))
    configs: dict[str, type[BaseModel]] = {}
    for cls in classes:
        name = cls.model_fields["name"].default
        if name in configs:
            raise ValueError(f"two method configs named {name!r}")
        configs[name] = cls
    return configs


# method name -> its config class, in the methods' order
CONFIGS: dict[str, type[BaseModel]] = _collect()


def load_plugins() -> None:
    """Import every method package's `method.py` (torch), which registers its plug-in."""
    for package in method_packages():
        importlib.import_module(f"{package}.method")
