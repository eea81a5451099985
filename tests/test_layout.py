"""The package's layout shows the flow: each folder one stage, no module imports from a later
stage, and Dagster only in ``defs/`` (and the CLI that starts a run)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "orchestration"
# the stages in the order data flows; a module may import from its own stage or an earlier one
STAGES = ["base", "ingest", "checks", "publication", "forum", "defs"]
BASE = {"settings", "faults", "launcher", "pages"}  # shared by every stage (pages: templates/)
TOOLS = {
    "cli",
    "demo",
    "portal",
    "backup",
}  # around the flow (commands, the portal): may import any stage


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "orchestration" or len(parts) == 1 or parts[1] == "__init__":
        return None
    if parts[1] in BASE:
        return "base"
    if parts[1] in TOOLS:
        return "tools"
    return parts[1]


def imports(path: Path) -> list[str]:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append(name)
            found += [f"{name}.{alias.name}" for alias in node.names]  # `from . import x`
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_stage_and_top_level_shows_the_stages():
    top = sorted(p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir())
    assert set(top) - {"__init__", "__pycache__", "templates"} == BASE | TOOLS | set(STAGES[1:])
    for path in modules():
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        assert stage_of(module) in {*STAGES, "tools", None}, module


def test_no_module_imports_from_a_later_stage():
    wrong = []
    for path in modules():
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = stage_of(module)
        if own in (None, "tools"):
            continue
        for name in imports(path):
            other = stage_of(name)
            if other in (None, "tools") or other == own:
                if other == "tools":
                    wrong.append(f"{module} imports {name}")
                continue
            if STAGES.index(other) > STAGES.index(own):
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_dagster_is_imported_only_in_defs_and_the_cli():
    outside = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules()
        if path.relative_to(PACKAGE).parts[0] not in ("defs", "cli.py")
        for name in imports(path)
        if name.split(".")[0] in ("dagster", "dagster_dbt")
    ]
    assert outside == []


def test_the_checker_sees_a_wrong_import(tmp_path):
    """(The test above would pass on no imports at all: it reads them.)"""
    sample = PACKAGE / "ingest" / "pipeline.py"
    names = imports(sample)
    assert "orchestration.ingest.load" in names and "orchestration.settings.Settings" in names
    assert stage_of("orchestration.forum.signoff") == "forum"
    assert STAGES.index("forum") > STAGES.index("ingest")
