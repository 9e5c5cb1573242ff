"""Rules of the house that a test can hold: no Qt outside mmstudio/gui, lazy heavy imports."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmstudio"
QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "qtpy", "superqt")


def non_gui_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if rel.parts[1] == "gui":
            continue
        yield path, ".".join(rel.with_suffix("").parts).removesuffix(".__init__")


def imported_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_qt_imports_outside_gui_in_source():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path, _ in non_gui_modules()
        for name in imported_names(path)
        if name.split(".")[0] in QT
    ]
    assert offenders == []


def test_core_modules_import_with_qt_absent():
    modules = [name for _, name in non_gui_modules()]
    # what `mmstudio --help` and the window load before any model is asked for
    # (the model definition and the relevance methods are imported when a model runs or
    # a map is asked for, and mean wanting torch)
    torch_modules = {"mmstudio.encoders.efficientnet_lite", "mmstudio.explain.attention",
                     "mmstudio.explain.image", "mmstudio.explain.text",
                     "mmstudio.explain.audio", "mmstudio.explain.faithfulness",
                     "mmstudio.fusion.models", "mmstudio.fusion.train"}
    startup = [m for m in modules if m not in torch_modules]
    code = (
        "import sys, importlib, importlib.abc\n"
        f"QT = {QT!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in QT:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {startup!r}:\n"
        "    importlib.import_module(m)\n"
        "heavy = [m for m in ('torch', 'transformers', 'cv2', 'av', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ALL IMPORTED')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # importing the engine does not load torch, transformers or OpenCV (lazy imports)
    assert "HEAVY []" in out.stdout, out.stdout
    assert "ALL IMPORTED" in out.stdout
