"""The direction of imports (docs/architecture.md): pure modules never import Lightning, data, lit, evaluate or
commands, neither directly (parsed) nor through another module (imported in a fresh interpreter); the lists
below name every module of the package, so a new one has to be placed."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import vidiff

ROOT = Path(vidiff.__file__).parent
#: plain torch / Python (the generation layer `pipelines` included): no Lightning, data, lit, evaluate, commands.
PURE = ("arguments.py", "assets", "diffusion", "nn", "masks.py", "schemes", "io", "metrics", "palette.py", "sd",
        "pipelines")
#: the layers above them (and the package's own files).
UPPER = ("data", "lit", "evaluate", "commands", "cli.py", "__init__.py", "__main__.py")
FORBIDDEN = ("lightning", "lightning_fabric", "pytorch_lightning", "vidiff.data", "vidiff.lit", "vidiff.evaluate",
             "vidiff.commands", "vidiff.cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _pure_files() -> list[Path]:
    files = []
    for entry in PURE:
        p = ROOT / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.exists() else [])
    return files


def _forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_pure_modules_do_not_import_upwards():
    files = _pure_files()
    assert files, "no pure modules found"
    bad = [f"{f.relative_to(ROOT)} imports {name}" for f in files for name in _imports(f) if _forbidden(name)]
    assert not bad, "\n".join(bad)


def test_importing_every_pure_module_loads_no_upper_layer():
    """Every pure module imported at once, in a fresh interpreter: nothing above them comes along."""
    modules = []
    for f in _pure_files():
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in {FORBIDDEN!r}))\n"
        "print(bad)\n"
    )
    path = os.pathsep.join([str(ROOT.parent), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": path})
    assert out.stdout.strip() == "[]", out.stdout


def test_the_module_lists_match_the_tree():
    tree = {p.name for p in ROOT.iterdir()
            if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))}
    assert tree == set(PURE) | set(UPPER), f"unplaced: {sorted(tree - set(PURE) - set(UPPER))}, gone: " \
        f"{sorted(set(PURE) | set(UPPER) - tree)}"
    assert not set(PURE) & set(UPPER)


def test_pipelines_is_guarded():
    assert "pipelines" in PURE and {"lightning", "pytorch_lightning", "vidiff.lit"} <= set(FORBIDDEN)
