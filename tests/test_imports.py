"""The direction of imports (docs/architecture.md): pure modules never import Lightning, data, lit or commands;
the lists below name every module of the package, so a new one has to be placed."""

import ast
from pathlib import Path

import vidiff

ROOT = Path(vidiff.__file__).parent
#: plain torch / Python (the generation layer `pipelines` included): no Lightning, data, lit, commands or cli.
PURE = ("arguments.py", "diffusion", "nn", "masks.py", "schemes", "io", "metrics", "palette.py", "pipelines")
#: the layers above them (and the package's own files).
UPPER = ("data", "lit", "evaluate", "sd", "commands", "cli.py", "assets", "__init__.py", "__main__.py")
FORBIDDEN = ("lightning", "lightning_fabric", "pytorch_lightning", "vidiff.data", "vidiff.lit", "vidiff.commands", "vidiff.cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pure_modules_do_not_import_upwards():
    files = []
    for entry in PURE:
        p = ROOT / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.exists() else [])
    assert files, "no pure modules found"
    bad = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f in files
        for name in _imports(f)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]
    assert not bad, "\n".join(bad)


def test_the_module_lists_match_the_tree():
    tree = {p.name for p in ROOT.iterdir()
            if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))}
    assert tree == set(PURE) | set(UPPER), f"unplaced: {sorted(tree - set(PURE) - set(UPPER))}, gone: " \
        f"{sorted(set(PURE) | set(UPPER) - tree)}"
    assert not set(PURE) & set(UPPER)


def test_pipelines_is_guarded():
    assert "pipelines" in PURE and {"lightning", "pytorch_lightning", "vidiff.lit"} <= set(FORBIDDEN)
