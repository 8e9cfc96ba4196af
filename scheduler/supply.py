"""Harvested power over time, and how long the storage capacitor takes to recharge from it.

A harvest is piecewise constant: a constant power (``--harvest-uw``), or a trace read from a CSV
file ``time_s,power_w`` (``--harvest-trace``) whose row k holds from its time until the next row's,
the last row forever. The capacitor's leakage (a constant power, chip file
``intermittent.capacitor.leakage_uw``) is subtracted while it recharges. docs/intermittent.md has
the model; :func:`recharge_end` is the one place the solver computes a recharge.
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from .documents import DocumentError, read_text, short

__all__ = [
    "TRACE_HEADER",
    "Harvest",
    "HarvestError",
    "NetCharging",
    "check_harvest",
    "load_harvest_trace",
]

#: The first line of a harvest trace file.
TRACE_HEADER = "time_s,power_w"


class HarvestError(ValueError):
    """A harvest trace or power that cannot be used; the message names the file, row and value."""


@dataclass(frozen=True, slots=True, eq=False)
class Harvest:
    """Harvested power: ``power_w[k]`` from ``times_s[k]`` until ``times_s[k + 1]`` (the last row
    forever). An inference starts at ``times_s[0]`` with the capacitor charged to V_on.

    Attributes
    ----------
    times_s : numpy.ndarray
        Strictly increasing start times of the pieces, seconds.
    power_w : numpy.ndarray
        Harvested power of each piece, watts (>= 0).
    source : str
        ``"constant"`` or the trace file's name, for reports.
    """

    times_s: np.ndarray
    power_w: np.ndarray
    source: str

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=np.float64)
        power = np.asarray(self.power_w, dtype=np.float64)
        if times.ndim != 1 or times.shape != power.shape or not len(times):
            raise HarvestError("a harvest needs as many times as powers, at least one of each")
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(power))):
            raise HarvestError("harvest times and powers must be finite numbers")
        if np.any(np.diff(times) <= 0):
            raise HarvestError("harvest times must increase strictly")
        if np.any(power < 0):
            raise HarvestError("harvested power must be >= 0")
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "power_w", power)

    @classmethod
    def constant(cls, power_w: float) -> "Harvest":
        """A harvester delivering ``power_w`` at all times (from time 0)."""
        if not (isinstance(power_w, int | float) and math.isfinite(power_w) and power_w > 0):
            raise HarvestError(
                f"harvested power must be a positive number of watts, not {power_w!r}"
            )
        return cls(np.zeros(1), np.array([float(power_w)]), "constant")

    @property
    def is_constant(self) -> bool:
        return len(self.times_s) == 1

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    def describe(self) -> str:
        """One line for reports."""
        if self.is_constant:
            return f"constant {self.power_w[0] * 1e6:.6g} uW"
        span = self.times_s[-1] - self.times_s[0]
        return (
            f"trace {self.source}: {len(self.times_s)} rows over {span:.6g} s, "
            f"{self.power_w.min() * 1e6:.6g} to {self.power_w.max() * 1e6:.6g} uW"
        )


def load_harvest_trace(path: str | os.PathLike[str]) -> Harvest:
    """Read a ``time_s,power_w`` CSV file (header line first; blank lines and ``#`` comments
    skipped). Every problem is a :class:`HarvestError` naming the file, the row and the value."""
    label = str(path)
    try:
        text = read_text(path, label)
    except DocumentError as exc:
        raise HarvestError(str(exc)) from None
    times: list[float] = []
    powers: list[float] = []
    header_seen = False
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            if line.replace(" ", "") != TRACE_HEADER:
                raise HarvestError(
                    f"{label}: line {line_no}: the first line must be the header "
                    f"{TRACE_HEADER!r}, not {short(line)}"
                )
            header_seen = True
            continue
        row = len(times) + 1
        where = f"{label}: row {row} (line {line_no})"
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            raise HarvestError(
                f"{where}: must be two values time_s,power_w, not {len(cells)}: {short(line)}"
            )
        values = []
        for name, cell in zip(("time_s", "power_w"), cells, strict=True):
            try:
                value = float(cell)
            except ValueError:
                raise HarvestError(f"{where}: {name} must be a number, not {short(cell)}") from None
            if not math.isfinite(value):
                raise HarvestError(f"{where}: {name} must be a finite number, not {short(cell)}")
            values.append(value)
        time_s, power_w = values
        if times and time_s <= times[-1]:
            raise HarvestError(
                f"{where}: time_s {time_s:g} must be after row {row - 1}'s {times[-1]:g} "
                "(times increase strictly)"
            )
        if power_w < 0:
            raise HarvestError(f"{where}: power_w must be >= 0, not {power_w:g}")
        times.append(time_s)
        powers.append(power_w)
    if not header_seen:
        raise HarvestError(f"{label}: is empty; the first line must be the header {TRACE_HEADER!r}")
    if not times:
        raise HarvestError(
            f"{label}: has no rows after the header; give at least one time_s,power_w"
        )
    return Harvest(np.array(times), np.array(powers), os.path.basename(label))


def check_harvest(harvest: Harvest, leakage_w: float) -> None:
    """Refuse a harvest that cannot recharge the capacitor, or whose recharge is not FIFO.

    The solver is exact when the stored energy never falls while the chip is off, that is when the
    harvested power is never below the capacitor's leakage (docs/intermittent.md).
    """
    if harvest.is_constant:
        power = float(harvest.power_w[0])
        if power <= leakage_w:
            raise HarvestError(
                f"harvested power {power * 1e6:.6g} uW must exceed the capacitor's leakage "
                f"{leakage_w * 1e6:.6g} uW (intermittent.capacitor.leakage_uw), or the capacitor "
                "never recharges"
            )
        return
    below = np.flatnonzero(harvest.power_w < leakage_w)
    if len(below):
        row = int(below[0])
        raise HarvestError(
            f"{harvest.source}: row {row + 1}: power_w {harvest.power_w[row]:g} is below the "
            f"capacitor's leakage {leakage_w:g} W (intermittent.capacitor.leakage_uw); the exact "
            "scheduler needs the harvest to cover the leakage at every instant"
        )
    if not np.any(harvest.power_w > leakage_w):
        raise HarvestError(
            f"{harvest.source}: no row's power_w exceeds the capacitor's leakage "
            f"{leakage_w:g} W: the capacitor never recharges"
        )


@dataclass(frozen=True, slots=True, eq=False)
class NetCharging:
    """The net power charging the capacitor while the chip is off (harvest minus leakage), with
    its running integral, for vectorised recharge times. Build it with :meth:`of`."""

    times_s: np.ndarray
    net_w: np.ndarray
    cum_j: np.ndarray  # net energy delivered from times_s[0] to times_s[k]
    max_net_w: float

    @classmethod
    def of(cls, harvest: Harvest, leakage_w: float) -> "NetCharging":
        check_harvest(harvest, leakage_w)
        net = harvest.power_w - leakage_w
        cum = np.concatenate([[0.0], np.cumsum(net[:-1] * np.diff(harvest.times_s))])
        return cls(harvest.times_s, net, cum, float(net.max()))

    def recharge_end(self, start_s: np.ndarray | float, energy_j: np.ndarray | float) -> np.ndarray:
        """The first time at or after ``start_s`` by which ``energy_j`` has been delivered
        (``inf`` if never: the trace ends below the leakage). Non-decreasing in both arguments,
        because the net power is never negative (:func:`check_harvest`)."""
        start = np.asarray(start_s, dtype=np.float64)
        energy = np.asarray(energy_j, dtype=np.float64)
        start, energy = np.broadcast_arrays(start, energy)
        if len(self.times_s) == 1:
            return start + energy / self.net_w[0]
        pieces = len(self.times_s)
        piece = np.clip(np.searchsorted(self.times_s, start, side="right") - 1, 0, None)
        target = self.cum_j[piece] + self.net_w[piece] * (start - self.times_s[piece]) + energy
        # The piece in which the running integral reaches the target: after the last knot below
        # it, and one that delivers power (a target the sum rounded away needs the next such).
        knot = np.maximum(np.searchsorted(self.cum_j, target, side="left") - 1, piece)
        positive = np.flatnonzero(self.net_w > 0)
        nxt = np.searchsorted(positive, knot, side="left")
        found = nxt < len(positive)
        j = np.where(found, positive[np.minimum(nxt, len(positive) - 1)], pieces - 1)
        rate = np.where(found, self.net_w[j], 1.0)
        later = self.times_s[j] + np.maximum(target - self.cum_j[j], 0.0) / rate
        end = np.where(j == piece, start + energy / rate, later)
        end = np.where(found, end, np.inf)
        end = np.where(energy <= 0, start, end)
        return np.maximum(end, start)
