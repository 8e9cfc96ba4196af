"""``voltflow profile``: many inputs through the golden model, what each decides of a network on a
sparsity-aware chip (docs/sparsity.md, "Profiles").

Fast: no RTL. Per input, the golden model computes every tensor and `cosim.operands` counts what
the array does with its zeros; the profile keeps those counts (the scheduler's input) and a
summary per schedule layer: activation and weight density, and the distribution over the inputs
of its exact cycles and energy at the nominal state.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.golden import Case, case_from_params
from voltflow.cosim.operands import case_operands
from voltflow.scheduler.chip import Chip, Sparsity
from voltflow.scheduler.cost import build_cost_table, schedule_layers
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.network import Network
from voltflow.scheduler.profile import Profile, chip_digest, network_digest

__all__ = ["ProfileInputError", "load_inputs", "measure_profile", "random_inputs"]


class ProfileInputError(ValueError):
    """An input file or count that cannot be profiled."""


def random_inputs(network: Network, count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` seeded uniform int8 inputs (-128 .. 127), one independent stream each."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ProfileInputError(f"--inputs must be at least 1, not {count!r}")
    shape = network.input
    out = []
    for i in range(count):
        rng = np.random.default_rng((seed, 1_000_003, i))
        image = rng.integers(-128, 128, size=(shape.channels, shape.height, shape.width))
        out.append((f"random{i}", image.astype(np.int8)))
    return out


def load_inputs(folder: str | os.PathLike[str], network: Network) -> list[tuple[str, np.ndarray]]:
    """Every ``*.npy`` file of ``folder`` (sorted by name): int8 arrays of the network's input
    shape (C, H, W)."""
    path = Path(folder)
    if not path.is_dir():
        raise ProfileInputError(f"--input-dir {folder}: not a folder")
    files = sorted(path.glob("*.npy"))
    if not files:
        raise ProfileInputError(f"--input-dir {folder}: no .npy files in it")
    shape = network.input
    expected = (shape.channels, shape.height, shape.width)
    out = []
    for file in files:
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ProfileInputError(f"{file}: not a NumPy .npy array ({exc})") from None
        if array.dtype != np.int8:
            raise ProfileInputError(
                f"{file}: dtype must be int8 (the chip's quantised input), not {array.dtype}; "
                "quantise it with the network's input scale first"
            )
        if array.shape != expected:
            raise ProfileInputError(
                f"{file}: shape must be {list(expected)} (channels, height, width of "
                f"{network.name}'s input), not {list(array.shape)}"
            )
        out.append((file.stem, array))
    return out


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def measure_profile(
    network: Network,
    chip: Chip,
    base: Case,
    inputs: Sequence[tuple[str, np.ndarray]],
    progress: Callable[[int, int], None] | None = None,
) -> Profile:
    """Profile ``inputs`` with ``base``'s parameters (weights, requantisation)."""
    if chip.sparsity is Sparsity.NONE:
        raise ProfileInputError(
            f"chip {chip.name!r} has array.sparsity: none; a profile measures what a gating or "
            "skipping array does with zeros (use --hw powerflow_ref_gate or powerflow_ref_skip)"
        )
    works = tuple(op_work(op, chip, network) for op in network.ops)
    groups = schedule_layers(network)
    nominal = [chip.nominal_v] * 3
    operands = []
    act_density: list[list[float]] = [[] for _ in groups]
    cycles: list[list[int]] = [[] for _ in groups]
    energy: list[list[float]] = [[] for _ in groups]
    for i, (_name, image) in enumerate(inputs):
        case = case_from_params(network, image, base.params, seed=base.seed)
        ops = case_operands(case, chip, works)
        operands.append(ops)
        table = build_cost_table(network, chip, levels_v=None, operands=ops)
        state = table.state_index(nominal)
        for k, group in enumerate(groups):
            first = network.ops[group[0]]
            x = case.tensor(first.inputs[0])
            act_density[k].append(float(np.count_nonzero(x)) / x.size)
            cycles[k].append(int(table.layers[k].ref_cycles[state]))
            energy[k].append(float(table.layers[k].energy_j[state]))
        if progress is not None:
            progress(i + 1, len(inputs))
    layers: list[dict[str, Any]] = []
    for k, group in enumerate(groups):
        weights = [
            w
            for j in group
            if (params := base.params.get(network.ops[j].name)) is not None
            and (w := params.weight) is not None
        ]
        nonzero = sum(int(np.count_nonzero(w)) for w in weights)
        size = sum(int(w.size) for w in weights)
        layers.append(
            {
                "name": network.ops[group[0]].name,
                "activation_density": _stats(act_density[k]),
                "weight_density": nonzero / size if size else None,
                "cycles_nominal": _stats(cycles[k]),
                "energy_nominal_j": _stats(energy[k]),
            }
        )
    frame_cycles = np.sum(cycles, axis=0)
    frame_energy = np.sum(energy, axis=0)
    summary = {
        "nominal_v": chip.nominal_v,
        "layers": layers,
        "frame_cycles_nominal": _stats(frame_cycles.tolist()),
        "frame_energy_nominal_j": _stats(frame_energy.tolist()),
    }
    return Profile(
        network=network.name,
        network_digest=network_digest(network),
        chip=chip.name,
        chip_digest=chip_digest(chip),
        inputs=tuple(name for name, _ in inputs),
        operands=tuple(operands),
        summary=summary,
    )
