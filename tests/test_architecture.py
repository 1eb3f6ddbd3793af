"""The packages stand on floors: nothing imports a package above it, the core never imports the plugin, and no
module imports itself round a circle. Every import counts, the ones inside functions and ``TYPE_CHECKING`` too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS: list[tuple[str, ...]] = [
    ("errors", "atomic", "paths", "_torchvision_cpu_fix"),  # no project imports
    ("safetensors_io", "cameras", "cuda_graphs", "progress", "devices", "pca"),  # small helpers
    ("codecs", "render", "data", "references"),  # image <-> latent, rasterizer, scene loader, nearest views
    ("splats",),  # Gaussian parameters and their rendering
    ("refine", "training"),  # the refiner model; the latent-splat training step and core trainer
    ("trained",),  # a trained scene: splats + codec + reference bank (+ refiner)
    ("frame", "run_config"),  # the one render -> refine -> decode function; loading a run
    ("evaluation", "export", "refiner_training"),  # held-out metrics, flythroughs, making refiners
    ("viewer",),
    ("scripts",),  # the CLIs
]
PLUGIN_FLOOR = len(FLOORS)  # nerfstudio_plugin: above the whole core


def _floor_of(module: str) -> tuple[int, str] | None:
    """(floor, unit) of a project module, None for third-party ones."""
    parts = module.split(".")
    if parts[0] == "nerfstudio_plugin":
        return PLUGIN_FLOOR, "nerfstudio_plugin"
    if parts[0] != "splatent_viewer":
        return None
    if len(parts) == 1:  # the package itself (its __init__ imports nothing of its own)
        return 0, "splatent_viewer"
    for floor, units in enumerate(FLOORS):
        if parts[1] in units:
            return floor, parts[1]
    raise AssertionError(f"splatent_viewer.{parts[1]} is on no floor: add it to FLOORS in {__file__}")


def _modules() -> dict[str, Path]:
    out = {}
    for package in ("splatent_viewer", "nerfstudio_plugin"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    """Project modules ``path`` imports (absolute and relative, anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in ("splatent_viewer", "nerfstudio_plugin")}


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p, m) if i in MODULES and i != m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_a_floor_above(module: str) -> None:
    here = _floor_of(module)
    assert here is not None
    for imported in sorted(_imports(MODULES[module], module)):
        there = _floor_of(imported)
        if there is None or there[1] == here[1]:
            continue
        assert there[0] < here[0], (
            f"{module} (floor {here[0]}, {here[1]}) imports {imported} (floor {there[0]}, "
            f"{there[1]}): a package may only import the floors below it"
        )


def test_no_module_imports_itself_round_a_circle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n) :] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"\.cuda\(\)", "devices are arguments: use .to(device)"),
        (r"sys\.path\.(insert|append)", "no sys.path edits: install the package"),
        (r"os\._exit\(", "no os._exit: return or raise SystemExit"),
    ],
)
def test_banned_patterns(pattern: str, why: str) -> None:
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in MODULES.values()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{why}: {hits}"
