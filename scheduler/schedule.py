"""The ``voltflow-schedule/1`` file: a solved schedule as the PMU compiler reads it.

Written from a :class:`~scheduler.solve.Result` and its :class:`~scheduler.instance.Problem`;
read back into a :class:`ScheduleFile` without needing the instance. docs/solvers.md has the
format.
"""

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .documents import DocumentError, parse_json, read_text, short, write_atomic
from .evaluate import SlackMode
from .instance import Problem
from .solve import Method, Result, Status

__all__ = [
    "FORMAT",
    "ScheduleError",
    "ScheduleFile",
    "ScheduledLayer",
    "load_schedule",
    "save_schedule",
    "schedule_from_json",
    "schedule_to_json",
]

_E = TypeVar("_E", bound=enum.Enum)

#: The format tag this version reads and writes.
FORMAT = "voltflow-schedule/1"


class ScheduleError(ValueError):
    """A schedule file is malformed; the message names the file, the field and the value."""


@dataclass(frozen=True, slots=True)
class ScheduledLayer:
    """One layer of a schedule: its state and what it costs."""

    name: str
    state: int
    voltage_v: tuple[float, ...]  # one per domain, in ScheduleFile.domains order
    time_s: float
    energy_j: float
    switches_in: int  # domains switched on entry from the previous layer (0 for the first)


@dataclass(frozen=True, slots=True)
class ScheduleFile:
    """A schedule as stored in a ``voltflow-schedule/1`` file."""

    instance: str
    domains: tuple[str, ...]
    period_s: float
    rails: int
    method: Method
    status: Status
    lower_bound_j: float | None
    gap: float | None
    rails_used_v: tuple[float, ...]
    layers: tuple[ScheduledLayer, ...]
    energy_j: float
    layer_energy_j: float
    transition_energy_j: float
    slack_energy_j: float
    latency_s: float
    idle_s: float
    switches: int
    slack_mode: SlackMode
    wrap_switches: int
    sleep_entry_switches: int
    # Where the instance came from, for tools that need the network and chip again (the PMU
    # compiler): {"network", "chip", "policy", "levels_v", "wraparound"}. Optional.
    provenance: Mapping[str, Any] | None = None


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def schedule_to_json(
    result: Result, problem: Problem, provenance: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``voltflow-schedule/1`` object of ``result`` (``problem`` is the instance it solved).

    ``provenance`` (optional) records the network, chip and options the instance was built from.
    """
    evaluation = result.evaluation
    layers = []
    for i, s in enumerate(result.states):
        layer = problem.layers[i]
        if i:
            before = problem.level_index[i - 1][result.states[i - 1]]
            switches = int((problem.level_index[i][s] != before).sum())
        else:
            switches = 0
        layers.append(
            {
                "name": layer.name,
                "state": s,
                "voltage_v": [float(problem.levels_v[k]) for k in problem.level_index[i][s]],
                "time_s": float(layer.time_s[s]),
                "energy_j": float(layer.energy_j[s]),
                "switches_in": switches,
            }
        )
    assert evaluation.slack_mode is not None  # results are feasible
    return {
        "format": FORMAT,
        "instance": problem.name,
        "domains": list(problem.domains),
        "period_s": evaluation.period_s,
        "rails": evaluation.rails,
        "method": result.method.value,
        "status": result.status.value,
        "lower_bound_j": _finite_or_none(result.lower_bound_j),
        "gap": _finite_or_none(result.gap),
        "rails_used_v": list(evaluation.rails_used_v),
        "layers": layers,
        "totals": {
            "energy_j": evaluation.energy_j,
            "layer_energy_j": evaluation.layer_energy_j,
            "transition_energy_j": evaluation.transition_energy_j,
            "slack_energy_j": evaluation.slack_energy_j,
            "latency_s": evaluation.latency_s,
            "idle_s": evaluation.idle_s,
            "switches": evaluation.switches,
        },
        "slack": {
            "mode": evaluation.slack_mode.value,
            "wrap_switches": evaluation.wrap_switches,
            "sleep_entry_switches": (
                problem.sleep_entry_switches if evaluation.slack_mode is SlackMode.SLEEP else 0
            ),
        },
        **({"provenance": dict(provenance)} if provenance is not None else {}),
    }


def save_schedule(
    result: Result,
    problem: Problem,
    path: str | Path,
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write ``result`` as a ``voltflow-schedule/1`` file (indented JSON)."""
    text = json.dumps(schedule_to_json(result, problem, provenance), indent=2, allow_nan=False)
    try:
        write_atomic(path, text + "\n")
    except DocumentError as exc:
        raise ScheduleError(str(exc)) from None


# --- Reading ------------------------------------------------------------------------------------

_TOP = {
    "format": str,
    "instance": str,
    "domains": list,
    "period_s": float,
    "rails": int,
    "method": str,
    "status": str,
    "lower_bound_j": (float, type(None)),
    "gap": (float, type(None)),
    "rails_used_v": list,
    "layers": list,
    "totals": dict,
    "slack": dict,
}
_LAYER = {
    "name": str,
    "state": int,
    "voltage_v": list,
    "time_s": float,
    "energy_j": float,
    "switches_in": int,
}
_TOTALS = {
    "energy_j": float,
    "layer_energy_j": float,
    "transition_energy_j": float,
    "slack_energy_j": float,
    "latency_s": float,
    "idle_s": float,
    "switches": int,
}
_SLACK = {"mode": str, "wrap_switches": int, "sleep_entry_switches": int}
_KIND_NAMES = {
    float: "a finite number",
    int: "an integer",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _fields(path: str, value: Any, spec: Mapping[str, Any]) -> Mapping[str, Any]:
    where = path or "the schedule"
    if not isinstance(value, Mapping):
        raise ScheduleError(f"{where} must be a JSON object, not {short(value)}")
    unknown = sorted(set(value) - set(spec))
    if unknown:
        raise ScheduleError(f"{where} has unknown field(s) {unknown}; allowed: {', '.join(spec)}")
    missing = [k for k in spec if k not in value]
    if missing:
        raise ScheduleError(f"{where} is missing field(s) {missing}")
    for key, kind in spec.items():
        item = value[key]
        name = f"{path}.{key}" if path else key
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = any(
            (isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item))
            if k is float
            else (isinstance(item, int) and not isinstance(item, bool))
            if k is int
            else isinstance(item, k)
            for k in kinds
        )
        if not ok:
            allowed = " or ".join(_KIND_NAMES[k] for k in kinds)
            raise ScheduleError(f"{name} must be {allowed}, not {short(item)}")
    return value


def schedule_from_json(data: Any, *, file: str | None = None) -> ScheduleFile:
    """Build a :class:`ScheduleFile` from parsed ``voltflow-schedule/1`` JSON.

    Raises
    ------
    ScheduleError
        Naming ``file``, the field, the value and what is allowed.
    """
    try:
        if isinstance(data, Mapping) and data.get("format") != FORMAT:
            tag = data.get("format")
            raise ScheduleError(f"format must be {FORMAT!r}, not {short(tag)}")
        provenance = data.get("provenance") if isinstance(data, Mapping) else None
        if provenance is not None and not isinstance(provenance, Mapping):
            raise ScheduleError(f"provenance must be a JSON object, not {short(provenance)}")
        if isinstance(data, Mapping):
            data = {k: v for k, v in data.items() if k != "provenance"}
        top = _fields("", data, _TOP)
        domains = tuple(top["domains"])
        if not all(isinstance(d, str) for d in domains):
            raise ScheduleError(f"domains must be a list of names, not {short(top['domains'])}")
        if not all(_is_number(v) for v in top["rails_used_v"]):
            raise ScheduleError(
                f"rails_used_v must be a list of voltages, not {short(top['rails_used_v'])}"
            )
        layers = []
        for i, raw in enumerate(top["layers"]):
            layer = _fields(f"layers[{i}]", raw, _LAYER)
            volts = layer["voltage_v"]
            if len(volts) != len(domains) or not all(_is_number(v) for v in volts):
                raise ScheduleError(
                    f"layers[{i}].voltage_v must hold one number per domain ({len(domains)}), "
                    f"not {short(volts)}"
                )
            layers.append(
                ScheduledLayer(
                    name=layer["name"],
                    state=layer["state"],
                    voltage_v=tuple(float(v) for v in volts),
                    time_s=float(layer["time_s"]),
                    energy_j=float(layer["energy_j"]),
                    switches_in=layer["switches_in"],
                )
            )
        if not layers:
            raise ScheduleError("layers must not be empty")
        totals = _fields("totals", top["totals"], _TOTALS)
        slack = _fields("slack", top["slack"], _SLACK)
        method = _choice("method", top["method"], Method)
        status = _choice("status", top["status"], Status)
        mode = _choice("slack.mode", slack["mode"], SlackMode)
        return ScheduleFile(
            instance=top["instance"],
            domains=domains,
            period_s=float(top["period_s"]),
            rails=top["rails"],
            method=method,
            status=status,
            lower_bound_j=top["lower_bound_j"],
            gap=top["gap"],
            rails_used_v=tuple(float(v) for v in top["rails_used_v"]),
            layers=tuple(layers),
            energy_j=float(totals["energy_j"]),
            layer_energy_j=float(totals["layer_energy_j"]),
            transition_energy_j=float(totals["transition_energy_j"]),
            slack_energy_j=float(totals["slack_energy_j"]),
            latency_s=float(totals["latency_s"]),
            idle_s=float(totals["idle_s"]),
            switches=totals["switches"],
            slack_mode=mode,
            wrap_switches=slack["wrap_switches"],
            sleep_entry_switches=slack["sleep_entry_switches"],
            provenance=dict(provenance) if provenance is not None else None,
        )
    except ScheduleError as error:
        if file:
            raise ScheduleError(f"{file}: {error}") from None
        raise


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _choice(name: str, value: Any, kind: type[_E]) -> _E:
    try:
        return kind(value)
    except ValueError:  # worded as the enum says it, with the value cut to a bounded length
        raise ScheduleError(f"{short(value)} is not a valid {kind.__name__}") from None


def load_schedule(path: str | Path) -> ScheduleFile:
    """Read a ``voltflow-schedule/1`` file."""
    try:
        data = parse_json(read_text(path), str(path))
    except DocumentError as exc:
        raise ScheduleError(str(exc)) from None
    return schedule_from_json(data, file=str(path))
