"""Import structure: no cycle among prunelab modules, prunelab never imports streamlit, the app never
imports the CLI, `app_pages/` holds only the pages `app.py` registers (at the URLs they always had), no
`pages/` folder for Streamlit to run a page from by itself, and no page or component reruns for a hand-over.

Read from the source with `ast` (module-level and function-level imports; only `if TYPE_CHECKING:`
blocks are exempt), so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_FILES = [REPO / "app.py", *sorted((REPO / "app_pages").glob("*.py")),
             *sorted((REPO / "app_components").glob("*.py"))]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


PRUNELAB_MODULES = {module_name(path) for path in (REPO / "prunelab").rglob("*.py")}


def imported_names(path: Path) -> Iterator[str]:
    """Every module `path` imports at run time: `from a import b` is `a.b` when that is a prunelab
    module, else `a`."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in PRUNELAB_MODULES else base
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """prunelab module -> the prunelab modules it imports."""
    paths = {module_name(path): path for path in (REPO / "prunelab").rglob("*.py")}
    return {name: {target for target in imported_names(path) if target in paths and target != name}
            for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        if start in done:
            continue
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child):], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
                on_path.add(child)
    return None


def test_no_import_cycle_in_prunelab() -> None:
    graph = import_graph()
    assert len(graph) > 30 and "prunelab.cli.main" in graph["prunelab.__main__"] | graph["prunelab.cli"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_lazy_import_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_prunelab_never_imports_streamlit() -> None:
    offenders = {module_name(path) for path in (REPO / "prunelab").rglob("*.py")
                 if any(name.split(".")[0] == "streamlit" for name in imported_names(path))}
    assert not offenders


def test_app_never_imports_the_cli() -> None:
    offenders = {str(path.relative_to(REPO)) for path in APP_FILES
                 if any(name == "prunelab.cli" or name.startswith("prunelab.cli.") for name in imported_names(path))}
    assert not offenders


def registered_pages() -> dict[str, str]:
    """The pages listed in `app_components/shell.py`'s PAGES (what app.py gives st.navigation): file -> URL
    path, read from each `AppPage(file, title, icon, url_path)` entry."""
    tree = ast.parse((REPO / "app_components" / "shell.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PAGES" for t in node.targets):
            assert isinstance(node.value, ast.List)
            entries = [entry for entry in node.value.elts if isinstance(entry, ast.Call)]
            assert len(entries) == len(node.value.elts), "every PAGES entry is an AppPage(...)"
            return {ast.literal_eval(entry.args[0]): ast.literal_eval(entry.args[3]) for entry in entries}
    raise AssertionError("no PAGES in app_components/shell.py")


def test_pages_folder_holds_only_registered_pages() -> None:
    files = {f"app_pages/{path.name}" for path in (REPO / "app_pages").glob("*.py")}
    assert files and files <= set(registered_pages()), files - set(registered_pages())


# the URL path of every page since the app has had one (bookmarks and shared links use them)
BOOKMARKED = {"home", "lessons", "runs", "live", "slimming", "per_image", "similarity", "ablations", "speed"}


def test_page_urls_stay_those_of_the_bookmarks() -> None:
    urls = registered_pages()
    assert set(urls.values()) == BOOKMARKED, urls


def test_no_pages_folder_for_streamlit_to_discover() -> None:
    """Streamlit runs a file of a `pages/` folder next to app.py by itself (legacy multipage discovery), without
    app.py's navigation; the page files live in `app_pages/`, so there is no such folder holding page files."""
    assert not sorted((REPO / "pages").glob("*.py"))  # no such folder, or none holding a page file
    assert all(file.startswith("app_pages/") for file in registered_pages())


def _calls(scope: ast.AST, name: str) -> bool:
    """Whether `scope` calls a function or method called `name` (`st.rerun()`, `shell.navigation()`, ...)."""
    return any(isinstance(node, ast.Call) and name in (getattr(node.func, "attr", None), getattr(node.func, "id", None))
               for node in ast.walk(scope))


def _reads_main_module(scope: ast.AST) -> bool:
    """Whether `scope` looks up the `__main__` module (which script Streamlit ran), other than `if __name__ ==
    "__main__":`."""
    guards = {id(side) for node in ast.walk(scope) if isinstance(node, ast.Compare)
              for side in [node.left, *node.comparators]}
    return any(isinstance(node, ast.Constant) and node.value == "__main__" and id(node) not in guards
               for node in ast.walk(scope))


def hand_over_reruns(source: str) -> list[str]:
    """The scopes (module body or function) of `source` that rerun for a hand-over, or ask for one: a function
    named `hand_over`, a scope calling one, or an `st.rerun()` in a scope that also registers pages
    (`navigation()`) or asks which script is `__main__`."""
    tree = ast.parse(source)
    module_body = ast.Module(body=[node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.ClassDef)],
                             type_ignores=[])
    scopes = [("<module>", module_body), *((node.name, node) for node in ast.walk(tree)
                                          if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))]
    return [name for name, scope in scopes
            if name == "hand_over" or _calls(scope, "hand_over")
            or (_calls(scope, "rerun") and (_calls(scope, "navigation") or _reads_main_module(scope)))]


def test_no_page_or_component_reruns_for_a_hand_over() -> None:
    offenders = {str(path.relative_to(REPO)): hand_over_reruns(path.read_text(encoding="utf-8")) for path in APP_FILES}
    assert not {path: scopes for path, scopes in offenders.items() if scopes}
    navigation_calls = {str(path.relative_to(REPO)) for path in APP_FILES
                        if _calls(ast.parse(path.read_text(encoding="utf-8")), "navigation")}
    assert navigation_calls == {"app.py", "app_components/shell.py"}  # the app registers its pages in one place


def test_the_hand_over_check_finds_the_old_hand_over() -> None:
    old = """
import sys
import streamlit as st

def hand_over() -> None:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is None:
        return
    navigation()
    st.rerun()

def title(text):
    hand_over()
    st.title(text)
"""
    assert hand_over_reruns(old) == ["hand_over", "title"]
    renamed = old.replace("hand_over", "reenter")
    assert hand_over_reruns(renamed) == ["reenter"]
    assert hand_over_reruns("import streamlit as st\nst.navigation([])\nst.rerun()\n") == ["<module>"]
    legit = "def refresh():\n    st.session_state['x'] = 1\n    st.rerun()\n\nif __name__ == '__main__':\n    pass\n"
    assert hand_over_reruns(legit) == []


def test_nothing_references_pagesmanager() -> None:
    sources = [*APP_FILES, *(REPO / "prunelab").rglob("*.py")]
    assert not [str(path.relative_to(REPO)) for path in sources if "PagesManager" in path.read_text(encoding="utf-8")]


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every prunelab module `start` imports, directly or through others."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph.get(stack.pop(), set()) - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_the_schedulers_meet_only_in_the_run_life_module() -> None:
    """The local pool and the Ray runner share `prunelab.runs.run_life` (which imports neither), not each other."""
    graph = import_graph()
    schedulers = ("prunelab.scheduling.jobs", "prunelab.scheduling.ray_backend")
    for scheduler in schedulers:
        assert "prunelab.runs.run_life" in graph[scheduler], scheduler
        others = set(schedulers) - {scheduler}
        assert not others & reachable(graph, scheduler), f"{scheduler} imports {others & reachable(graph, scheduler)}"
    assert not set(schedulers) & reachable(graph, "prunelab.runs.run_life")


STATUS_WRITERS = {"prunelab/runs/run_life.py", "prunelab/runs/store.py"}  # the run-life module and the store it uses
PRODUCT_FILES = [*APP_FILES, *(REPO / "prunelab").rglob("*.py"), *(REPO / "scripts").glob("*.py"),
                 *(REPO / "benchmarks").glob("*.py")]


def status_writes(path: Path) -> list[int]:
    """Lines of `path` that write status.json: `.write_status(` / `.force_status(`, or a call whose name
    contains "write" given STATUS_FILE or "status.json"."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        names_status = any((isinstance(sub, ast.Name) and sub.id == "STATUS_FILE")
                           or (isinstance(sub, ast.Constant) and sub.value == "status.json")
                           for arg in [*node.args, *(k.value for k in node.keywords)] for sub in ast.walk(arg))
        if name in ("write_status", "force_status") or ("write" in name.lower() and names_status):
            lines.append(node.lineno)
    return lines


def test_status_json_is_written_only_through_the_run_life_module() -> None:
    offenders = {f"{path.relative_to(REPO)}:{line}" for path in PRODUCT_FILES
                 if str(path.relative_to(REPO)) not in STATUS_WRITERS for line in status_writes(path)}
    assert not offenders, sorted(offenders)
    assert status_writes(REPO / "prunelab" / "runs" / "run_life.py")  # the check sees the writes where they are


# the core's top level: config (every layer uses it), the package's entry points, and one folder per concern
# (docs/architecture.md, "Layout"); a new module goes into the subpackage of its concern, not beside them
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "config.py"}
SUBPACKAGES = {"analysis", "cli", "data", "export", "methods", "models", "runs", "scheduling", "speed", "training"}


def top_level(package: Path) -> tuple[set[str], set[str]]:
    """The modules (file names) and the folders holding Python files (packages, namespace ones included)
    directly in `package`."""
    modules = {path.name for path in package.glob("*.py")}
    folders = {path.name for path in package.iterdir()
               if path.is_dir() and path.name != "__pycache__" and any(path.rglob("*.py"))}
    return modules, folders


def test_the_core_top_level_holds_only_config_and_the_subpackages() -> None:
    modules, folders = top_level(REPO / "prunelab")
    assert modules == TOP_LEVEL_MODULES, f"move {sorted(modules - TOP_LEVEL_MODULES)} into a subpackage"
    assert folders == SUBPACKAGES, sorted(folders ^ SUBPACKAGES)
    assert all((REPO / "prunelab" / name / "__init__.py").is_file() for name in SUBPACKAGES)  # no namespace package


def test_every_package_of_the_core_says_what_it_holds() -> None:
    undocumented = [str(path.relative_to(REPO)) for path in sorted((REPO / "prunelab").rglob("__init__.py"))
                    if len(ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "") < 40]
    assert not undocumented, undocumented


def test_the_layout_check_sees_a_flat_module_come_back(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "__init__.py").write_text('"""Runs."""\n', encoding="utf-8")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "store.py").write_text("", encoding="utf-8")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "thing.py").write_text("", encoding="utf-8")
    assert top_level(tmp_path) == ({"store.py"}, {"runs", "loose"})
