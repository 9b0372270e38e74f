"""A method is named only in its own package: outside `prunelab/methods/`, no product file (the core, the
app, its components and pages, the scripts) quotes a method's name; code that means a method imports its
package's `NAME` or reads its facts. The exceptions: the data table of suite presets, which names a suite
after the method it sweeps, and the Slimming page's URL path, which bookmarks keep."""

from __future__ import annotations

import re
from pathlib import Path

from prunelab.config import METHOD_NAMES

REPO = Path(__file__).resolve().parents[1]
PRODUCT = [REPO / "app.py", *(REPO / "prunelab").rglob("*.py"), *(REPO / "app_components").rglob("*.py"),
           *(REPO / "app_pages").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]
METHODS_DIR = REPO / "prunelab" / "methods"
# the suite presets' one data table (`suite slimming` is a suite named after the method it composes), and the
# Slimming page's entry in the shell (its URL path `/slimming` names the page, kept for bookmarks)
EXCEPTIONS = {("prunelab/scheduling/suites.py",
               'SUITES: dict[str, SuiteBuilder] = {"demo": demo_suite, "slimming": slimming_suite, "ablation": '
               'ablation_suite,'),
              ("app_components/shell.py",
               'AppPage("app_pages/slimming.py", "Slimming", ":material/content_cut:", "slimming"),')}


def quoted_names(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"([\"'])(" + "|".join(re.escape(name) for name in names) + r")\1")


def test_no_product_file_outside_the_method_packages_quotes_a_method_name() -> None:
    assert {"baseline", "slimming", "manidp", "random"} <= set(METHOD_NAMES)
    pattern = quoted_names(METHOD_NAMES)
    found = []
    for path in PRODUCT:
        if METHODS_DIR in path.parents:
            continue
        relative = str(path.relative_to(REPO))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line) and (relative, line.strip()) not in EXCEPTIONS:
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_check_sees_a_quoted_name_and_the_exception_exists() -> None:
    pattern = quoted_names(METHOD_NAMES)
    assert pattern.search('if method == "manidp":') and pattern.search("x = 'random'")
    assert not pattern.search("MANIDP = NAME") and not pattern.search('"-manidp-"')
    for relative, line in EXCEPTIONS:  # an exception that no longer exists is removed from the list
        assert line in (REPO / relative).read_text(encoding="utf-8")
