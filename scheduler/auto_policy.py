"""``--policy auto``: solve with every gating policy and keep the one that uses the least energy."""

from collections.abc import Callable, Sequence
from typing import TypeVar

from voltflow.scheduler.solve import InfeasibleError

__all__ = ["least_energy"]

T = TypeVar("T")


def least_energy(
    candidates: Sequence[str], attempt: Callable[[str], T], energy_j: Callable[[T], float]
) -> tuple[str, dict[str, T], str]:
    """The candidate whose ``attempt`` uses the least energy.

    ``attempt(policy)`` runs for each candidate (an `InfeasibleError` leaves it out). Returns the
    chosen policy, every feasible result by policy, and a summary such as
    ``"no_pg 7.0942 uJ, layer_pg infeasible, ..."``. When none is feasible, the infeasibility that
    names the highest feasible rate is raised.
    """
    results: dict[str, T] = {}
    infeasible: list[InfeasibleError] = []
    for policy in candidates:
        try:
            results[policy] = attempt(policy)
        except InfeasibleError as exc:
            infeasible.append(exc)
    if not results:
        raise max(infeasible, key=lambda exc: exc.max_rate_fps)
    chosen = min(results, key=lambda policy: energy_j(results[policy]))
    summary = ", ".join(
        f"{policy} {energy_j(results[policy]) * 1e6:.4f} uJ"
        if policy in results
        else f"{policy} infeasible"
        for policy in candidates
    )
    return chosen, results, summary
