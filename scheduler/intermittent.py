"""The intermittent scheduling problem: a network on a capacitor-powered chip, run in power cycles.

Each power cycle boots, restores the last checkpoint (except the first), runs a run of layers, each
in a power state of the cost table, and commits a checkpoint (after the last layer: the output, if
the chip file says so); all of it must fit in one charge of the capacitor. Between cycles the
harvester recharges the capacitor. :class:`IntermittentProblem` holds the numbers (built from a
cost table and the chip file's ``intermittent`` section by :func:`intermittent_problem`, or
directly for tests); ``intermittent_dp`` solves it and ``intermittent_evaluate`` checks any
schedule. docs/intermittent.md has the model.
"""

import enum
import math
import os
from dataclasses import dataclass

import numpy as np

from .checkpoint import plan_checkpoints, transfer_costs
from .chip import CapacitorSpec, Chip, IntermittentSpec
from .cost import CostTable

__all__ = [
    "Checkpointing",
    "IntermittentProblem",
    "Objective",
    "intermittent_problem",
    "require_intermittent",
]


class Objective(enum.Enum):
    """What the intermittent scheduler minimises (the CLI spellings)."""

    LATENCY = "latency"  # inference to inference: on-times and recharges, the last one included
    ENERGY = "energy"  # energy drawn from the capacitor per inference


class Checkpointing(enum.Enum):
    """Where checkpoints may go: the solver's choice, or one of the two baselines."""

    OPTIMAL = "optimal"  # any layer boundary, chosen by the solver
    EVERY_LAYER = "every-layer"  # after every layer: one layer per power cycle
    NONE = "battery"  # never: the whole inference in one power cycle, as on a battery


@dataclass(frozen=True, slots=True, eq=False)
class IntermittentProblem:
    """One intermittent scheduling instance. Arrays are per layer over the S power states.

    Boundary k is between layer k - 1 and layer k (0: before the first, N: after the last).

    Attributes
    ----------
    name : str
        For reports.
    layer_names : tuple of str
        N schedule layers.
    voltage_v : numpy.ndarray
        (S, D) voltage of every domain in every state.
    energy_j, time_s : tuple of numpy.ndarray
        Per layer, (S,) energy (leakage and bank wake-ups included) and time in each state.
    transition_energy_j, transition_latency_s : float
        Per domain whose voltage changes between two layers of one power cycle.
    rails : int
        At most this many distinct voltages over all domains and layers of the schedule.
    capacitor : CapacitorSpec
        One charge, 1/2 C (V_on^2 - V_off^2), is the budget of every power cycle; its leakage is
        drawn during on-times and subtracted from the harvest while the chip is off.
    boot_energy_j, boot_time_s : float
        One power-up.
    wake_energy_j : tuple of float
        (N,) bank wake-ups at the start of a power cycle beginning at layer k that the cost table
        does not charge (it assumes the banks the previous layer used are on).
    checkpoint_bits : tuple of int
        (N + 1,) bits saved at boundary k (index 0 unused: 0). Index N: the output commit.
    checkpoint_energy_j : numpy.ndarray
        (N + 1, S) writing the checkpoint of boundary k when the cycle's last layer runs in
        state s (a (N + 1,) sequence: the same in every state).
    checkpoint_time_s : tuple of float
        (N + 1,) its duration.
    restore_energy_j : numpy.ndarray
        (N + 1, S) reading it back at the start of a power cycle beginning at layer k, whose
        first layer runs in state s (rows 0 and N unused: 0; (N + 1,): the same in every state).
    restore_time_s : tuple of float
        (N + 1,).
    """

    name: str
    layer_names: tuple[str, ...]
    voltage_v: np.ndarray
    energy_j: tuple[np.ndarray, ...]
    time_s: tuple[np.ndarray, ...]
    transition_energy_j: float
    transition_latency_s: float
    rails: int
    capacitor: CapacitorSpec
    boot_energy_j: float
    boot_time_s: float
    wake_energy_j: tuple[float, ...]
    checkpoint_bits: tuple[int, ...]
    checkpoint_energy_j: np.ndarray
    checkpoint_time_s: tuple[float, ...]
    restore_energy_j: np.ndarray
    restore_time_s: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.layer_names)
        if n < 1:
            raise ValueError("an intermittent problem needs at least one layer")
        volts = np.asarray(self.voltage_v, dtype=np.float64)
        if volts.ndim != 2 or not len(volts) or not volts.shape[1]:
            raise ValueError(f"voltage_v must be (states, domains), not shape {volts.shape}")
        object.__setattr__(self, "voltage_v", volts)
        for name in ("energy_j", "time_s"):
            arrays = tuple(np.asarray(a, dtype=np.float64) for a in getattr(self, name))
            if len(arrays) != n or any(a.shape != (len(volts),) for a in arrays):
                raise ValueError(f"{name} must hold one ({len(volts)},) array per layer")
            if any(not np.all(np.isfinite(a)) or np.any(a < 0) for a in arrays):
                raise ValueError(f"{name} must be finite and >= 0")
            object.__setattr__(self, name, arrays)
        for name in ("checkpoint_energy_j", "restore_energy_j"):
            table = np.asarray(getattr(self, name), dtype=np.float64)
            if table.ndim == 1:
                table = np.repeat(table[:, None], len(volts), axis=1)
            if table.shape != (n + 1, len(volts)):
                raise ValueError(f"{name} must be (layers + 1,) or (layers + 1, states)")
            if not np.all(np.isfinite(table)) or np.any(table < 0):
                raise ValueError(f"{name} must be finite and >= 0")
            object.__setattr__(self, name, table)
        lengths = {
            "wake_energy_j": n,
            "checkpoint_bits": n + 1,
            "checkpoint_time_s": n + 1,
            "restore_time_s": n + 1,
        }
        for name, length in lengths.items():
            values = tuple(getattr(self, name))
            if len(values) != length or any(not (math.isfinite(v) and v >= 0) for v in values):
                raise ValueError(f"{name} must hold {length} finite values >= 0")
            object.__setattr__(self, name, values)
        scalars = (
            "transition_energy_j", "transition_latency_s", "leakage_w", "boot_energy_j",
            "boot_time_s",
        )  # fmt: skip
        for name in scalars:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if not isinstance(self.capacitor, CapacitorSpec) or not (
            math.isfinite(self.charge_j) and self.charge_j > 0
        ):
            raise ValueError(f"capacitor must hold a positive charge, not {self.capacitor!r}")
        if isinstance(self.rails, bool) or not isinstance(self.rails, int) or self.rails < 1:
            raise ValueError(f"rails must be a positive integer, not {self.rails!r}")

    @property
    def charge_j(self) -> float:
        """The budget of one power cycle."""
        return self.capacitor.charge_j

    @property
    def leakage_w(self) -> float:
        return self.capacitor.leakage_w

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    @property
    def num_states(self) -> int:
        return len(self.voltage_v)

    def levels(self) -> np.ndarray:
        """(S, D) index of every state's voltage in the sorted list of distinct voltages."""
        grid = np.unique(self.voltage_v)
        return np.searchsorted(grid, self.voltage_v)


def require_intermittent(chip: Chip, source: str | os.PathLike[str]) -> IntermittentSpec:
    """``chip``'s ``intermittent`` section; ``ValueError`` naming ``source`` (the chip as the
    user gave it) if it has none."""
    if chip.intermittent is None:
        raise ValueError(
            f"{os.fspath(source)}: chip {chip.name!r} has no intermittent section (capacitor, "
            "boot, checkpoint store), which --intermittent needs; add one (docs/intermittent.md, "
            "scheduler/hardware/powerflow_ref.yaml has an example)"
        )
    return chip.intermittent


def intermittent_problem(
    table: CostTable,
    *,
    rails: int | None = None,
    transition_energy_j: float | None = None,
    transition_latency_s: float | None = None,
) -> IntermittentProblem:
    """The instance of a cost table on a chip with an ``intermittent`` section.

    ``None`` takes the chip file's value. Raises ``ValueError`` if the chip has no such section.
    """
    chip = table.chip
    spec = require_intermittent(chip, chip.name)
    checkpoints = plan_checkpoints(table, spec)
    costs = transfer_costs(table, spec, checkpoints)
    kinds = table.memory.kind_of()
    wake_pj = np.array([chip.bank(k).wake_energy_pj for k in kinds])
    n = len(table.layers)
    # After a boot every bank is off: a cycle starting at layer k wakes the banks its checkpoint
    # fills and all the banks layer k uses, also those the cost table counts as already on from
    # layer k - 1 (k = 0: the last layer, the table's wrap-around), which it does not charge.
    wake = []
    for k in range(n):
        on, before = table.layers[k].banks_on, table.layers[k - 1].banks_on
        held = checkpoints[k - 1].banks if k else np.zeros_like(on)
        charged = on & ~before
        wake.append(float(wake_pj[(on | held) & ~charged].sum()) * 1e-12)
    restore_e = costs.restore_energy_j.copy()
    restore_e[n] = 0.0
    restore_t = costs.restore_time_s.copy()
    restore_t[n] = 0.0
    return IntermittentProblem(
        name=f"{table.network.name} on {chip.name} ({table.policy.value}, intermittent)",
        layer_names=tuple(layer.name for layer in table.layers),
        voltage_v=table.voltages_v,
        energy_j=tuple(layer.energy_j for layer in table.layers),
        time_s=tuple(layer.time_s for layer in table.layers),
        transition_energy_j=(
            chip.transition_energy_j if transition_energy_j is None else transition_energy_j
        ),
        transition_latency_s=(
            chip.transition_latency_s if transition_latency_s is None else transition_latency_s
        ),
        rails=chip.rails if rails is None else rails,
        capacitor=spec.capacitor,
        boot_energy_j=costs.boot_energy_j,
        boot_time_s=costs.boot_time_s,
        wake_energy_j=tuple(wake),
        checkpoint_bits=(0, *(c.bits for c in checkpoints)),
        checkpoint_energy_j=costs.checkpoint_energy_j,
        checkpoint_time_s=tuple(float(t) for t in costs.checkpoint_time_s),
        restore_energy_j=restore_e,
        restore_time_s=tuple(float(t) for t in restore_t),
    )
