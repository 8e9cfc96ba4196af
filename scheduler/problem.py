"""Problem construction: a network on a chip under options -> a solver instance."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voltflow.scheduler.chip import DOMAINS, Chip, GatingPolicy
from voltflow.scheduler.cost import CostTable, build_cost_table
from voltflow.scheduler.instance import LayerTable, Problem
from voltflow.scheduler.network import Network
from voltflow.scheduler.sparsity import OpOperands

__all__ = ["ProblemOptions", "build_problem", "check_rails", "problem_from_table"]


@dataclass(frozen=True, slots=True)
class ProblemOptions:
    """Choices that turn a chip and a network into one scheduling instance.

    ``None`` means: take the chip file's value.
    """

    policy: GatingPolicy = GatingPolicy.RRAM_PG
    levels_v: tuple[float, ...] | None = None
    transition_energy_j: float | None = None
    transition_latency_s: float | None = None
    sleep_power_w: float | None = None
    sleep_entry_switches: int | None = None
    wraparound: bool = True
    # Per array op, what one input decides (scheduler.sparsity): that input's exact cost on a
    # chip with array.sparsity; None: the dense bound.
    operands: Mapping[str, OpOperands] | None = None

    def __post_init__(self) -> None:
        for name in ("transition_energy_j", "transition_latency_s", "sleep_power_w"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        if self.sleep_entry_switches is not None and self.sleep_entry_switches < 0:
            raise ValueError(
                f"sleep_entry_switches must be an integer >= 0, not {self.sleep_entry_switches!r}"
            )


def check_rails(rails: int, chip: Chip | None) -> None:
    """Refuse a rail limit the chip cannot have (``chip`` None: a bare instance, any >= 1)."""
    top = chip.rails if chip is not None else None
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1 or (top and rails > top):
        allowed = f"1 to {top} (chip {chip.name!r} has {top} rails)" if chip else "at least 1"
        raise ValueError(f"rails must be {allowed}, not {rails!r}")


def problem_from_table(table: CostTable, options: ProblemOptions) -> Problem:
    """The instance of an already computed cost table."""
    chip = table.chip

    def pick(value: float | int | None, default: float | int) -> float | int:
        return default if value is None else value

    layers = tuple(
        LayerTable(
            name=layer.name,
            voltage_v=table.voltages_v,
            energy_j=layer.energy_j,
            time_s=layer.time_s,
            leakage_w=layer.leakage_total_w,
            density=layer.density,
        )
        for layer in table.layers
    )
    return Problem(
        name=f"{table.network.name} on {chip.name} ({table.policy.value})",
        source=(
            f"voltflow cost model: network {table.network.name}, chip {chip.name}, "
            f"policy {table.policy.value}, levels {', '.join(f'{v:g}' for v in table.levels_v)} V"
        ),
        domains=tuple(d.value for d in DOMAINS),
        transition_energy_j=float(pick(options.transition_energy_j, chip.transition_energy_j)),
        transition_latency_s=float(pick(options.transition_latency_s, chip.transition_latency_s)),
        sleep_power_w=float(pick(options.sleep_power_w, chip.sleep_power_uw * 1e-6)),
        sleep_entry_switches=int(pick(options.sleep_entry_switches, chip.sleep_entry_switches)),
        wraparound=options.wraparound,
        layers=layers,
    )


def build_problem(
    network: Network, chip: Chip, options: ProblemOptions | None = None
) -> tuple[Problem, CostTable]:
    """Cost table and scheduling instance of ``network`` on ``chip``."""
    options = options or ProblemOptions()
    levels: Sequence[float] | None = options.levels_v
    table = build_cost_table(network, chip, options.policy, levels, options.operands)
    return problem_from_table(table, options), table
