"""CI guard: no file in the repository over its size limit.

A model's weights (`weights/*/model.safetensors`) may reach 40 MB (DEVELOPERS.md); the
example film 2 MB; anything else 1 MB. What git tracks is checked, plus what it would add
(untracked, not ignored), so a dataset or a checkpoint copied into the tree fails here before
it is committed. Prints each offender in one line and exits 1.
"""
import subprocess
import sys
from pathlib import Path

MB = 1 << 20
LIMITS = (("weights/", ".safetensors", 40 * MB), ("examples/", "", 2 * MB))
DEFAULT = 1 * MB


def limit(path: str) -> int:
    for prefix, suffix, size in LIMITS:
        if path.startswith(prefix) and path.endswith(suffix):
            return size
    return DEFAULT


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout
    bad = []
    for name in filter(None, out.decode().split("\0")):
        p = root / name
        if p.is_file() and not p.is_symlink() and p.stat().st_size > limit(name):
            bad.append(f"{name}: {p.stat().st_size / MB:.1f} MB, over its {limit(name) / MB:.0f} MB limit")
    for line in bad:
        print(f"large file: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
