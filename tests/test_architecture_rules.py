"""Mechanical checks of the design rules: core never imports Qt/app, and importing core does no heavy work."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = ("PySide6", "pyqtgraph", "superqt", "app", "qtpy", "PyQt5", "PyQt6")


def _imported_modules(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_never_imports_qt_or_app():
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for module in _imported_modules(path):
            if module.split(".")[0] in FORBIDDEN_IN_CORE:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_importing_core_packages_and_building_the_cli_loads_no_heavy_library():
    """What the CLI and the app import at start-up must not pull in torch & co (the window opens fast)."""
    modules = sorted(
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "core").rglob("__init__.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "from core.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'PySide6', 'skimage') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing core pulled in: {result.stdout.strip()}"


def test_import_linter_contract_holds():
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        import pytest

        pytest.skip("import-linter is not installed in this environment")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
