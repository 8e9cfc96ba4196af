"""Problem instances: per-layer power-state tables and the ``voltflow-instance/1`` JSON format.

A :class:`Problem` is a chain of layers; every layer offers a table of power states (one voltage per
domain, with the layer's time, energy and idle leakage in that state). Voltages are mapped once to
integer indices into a sorted global grid, :attr:`Problem.levels_v`, so that rails and switches are
counted on integers, never by comparing floats.
"""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .documents import DocumentError, parse_json, read_text, short, write_atomic

__all__ = [
    "FORMAT",
    "VOLTAGE_RESOLUTION_V",
    "InstanceError",
    "LayerTable",
    "Problem",
    "Restriction",
    "load_instance",
    "problem_from_json",
    "problem_to_json",
    "restrict_to_levels",
    "save_instance",
    "states_within_levels",
]

#: The format tag this version reads and writes.
FORMAT = "voltflow-instance/1"
_FORMAT_FAMILY = "voltflow-instance/"

# Grid voltages are computed as integer steps divided by this (exact), not multiplied by 1e-6.
_STEPS_PER_VOLT = 1_000_000.0
#: Voltages closer than half of this are the same grid level (1 µV: far below any regulator step,
#: far above the rounding noise of values such as ``0.9 + 4 * 0.05``).
VOLTAGE_RESOLUTION_V = 1.0 / _STEPS_PER_VOLT


class InstanceError(ValueError):
    """A problem instance (a file or constructor arguments) is malformed.

    The message names the file (when there is one), the field path (for example
    ``layers[3].time_s[17]``), the offending value and what is allowed.
    """

    def __init__(self, field_path: str, message: str, *, file: str | None = None) -> None:
        self.field_path = field_path
        self.message = message
        self.file = file
        where = f"{file}: " if file else ""
        what = f"{field_path} " if field_path else ""
        super().__init__(f"{where}{what}{message}")

    def inside(self, prefix: str = "", *, file: str | None = None) -> "InstanceError":
        """The same error, seen from an enclosing field ``prefix`` and/or from ``file``."""
        if prefix and self.field_path:
            sep = "" if self.field_path.startswith("[") else "."
            path = f"{prefix}{sep}{self.field_path}"
        else:
            path = prefix or self.field_path
        return InstanceError(path, self.message, file=file or self.file)


def _table(name: str, values: Any, ndim: int) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        shape = "a table (states x domains) of numbers" if ndim == 2 else "a list of numbers"
        raise InstanceError(name, f"must be {shape}, not {short(values)}") from None
    if array.ndim != ndim:
        shape = "a table (states x domains) of numbers" if ndim == 2 else "a list of numbers"
        raise InstanceError(name, f"must be {shape}, not an array of shape {array.shape}")
    array.flags.writeable = False
    return array


def _check_elements(name: str, array: np.ndarray, ok: np.ndarray, allowed: str) -> None:
    bad = np.argwhere(~ok)
    if bad.size:
        index = "".join(f"[{int(k)}]" for k in bad[0])
        value = float(array[tuple(bad[0])])
        raise InstanceError(f"{name}{index}", f"must be {allowed}, not {short(value)}")


def _check_number(name: str, value: Any, *, positive: bool = False) -> float:
    allowed = "a positive finite number" if positive else "a non-negative finite number"
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InstanceError(name, f"must be {allowed}, not {short(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise InstanceError(name, f"must be {allowed}, not {short(number)}")
    return number


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class LayerTable:
    """The power states one layer can run in.

    Parameters
    ----------
    name : str
        Layer name (for reports).
    voltage_v : ndarray, shape (S, D)
        Voltage of every domain in every state.
    energy_j : ndarray, shape (S,)
        Energy of the layer in that state, leakage over ``time_s`` included.
    time_s : ndarray, shape (S,)
        Wall time of the layer in that state (positive).
    leakage_w : ndarray, shape (S,)
        Power drawn when idling in that state after the layer.
    density : float or None
        Expected activation density of the layer's input, 0..1 (a sparsity profile's; the
        SparseDVFS super-block baseline's signal); None: not known (dense).
    """

    name: str
    voltage_v: np.ndarray
    energy_j: np.ndarray
    time_s: np.ndarray
    leakage_w: np.ndarray
    density: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InstanceError("name", f"must be a non-empty string, not {short(self.name)}")
        voltage = _table("voltage_v", self.voltage_v, 2)
        if voltage.shape[0] == 0 or voltage.shape[1] == 0:
            raise InstanceError(
                "voltage_v",
                f"must have at least one state and one domain, not shape {voltage.shape}",
            )
        _check_elements(
            "voltage_v", voltage, np.isfinite(voltage) & (voltage > 0), "a positive finite voltage"
        )
        object.__setattr__(self, "voltage_v", voltage)
        states = voltage.shape[0]
        for name, positive in (("energy_j", False), ("time_s", True), ("leakage_w", False)):
            array = _table(name, getattr(self, name), 1)
            if array.shape[0] != states:
                raise InstanceError(
                    name, f"must have one entry per state ({states}), not {array.shape[0]}"
                )
            ok = np.isfinite(array) & ((array > 0) if positive else (array >= 0))
            allowed = "a positive finite number" if positive else "a non-negative finite number"
            _check_elements(name, array, ok, allowed)
            object.__setattr__(self, name, array)
        if self.density is not None:
            d = self.density
            if isinstance(d, bool) or not isinstance(d, int | float) or not 0 <= d <= 1:
                raise InstanceError("density", f"must be a number in 0..1, not {short(d)}")
            object.__setattr__(self, "density", float(d))

    @property
    def num_states(self) -> int:
        """Number of power states (rows) of this layer."""
        return int(self.voltage_v.shape[0])


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class Problem:
    """A scheduling problem: a chain of layers, transition and sleep costs.

    Parameters
    ----------
    name : str
        Instance name.
    domains : tuple of str
        Voltage domains, in the column order of every ``voltage_v`` table.
    transition_energy_j, transition_latency_s : float
        Cost of one switch, paid per domain whose voltage changes between consecutive layers.
    sleep_power_w : float
        Power while asleep after the last layer.
    sleep_entry_switches : int
        Entering sleep costs this many switches (energy and latency).
    wraparound : bool
        Whether staying on pays the switches from the last layer's state back to the first's.
    layers : tuple of LayerTable
        The chain, in execution order.
    source : str
        Free-text provenance.

    Attributes
    ----------
    levels_v : ndarray, shape (L,)
        Sorted distinct voltages used anywhere (the grid).
    level_index : tuple of ndarray, shape (S_i, D), int
        Per layer, the grid index of every state's voltage in every domain.
    """

    name: str
    domains: tuple[str, ...]
    transition_energy_j: float
    transition_latency_s: float
    sleep_power_w: float
    sleep_entry_switches: int
    wraparound: bool
    layers: tuple[LayerTable, ...]
    source: str = ""
    levels_v: np.ndarray = field(init=False)
    level_index: tuple[np.ndarray, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InstanceError("name", f"must be a string, not {short(self.name)}")
        if not isinstance(self.source, str):
            raise InstanceError("source", f"must be a string, not {short(self.source)}")
        domains = self.domains
        if (
            isinstance(domains, str)
            or not isinstance(domains, Sequence)
            or not domains
            or not all(isinstance(d, str) and d for d in domains)
        ):
            raise InstanceError(
                "domains", f"must be a non-empty list of domain names, not {short(domains)}"
            )
        if len(set(domains)) != len(domains):
            raise InstanceError("domains", f"must not repeat a name, not {list(domains)!r}")
        object.__setattr__(self, "domains", tuple(domains))
        for name in ("transition_energy_j", "transition_latency_s", "sleep_power_w"):
            object.__setattr__(self, name, _check_number(name, getattr(self, name)))
        entry = self.sleep_entry_switches
        if isinstance(entry, bool) or not isinstance(entry, int | np.integer) or entry < 0:
            raise InstanceError(
                "sleep_entry_switches", f"must be a non-negative integer, not {short(entry)}"
            )
        object.__setattr__(self, "sleep_entry_switches", int(entry))
        if not isinstance(self.wraparound, bool):
            raise InstanceError(
                "wraparound", f"must be true or false, not {short(self.wraparound)}"
            )
        layers = self.layers
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
            raise InstanceError(
                "layers", f"must be a non-empty list of layers, not {short(layers)}"
            )
        for i, layer in enumerate(layers):
            if not isinstance(layer, LayerTable):
                raise InstanceError(f"layers[{i}]", f"must be a LayerTable, not {short(layer)}")
            if layer.voltage_v.shape[1] != len(domains):
                raise InstanceError(
                    f"layers[{i}].voltage_v",
                    f"must have one column per domain ({len(domains)}), "
                    f"not {layer.voltage_v.shape[1]}",
                )
        object.__setattr__(self, "layers", tuple(layers))
        # The grid: voltages quantised to VOLTAGE_RESOLUTION_V, then indexed by integers.
        quantised = [
            np.rint(layer.voltage_v * _STEPS_PER_VOLT).astype(np.int64) for layer in layers
        ]
        grid = np.unique(np.concatenate([q.ravel() for q in quantised]))
        levels = grid / _STEPS_PER_VOLT
        levels.flags.writeable = False
        indices = []
        for q in quantised:
            index = np.searchsorted(grid, q).astype(np.intp)
            index.flags.writeable = False
            indices.append(index)
        object.__setattr__(self, "levels_v", levels)
        object.__setattr__(self, "level_index", tuple(indices))

    @property
    def num_layers(self) -> int:
        """Number of layers N."""
        return len(self.layers)

    @property
    def num_domains(self) -> int:
        """Number of voltage domains D."""
        return len(self.domains)

    @property
    def num_levels(self) -> int:
        """Number of distinct voltages L in the grid."""
        return int(self.levels_v.shape[0])

    def level_of(self, voltage_v: float) -> int:
        """Grid index of ``voltage_v``; :class:`InstanceError` if it is not on the grid."""
        quantised = round(float(voltage_v) * _STEPS_PER_VOLT)
        grid = np.rint(self.levels_v * _STEPS_PER_VOLT).astype(np.int64)
        index = int(np.searchsorted(grid, quantised))
        if index >= grid.shape[0] or grid[index] != quantised:
            grid_text = ", ".join(f"{v:g}" for v in self.levels_v)
            raise InstanceError(
                "voltage", f"must be one of the grid's levels ({grid_text} V), not {voltage_v!r}"
            )
        return index


@dataclass(frozen=True, slots=True, eq=False)
class Restriction:
    """A problem restricted to some voltage levels, with the way back to the original states.

    Attributes
    ----------
    problem : Problem
        The restricted problem (its own, smaller grid).
    original_states : tuple of ndarray
        Per layer, the original state index of every restricted state.
    """

    problem: Problem
    original_states: tuple[np.ndarray, ...]

    def to_original(self, states: Iterable[int]) -> tuple[int, ...]:
        """Map a restricted schedule back to state indices of the original problem."""
        return tuple(int(self.original_states[i][s]) for i, s in enumerate(states))


def states_within_levels(problem: Problem, levels: Iterable[int]) -> tuple[np.ndarray, ...]:
    """Per layer, the indices of states whose voltages all lie in ``levels`` (grid indices)."""
    mask = np.zeros(problem.num_levels, dtype=bool)
    for level in levels:
        if not 0 <= int(level) < problem.num_levels:
            raise ValueError(f"level index must be in [0, {problem.num_levels}), not {level!r}")
        mask[int(level)] = True
    return tuple(np.flatnonzero(mask[index].all(axis=1)) for index in problem.level_index)


def restrict_to_levels(problem: Problem, levels: Iterable[int]) -> Restriction:
    """Keep only the states whose voltages all lie in ``levels`` (grid indices).

    Raises
    ------
    ValueError
        If some layer has no state left.
    """
    levels = sorted({int(level) for level in levels})
    kept = states_within_levels(problem, levels)
    for i, states in enumerate(kept):
        if states.size == 0:
            volts = ", ".join(f"{problem.levels_v[k]:g}" for k in levels)
            raise ValueError(
                f"layer {i} ({problem.layers[i].name!r}) has no state within levels {{{volts}}} V"
            )
    layers = tuple(
        LayerTable(
            name=layer.name,
            voltage_v=layer.voltage_v[states],
            energy_j=layer.energy_j[states],
            time_s=layer.time_s[states],
            leakage_w=layer.leakage_w[states],
        )
        for layer, states in zip(problem.layers, kept, strict=True)
    )
    restricted = Problem(
        name=problem.name,
        source=problem.source,
        domains=problem.domains,
        transition_energy_j=problem.transition_energy_j,
        transition_latency_s=problem.transition_latency_s,
        sleep_power_w=problem.sleep_power_w,
        sleep_entry_switches=problem.sleep_entry_switches,
        wraparound=problem.wraparound,
        layers=layers,
    )
    for states in kept:
        states.flags.writeable = False
    return Restriction(problem=restricted, original_states=kept)


# --- JSON ------------------------------------------------------------------------------------

_TOP_KEYS = ("format", "name", "source", "domains", "transition", "sleep", "wraparound", "layers")
_REQUIRED_TOP = ("format", "name", "domains", "transition", "sleep", "wraparound", "layers")
_LAYER_KEYS = ("name", "voltage_v", "energy_j", "time_s", "leakage_w", "density")
_REQUIRED_LAYER = ("name", "voltage_v", "energy_j", "time_s", "leakage_w")


def _object(path: str, value: Any, keys: Sequence[str], required: Sequence[str]) -> Mapping:
    if not isinstance(value, Mapping):
        raise InstanceError(path, f"must be a JSON object, not {short(value)}")
    unknown = [k for k in value if k not in keys]
    if unknown:
        allowed = ", ".join(keys)
        names = ", ".join(repr(k) for k in unknown)
        raise InstanceError(path, f"has unknown field(s) {names}; allowed: {allowed}")
    missing = [k for k in required if k not in value]
    if missing:
        raise InstanceError(path, f"is missing field(s) {', '.join(repr(k) for k in missing)}")
    return value


def _number_list(path: str, value: Any) -> list:
    if not isinstance(value, list):
        raise InstanceError(path, f"must be a list of numbers, not {short(value)}")
    for k, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise InstanceError(f"{path}[{k}]", f"must be a number, not {short(item)}")
    return value


def problem_from_json(data: Any, *, file: str | None = None) -> Problem:
    """Build a :class:`Problem` from parsed ``voltflow-instance/1`` JSON.

    Raises
    ------
    InstanceError
        Naming ``file``, the field path, the value and what is allowed.
    """
    try:
        if not isinstance(data, Mapping):
            raise InstanceError("", f"must be a JSON object, not {short(data)}")
        tag = data.get("format")
        if tag != FORMAT:
            if isinstance(tag, str) and tag.startswith(_FORMAT_FAMILY):
                raise InstanceError(
                    "format",
                    f"is {tag!r}, which this version of voltflow cannot read "
                    f"(it reads {FORMAT!r}); upgrade voltflow",
                )
            raise InstanceError("format", f"must be {FORMAT!r}, not {short(tag)}")
        _object("", data, _TOP_KEYS, _REQUIRED_TOP)
        transition = _object(
            "transition", data["transition"], ("energy_j", "latency_s"), ("energy_j", "latency_s")
        )
        sleep = _object(
            "sleep", data["sleep"], ("power_w", "entry_switches"), ("power_w", "entry_switches")
        )
        layers_data = data["layers"]
        if not isinstance(layers_data, list) or not layers_data:
            raise InstanceError("layers", f"must be a non-empty list, not {short(layers_data)}")
        domains = data["domains"]
        if not isinstance(domains, list):
            raise InstanceError("domains", f"must be a list of domain names, not {short(domains)}")
        layers = []
        for i, layer in enumerate(layers_data):
            try:
                layers.append(_layer_from_json(layer, len(domains)))
            except InstanceError as error:
                raise error.inside(f"layers[{i}]") from None
        entry = sleep["entry_switches"]
        if isinstance(entry, bool) or not isinstance(entry, int) or entry < 0:
            raise InstanceError(
                "sleep.entry_switches", f"must be a non-negative integer, not {short(entry)}"
            )
        return Problem(
            name=data["name"],
            source=data.get("source", ""),
            domains=tuple(domains),
            transition_energy_j=_check_number("transition.energy_j", transition["energy_j"]),
            transition_latency_s=_check_number("transition.latency_s", transition["latency_s"]),
            sleep_power_w=_check_number("sleep.power_w", sleep["power_w"]),
            sleep_entry_switches=entry,
            wraparound=data["wraparound"],
            layers=tuple(layers),
        )
    except InstanceError as error:
        raise error.inside(file=file) from None


def _layer_from_json(layer: Any, num_domains: int) -> LayerTable:
    _object("", layer, _LAYER_KEYS, _REQUIRED_LAYER)
    voltage = layer["voltage_v"]
    if not isinstance(voltage, list) or not voltage:
        raise InstanceError("voltage_v", f"must be a non-empty list of rows, not {short(voltage)}")
    for s, row in enumerate(voltage):
        _number_list(f"voltage_v[{s}]", row)
        if len(row) != num_domains:
            raise InstanceError(
                f"voltage_v[{s}]",
                f"must have one voltage per domain ({num_domains}), not {len(row)}",
            )
    for name in ("energy_j", "time_s", "leakage_w"):
        _number_list(name, layer[name])
    # Every entry is a number and the rows are rectangular: conversion cannot fail.
    return LayerTable(
        name=layer["name"],
        voltage_v=np.asarray(voltage, dtype=np.float64),
        energy_j=np.asarray(layer["energy_j"], dtype=np.float64),
        time_s=np.asarray(layer["time_s"], dtype=np.float64),
        leakage_w=np.asarray(layer["leakage_w"], dtype=np.float64),
        density=layer.get("density"),
    )


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The ``voltflow-instance/1`` JSON object of ``problem`` (floats round-trip exactly)."""
    data: dict[str, Any] = {"format": FORMAT, "name": problem.name}
    if problem.source:
        data["source"] = problem.source
    data.update(
        domains=list(problem.domains),
        transition={
            "energy_j": problem.transition_energy_j,
            "latency_s": problem.transition_latency_s,
        },
        sleep={"power_w": problem.sleep_power_w, "entry_switches": problem.sleep_entry_switches},
        wraparound=problem.wraparound,
        layers=[
            {
                "name": layer.name,
                "voltage_v": layer.voltage_v.tolist(),
                "energy_j": layer.energy_j.tolist(),
                "time_s": layer.time_s.tolist(),
                "leakage_w": layer.leakage_w.tolist(),
                **({} if layer.density is None else {"density": layer.density}),
            }
            for layer in problem.layers
        ],
    )
    return data


def load_instance(path: str | Path) -> Problem:
    """Read a ``voltflow-instance/1`` file.

    Raises
    ------
    InstanceError
        If the file cannot be read, is not valid JSON or not a valid instance; the message
        names the file.
    """
    try:
        data = parse_json(read_text(path), str(path))
    except DocumentError as exc:
        raise InstanceError("", str(exc)) from None
    return problem_from_json(data, file=str(path))


def save_instance(problem: Problem, path: str | Path) -> None:
    """Write ``problem`` as a compact ``voltflow-instance/1`` file."""
    text = json.dumps(problem_to_json(problem), separators=(",", ":"), allow_nan=False)
    try:
        write_atomic(path, text + "\n")
    except DocumentError as exc:
        raise InstanceError("", str(exc)) from None
