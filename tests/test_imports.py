"""The direction of imports (docs/architecture.md): pure modules never import Lightning, data, lit or commands."""

import ast
from pathlib import Path

import vidiff

ROOT = Path(vidiff.__file__).parent
PURE = ("diffusion", "nn", "masks.py", "schemes", "schemes.py", "io", "metrics", "palette.py")
FORBIDDEN = ("lightning", "pytorch_lightning", "vidiff.data", "vidiff.lit", "vidiff.commands", "vidiff.cli")


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
