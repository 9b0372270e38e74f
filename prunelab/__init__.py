"""PruneLab core, one folder per concern (docs/architecture.md, "Layout").

`config` (the validated `RunConfig`, used by every layer) sits at the top beside the folders: `runs` (a run
on disk: files, checks, ownership, state changes), `training` (the engine and its measures), `scheduling`
(the local and Ray schedulers, suites), `analysis` (what pages and reports read), `methods`, `models`,
`data`, `speed`, `export` and `cli`. This package never imports streamlit; the app's pages read what it
writes to run directories.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["RunConfig", "RunStore", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import prunelab.runs.store` does not pull in torch-heavy modules it does not need.
    if name == "load_model":
        from prunelab.training.engine import load_model

        return load_model
    if name == "RunConfig":
        from prunelab.config import RunConfig

        return RunConfig
    if name == "RunStore":
        from prunelab.runs.store import RunStore

        return RunStore
    raise AttributeError(f"module 'prunelab' has no attribute {name!r}")
