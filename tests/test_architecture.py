"""Imports point one way (docs/architecture.md): a package never imports one above it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top; each package may import only itself and the ones before it.
ORDER = ("scheduler", "hw", "pmu", "rtl", "cosim", "cli")
#: Package -> its folder in the repository.
FOLDERS = {name: ROOT / name for name in ORDER if name != "cli"} | {
    "cli": ROOT / "voltflow" / "cli"
}
#: PMU modules that describe hardware: they must not import the PMU's Python models.
PMU_HARDWARE = ("sequencer", "bank_switches", "monitors", "power_counters", "unit")
PMU_MODELS = ("voltflow.pmu.timing", "voltflow.pmu.compiler", "voltflow.pmu.disasm")


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """Absolute names imported by ``path`` (relative imports resolved inside ``package``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(
                    (
                        node.lineno,
                        f"voltflow.{package}" + (f".{node.module}" if node.module else ""),
                    )
                )
            elif node.module:
                out.append((node.lineno, node.module))
    return out


def _modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package, folder in FOLDERS.items()
        if folder.is_dir()
        for path in sorted(folder.rglob("*.py"))
    ]


def test_every_package_folder_exists() -> None:
    missing = [name for name, folder in FOLDERS.items() if not folder.is_dir()]
    assert not missing, f"docs/architecture.md names packages with no folder: {missing}"


@pytest.mark.parametrize(("package", "path"), _modules(), ids=lambda x: getattr(x, "name", x))
def test_imports_point_down(package: str, path: Path) -> None:
    rank = ORDER.index(package)
    upward = []
    for line, name in _imports(path, package):
        parts = name.split(".")
        if parts[0] in ORDER or parts[0] == "bench":  # an import by a folder name, not voltflow.*
            upward.append(f"line {line}: {name} (import it as voltflow.{name})")
            continue
        if parts[0] != "voltflow" or len(parts) < 2 or parts[1] not in ORDER:
            continue
        if ORDER.index(parts[1]) > rank:
            upward.append(f"line {line}: {name} ({parts[1]} sits above {package})")
    assert not upward, f"{path.relative_to(ROOT)} imports upwards: " + "; ".join(upward)


@pytest.mark.parametrize("module", PMU_HARDWARE)
def test_pmu_hardware_does_not_import_its_python_model(module: str) -> None:
    path = FOLDERS["pmu"] / f"{module}.py"
    found = [
        f"line {line}: {name}"
        for line, name in _imports(path, "pmu")
        if any(name == m or name.startswith(m + ".") for m in PMU_MODELS)
    ]
    assert not found, f"pmu/{module}.py imports a Python model: {found}"
