"""Sparsity profiles: what many inputs decide of a network on a sparsity-aware chip, and the cost
table a schedule is solved on (docs/sparsity.md, "Profiles").

A profile (``voltflow-profile/1`` JSON, written by ``voltflow profile``) holds, per input, every
array op's :class:`scheduler.sparsity.OpOperands`, with the network and chip it was measured on.
:func:`profile_table` turns it into one cost table whose energies are the **expectation** over
the inputs (each input's exact dynamic energy, averaged) and whose cycles are a **bound** chosen
by :class:`DeadlineOn`: the worst case seen (each tile's longest stream of any input: no input
seen takes longer, in any state), a percentile (each tile's stream at that percentile), or the
dense bound (nothing skipped). Leakage is charged over the bound's time (conservative). With
gating only the cycles are the dense ones, whatever the bound.
"""

import enum
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from voltflow.scheduler.chip import Chip, GatingPolicy, Sparsity
from voltflow.scheduler.cost import CostTable, build_cost_table, schedule_layers
from voltflow.scheduler.dataflow import OpWork, op_work
from voltflow.scheduler.documents import DocumentError, read_text, short
from voltflow.scheduler.network import Network
from voltflow.scheduler.sparsity import ARRAY_MODES, OpOperands, with_operands

__all__ = [
    "FORMAT",
    "DeadlineOn",
    "Profile",
    "ProfileError",
    "chip_digest",
    "load_profile",
    "network_digest",
    "parse_deadline_on",
    "profile_json",
    "profile_table",
]

FORMAT = "voltflow-profile/1"


class ProfileError(ValueError):
    """A profile file is missing, malformed, or for another network or chip."""


class DeadlineOn(enum.Enum):
    """Which cycles the deadline is guaranteed on (``--deadline-on``)."""

    WORST = "worst"  # the slowest input seen, tile by tile
    PERCENTILE = "percentile"  # pNN: each tile's stream at that percentile of the inputs
    DENSE = "dense"  # nothing skipped: every input


def parse_deadline_on(text: str) -> tuple[DeadlineOn, float]:
    """``worst``, ``dense`` or ``pNN`` (0 < NN <= 100) -> (kind, percentile)."""
    if text in ("worst", "dense"):
        return DeadlineOn(text), 100.0
    if text.startswith("p"):
        try:
            value = float(text[1:])
        except ValueError:
            value = math.nan
        if 0 < value <= 100:
            return DeadlineOn.PERCENTILE, value
    raise ValueError(
        f"--deadline-on must be worst, dense or a percentile pNN such as p95, not {text!r}"
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chip_digest(chip: Chip) -> str:
    """What a profile depends on of a chip: all but its name, title and source."""
    return _digest(repr(replace(chip, name="", title="", source="")))


def network_digest(network: Network) -> str:
    """What a profile depends on of a network: its ops and shapes."""
    return _digest(repr((network.input, network.ops)))


@dataclass(frozen=True, slots=True)
class Profile:
    """Per input, per array op name, what the input decides (``operands[i][op]``)."""

    network: str
    network_digest: str
    chip: str
    chip_digest: str
    inputs: tuple[str, ...]
    operands: tuple[Mapping[str, OpOperands], ...]
    summary: Mapping[str, Any]


def profile_json(profile: Profile) -> dict[str, Any]:
    """The ``voltflow-profile/1`` document."""
    return {
        "format": FORMAT,
        "network": profile.network,
        "network_digest": profile.network_digest,
        "chip": profile.chip,
        "chip_digest": profile.chip_digest,
        "inputs": list(profile.inputs),
        "summary": dict(profile.summary),
        "operands": [
            {
                name: {
                    "active_pairs": ops.active_pairs,
                    "macs": ops.macs,
                    "ticks": [list(row) for row in ops.ticks],
                    "streamed": [list(row) for row in ops.streamed],
                }
                for name, ops in per_input.items()
            }
            for per_input in profile.operands
        ],
    }


def load_profile(path: str | os.PathLike[str], network: Network, chip: Chip) -> Profile:
    """Read a profile and check that it was measured for ``network`` on ``chip``.

    Raises
    ------
    ProfileError
        Naming the file and the field.
    """
    label = os.fspath(path)
    try:
        raw = json.loads(read_text(path, label))
    except DocumentError as exc:
        raise ProfileError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{label}: not valid JSON: line {exc.lineno}: {exc.msg}") from None

    def fail(field: str, value: object, allowed: str) -> ProfileError:
        return ProfileError(f"{label}: {field}: must be {allowed}, not {short(value)}")

    if not isinstance(raw, dict):
        raise fail("top level", raw, "a mapping")
    for key in ("format", "network", "network_digest", "chip", "chip_digest", "inputs"):
        if key not in raw:
            raise ProfileError(f"{label}: {key}: missing")
    if raw["format"] != FORMAT:
        raise fail("format", raw["format"], repr(FORMAT))
    if raw["network"] != network.name or raw["network_digest"] != network_digest(network):
        raise ProfileError(
            f"{label}: network: the profile is of {short(raw['network'])}, not of this "
            f"{network.name!r} (profile it with voltflow profile --net {network.name})"
        )
    if raw["chip_digest"] != chip_digest(chip):
        raise ProfileError(
            f"{label}: chip: the profile was measured on {short(raw['chip'])}, not on this "
            f"{chip.name!r} (profile it again with --hw {chip.name})"
        )
    inputs = raw["inputs"]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise fail("inputs", inputs, "a non-empty list of input names")
    per_input = raw.get("operands")
    if not isinstance(per_input, list) or len(per_input) != len(inputs):
        raise fail("operands", short(per_input), f"one entry per input ({len(inputs)})")
    works = {op.name: op_work(op, chip, network) for op in network.ops}
    arrays = [name for name, work in works.items() if work.mode in ARRAY_MODES]
    operands = []
    for i, entry in enumerate(per_input):
        where = f"operands[{i}]"
        if not isinstance(entry, dict) or set(entry) != set(arrays):
            raise fail(where, short(entry), f"a mapping of the array ops {', '.join(arrays)}")
        parsed = {}
        for name in arrays:
            parsed[name] = _op_operands(entry[name], f"{where}.{name}", fail)
        try:
            with_operands(tuple(works.values()), chip, parsed)
        except ValueError as exc:
            raise ProfileError(f"{label}: {where}: {exc}") from None
        operands.append(parsed)
    summary: dict[str, Any] = _check_densities(
        raw.get("summary"), len(schedule_layers(network)), fail
    )
    return Profile(
        raw["network"],
        raw["network_digest"],
        raw["chip"],
        raw["chip_digest"],
        tuple(inputs),
        tuple(operands),
        summary,
    )


def _check_densities(summary: object, count: int, fail: Any) -> dict[str, Any]:
    """One entry per schedule layer, with densities that are fractions (the super-block
    baseline classifies layers by the mean activation density)."""
    if not isinstance(summary, dict):
        raise fail("summary", short(summary), "a mapping")
    layers = summary.get("layers")
    if not isinstance(layers, list) or len(layers) != count:
        raise fail("summary.layers", short(layers), f"a list of the {count} schedule layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise fail(f"summary.layers[{i}]", short(layer), "a mapping")
        act = layer.get("activation_density")
        if not isinstance(act, dict) or "mean" not in act:
            raise fail(
                f"summary.layers[{i}].activation_density", short(act), "a mapping with a mean"
            )
        values = (
            [(f"activation_density.{k}", v) for k, v in act.items()]
            if isinstance(act, dict)
            else [("activation_density", act)]
        )
        if layer.get("weight_density") is not None:
            values.append(("weight_density", layer["weight_density"]))
        for key, value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise fail(f"summary.layers[{i}].{key}", value, "a density in 0..1")
    return summary


def _op_operands(raw: object, where: str, fail: Any) -> OpOperands:
    if not isinstance(raw, dict):
        raise fail(where, raw, "a mapping")

    def integer(key: str, lo: int) -> int:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise fail(f"{where}.{key}", value, f"an integer >= {lo}")
        return value

    def table(key: str) -> tuple[tuple[int, ...], ...]:
        value = raw.get(key, [])
        ok = isinstance(value, list) and all(
            isinstance(row, list)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
            for row in value
        )
        if not ok:
            raise fail(f"{where}.{key}", short(value), "a list of lists of counts")
        return tuple(tuple(row) for row in value)

    return OpOperands(
        integer("active_pairs", 0), table("ticks"), table("streamed"), integer("macs", -1)
    )


def profile_table(
    network: Network,
    chip: Chip,
    profile: Profile,
    deadline_on: DeadlineOn,
    percentile: float = 100.0,
    policy: GatingPolicy = GatingPolicy.RRAM_PG,
    levels_v: Sequence[float] | None = None,
) -> CostTable:
    """The cost table a schedule is solved on: expected energy, cycles of the chosen bound."""
    tables = [
        build_cost_table(network, chip, policy, levels_v, operands) for operands in profile.operands
    ]
    dense = tuple(op_work(op, chip, network) for op in network.ops)
    if deadline_on is DeadlineOn.DENSE or chip.sparsity is not Sparsity.SKIP:
        bound = dense
    else:
        bound = tuple(
            _bound_work(dense[i], [t.works[i] for t in tables], deadline_on, percentile)
            for i in range(len(dense))
        )
    timing = build_cost_table(network, chip, policy, levels_v, works=bound)
    densities = [layer["activation_density"]["mean"] for layer in profile.summary["layers"]]
    layers = []
    for k, layer in enumerate(timing.layers):
        dynamic = {
            c: np.mean([t.layers[k].dynamic_j[c] for t in tables], axis=0) for c in layer.dynamic_j
        }
        layers.append(replace(layer, dynamic_j=dynamic, density=densities[k]))
    return replace(timing, layers=tuple(layers))


def _bound_work(
    dense: OpWork, works: Sequence[OpWork], deadline_on: DeadlineOn, percentile: float
) -> OpWork:
    """The work whose tile streams bound the inputs' (element-wise max or percentile): its
    cycles are at least any input's (worst) in every state, as a step's cycles grow with its
    stream ticks."""
    streams = [w.tile_streams for w in works]
    if any(s is None for s in streams):
        return dense
    stacked = np.array(streams)  # (inputs, groups, tiles)
    if deadline_on is DeadlineOn.WORST:
        bound = stacked.max(axis=0)
    else:
        bound = np.percentile(stacked, percentile, axis=0, method="higher")
    return replace(dense, tile_streams=tuple(tuple(int(v) for v in row) for row in bound))
