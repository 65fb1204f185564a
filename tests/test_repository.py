"""What the repository may hold: no file of 40 MB or more (a shipped weights file included)."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 40 * 2**20


def test_no_tracked_file_reaches_40_mb():
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    big = [(f.decode(), (ROOT / f.decode()).stat().st_size) for f in files if f and (ROOT / f.decode()).is_file()]
    big = [(name, size) for name, size in big if size >= LIMIT]
    assert not big, f"files of 40 MB or more: {big}"
    for weights in (ROOT / "weights").glob("*/model.safetensors"):
        assert weights.stat().st_size < LIMIT, weights


def test_every_subpackage_is_in_the_wheel():
    """pyproject.toml lists the packages (the shipped weights need a package-dir mapping, which
    setuptools' find cannot combine with): a new subpackage left out of it would install
    without its code."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "vcgan_cli").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"


def _imports(root: Path):
    """(module file, imported module or None for relative, names) of every `from … import …`."""
    import ast

    for path in sorted((root / "vcgan_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                yield path.relative_to(root), node, [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                yield path.relative_to(root), node, [a.name for a in node.names]


def test_no_module_imports_private_names_or_the_cli():
    """Layering (docs/architecture.md): a module uses other modules' public names only, and the
    core (everything outside vcgan_cli/cli/) never imports the command package, click or rich."""
    root = Path(__file__).resolve().parents[1]
    private, upward = [], []
    for path, node, names in _imports(root):
        module = getattr(node, "module", None) or ""
        if module != "__future__":
            private += [f"{path}: {n}" for n in names if n.startswith("_") and n != "__version__"]
        if path.parts[1] != "cli" and path.name != "__main__.py":  # __main__ is `python -m vcgan_cli`
            targets = [module] if module else names
            level = getattr(node, "level", 0)
            for t in targets:
                head = t.split(".")[0]
                if head in ("click", "rich") or (level and head == "cli") or t.startswith("vcgan_cli.cli"):
                    upward.append(f"{path}: {t}")
    assert not private, f"imports of private names: {private}"
    assert not upward, f"core modules importing the CLI, click or rich: {upward}"
