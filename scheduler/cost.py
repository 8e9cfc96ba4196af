"""The cost model: for every schedule layer and every power state, time and energy by component.

A power state is one voltage per DVFS domain (order :data:`scheduler.chip.DOMAINS`). Time comes
from the exact reference-cycle count of :mod:`scheduler.dataflow` at the quantised frequencies;
energy is dynamic energy per counted event, scaled by its domain's voltage, plus leakage of the
domains and of the banks that are on, over the layer's time, plus bank wake-ups; what each event
costs, and in which domain, comes from the price table (:mod:`scheduler.prices`), applied here to
analytic activity. Vectorised over states with numpy.
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from voltflow.scheduler.chip import DOMAINS, BankKind, Chip, Domain, EnergySpec, GatingPolicy
from voltflow.scheduler.dataflow import Activity, OpWork, op_work
from voltflow.scheduler.memory import BankLayout, plan_memory
from voltflow.scheduler.network import Network
from voltflow.scheduler.prices import (
    DYNAMIC_PRICES,
    LEAKAGE_PRICES,
    Component,
    DynamicPrice,
    LeakageSource,
)
from voltflow.scheduler.sparsity import OpOperands, with_operands

__all__ = [
    "Component",
    "CostTable",
    "LayerCost",
    "LeakageSource",
    "build_cost_table",
    "schedule_layers",
]


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One schedule layer (a weighted op and the pool/add/concat ops after it) in every state."""

    name: str
    ops: tuple[str, ...]
    activity: Activity
    ref_cycles: np.ndarray  # (S,) int64, exact
    time_s: np.ndarray  # (S,)
    dynamic_j: dict[Component, np.ndarray]  # each (S,)
    leakage_w: dict[LeakageSource, np.ndarray]  # each (S,)
    wake_j: float  # banks woken at the start of this layer (state independent)
    banks_needed: np.ndarray  # (n_banks,) bool: banks whose contents this layer uses
    banks_on: np.ndarray  # (n_banks,) bool: on during the layer (= needed: woken just in time)
    density: float | None = None  # expected activation density (a sparsity profile's), or None

    @property
    def dynamic_total_j(self) -> np.ndarray:
        return np.sum(list(self.dynamic_j.values()), axis=0)

    @property
    def leakage_total_w(self) -> np.ndarray:
        return np.sum(list(self.leakage_w.values()), axis=0)

    @property
    def leakage_j(self) -> np.ndarray:
        return self.leakage_total_w * self.time_s

    @property
    def energy_j(self) -> np.ndarray:
        """Total energy of the layer in each state, leakage over its own time included."""
        return self.dynamic_total_j + self.leakage_j + self.wake_j


@dataclass(frozen=True, slots=True)
class CostTable:
    """Per layer x state costs of a network on a chip under a gating policy."""

    network: Network
    chip: Chip
    policy: GatingPolicy
    levels_v: tuple[float, ...]
    voltages_v: np.ndarray  # (S, len(DOMAINS)); state index = product order over DOMAINS
    layers: tuple[LayerCost, ...]
    works: tuple[OpWork, ...]
    memory: BankLayout

    @property
    def n_states(self) -> int:
        return len(self.voltages_v)

    def state_index(self, voltages_v: Sequence[float]) -> int:
        """Index of the state with these per-domain voltages (order of DOMAINS)."""
        if len(voltages_v) != len(DOMAINS):
            raise ValueError(
                f"a state has one voltage per domain ({', '.join(d.value for d in DOMAINS)}), "
                f"not {list(voltages_v)!r}"
            )
        hits = np.flatnonzero(
            np.all(np.abs(self.voltages_v - np.asarray(voltages_v)) < 1e-6, axis=1)
        )
        if not len(hits):
            raise ValueError(
                f"state {list(voltages_v)!r} is not on the voltage grid "
                f"{', '.join(f'{v:g}' for v in self.levels_v)} V"
            )
        return int(hits[0])

    def latency_s(self, state: int) -> float:
        """Frame latency with every layer in one state (no switches)."""
        return float(sum(layer.time_s[state] for layer in self.layers))


def schedule_layers(network: Network) -> tuple[tuple[int, ...], ...]:
    """Group chain ops into schedule layers: each weighted op with the unweighted ops after it.

    Unweighted ops before the first weighted op join the first layer. Power states switch only
    between schedule layers.
    """
    groups: list[list[int]] = []
    for i, op in enumerate(network.ops):
        if op.weighted or not groups:
            if groups and not any(network.ops[j].weighted for j in groups[-1]):
                groups[-1].append(i)
            else:
                groups.append([i])
        else:
            groups[-1].append(i)
    return tuple(tuple(g) for g in groups)


def build_cost_table(
    network: Network,
    chip: Chip,
    policy: GatingPolicy = GatingPolicy.RRAM_PG,
    levels_v: Sequence[float] | None = None,
    operands: Mapping[str, OpOperands] | None = None,
    *,
    works: Sequence[OpWork] | None = None,
) -> CostTable:
    """Cost of every schedule layer of ``network`` in every state of the voltage grid.

    ``levels_v`` restricts the grid (every domain uses the same levels); default: the chip's grid.
    ``operands``: per array op, what one input decides (``cosim.operands``); on a chip with
    ``array.sparsity`` the table is then that input's exact cost, else the dense bound (nothing
    gated or skipped). ``works``: the ops' works as given (``scheduler.profile``'s bounds)
    instead of the network's mapped ones.
    """
    if policy not in chip.gating_policies:
        raise ValueError(
            f"gating policy {policy.value!r} is not offered by chip {chip.name!r}; "
            f"it offers {', '.join(p.value for p in chip.gating_policies)}"
        )
    levels = tuple(chip.levels_v) if levels_v is None else tuple(float(v) for v in levels_v)
    for level in levels:
        if not any(abs(level - g) < 1e-9 for g in chip.levels_v):
            raise ValueError(
                f"voltage level {level:g} V is not on chip {chip.name!r}'s grid "
                f"({', '.join(f'{g:g}' for g in chip.levels_v)} V)"
            )
    volts = np.array(list(itertools.product(levels, repeat=len(DOMAINS))), dtype=np.float64)
    v = {d: volts[:, i] for i, d in enumerate(DOMAINS)}
    inc = {d: chip.divider_increment(d, v[d]) for d in DOMAINS}

    if works is None:
        works = tuple(op_work(op, chip, network) for op in network.ops)
        if operands is not None:
            works = with_operands(works, chip, operands)
    works = tuple(works)
    memory = plan_memory(network, chip, works)
    groups = schedule_layers(network)
    needed = [_banks_needed(g, works, memory, chip, policy) for g in groups]
    # A layer's banks are woken just before it (the PMU waits out the wake-up latency, tens of
    # ns): waking them a layer ahead would hide that wait but leak them through the whole
    # previous layer (about 3 uJ per SqueezeNet frame, 80 uJ per ResNet-18 frame at 1.1 V).
    on = needed
    kinds = memory.kind_of()
    wake_pj = np.array([chip.bank(k).wake_energy_pj for k in kinds])
    leak_uw = np.array([chip.bank(k).leakage_uw for k in kinds])
    kind_arr = np.array([k.value for k in kinds])

    e = chip.energy
    dyn_scale = {d: e.dynamic_law.factor(v[d], e.reference_v) for d in DOMAINS}
    leak_scale = {d: e.leakage_law.factor(v[d], e.reference_v) for d in DOMAINS}
    aon_leak_scale = float(e.leakage_law.factor(chip.always_on_v, e.reference_v))
    aon_dyn_scale = float(e.dynamic_law.factor(chip.always_on_v, e.reference_v))
    gating = policy is not GatingPolicy.NO_PG

    layers = []
    for gi, group in enumerate(groups):
        act = Activity()
        cycles = np.zeros(len(volts), dtype=np.int64)
        for i in group:
            act = act + works[i].activity
            cycles = cycles + works[i].ref_cycles(
                chip, inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]
            )
        time_s = cycles / (chip.reference_mhz * 1e6)
        pj = {price.component: _dynamic_pj(price, e, act, gating) for price in DYNAMIC_PRICES}
        dynamic = {
            c: pj[c]
            * 1e-12
            * (dyn_scale[c.domain] if c.domain else np.full(len(volts), aon_dyn_scale))
            for c in Component
        }
        bank_on = on[gi]
        leakage: dict[LeakageSource, np.ndarray] = {}
        for price in LEAKAGE_PRICES:
            if price.domain is None:  # the always-on supply
                leakage[price.source] = np.full(
                    len(volts), chip.always_on_idle_uw * 1e-6 * aon_leak_scale
                )
            elif price.bank is None:  # a domain's logic
                leakage[price.source] = (
                    chip.domain(price.domain).idle_power_uw * 1e-6 * leak_scale[price.domain]
                )
            else:  # the banks of one kind that are on
                uw = float(leak_uw[bank_on & (kind_arr == price.bank.value)].sum())
                leakage[price.source] = uw * 1e-6 * leak_scale[price.domain]
        woken = bank_on & ~on[gi - 1]
        layers.append(
            LayerCost(
                name=network.ops[group[0]].name,
                ops=tuple(network.ops[i].name for i in group),
                activity=act,
                ref_cycles=cycles,
                time_s=time_s,
                dynamic_j=dynamic,
                leakage_w=leakage,
                wake_j=float(wake_pj[woken].sum()) * 1e-12,
                banks_needed=needed[gi],
                banks_on=bank_on,
            )
        )
    return CostTable(network, chip, policy, levels, volts, tuple(layers), works, memory)


def _dynamic_pj(price: DynamicPrice, e: EnergySpec, act: Activity, gating: bool) -> float:
    """Picojoules of one dynamic component: each term's price times its analytic count."""
    if price.gating_only and not gating:
        return 0.0
    total = 0.0
    for i, term in enumerate(price.terms):
        pj = term.sign * getattr(e, term.energy) * getattr(act, term.activity)
        total = pj if i == 0 else total + pj
    return total


def _banks_needed(
    group: tuple[int, ...],
    works: tuple[OpWork, ...],
    memory: BankLayout,
    chip: Chip,
    policy: GatingPolicy,
) -> np.ndarray:
    """Banks whose contents the layer reads, writes or must keep (live tensors)."""
    if policy is GatingPolicy.NO_PG:
        return np.ones(memory.total, dtype=bool)
    mask = np.zeros(memory.total, dtype=bool)
    for i in group:
        mask |= memory.scratchpad_banks_live(i, chip)
    rram0 = memory.first_bank(BankKind.RRAM)
    if policy is GatingPolicy.LAYER_PG:
        mask[rram0:] = True
    else:
        for i in group:
            lo, hi = memory.weight_banks[i]
            mask[lo:hi] = True
    return mask
