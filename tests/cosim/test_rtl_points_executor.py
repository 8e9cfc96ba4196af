"""`make figures`' RTL points on the executor: two `voltflow cosim` runs on a Dask LocalCluster
give the process pool's rows (cycles, energies, pass flags), with the same progress lines."""

from pathlib import Path

import pytest
from voltflow.scheduler.executor import open_executor

from bench.rtl_points import RTL_COLUMNS, run_points

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
#: The two smallest networks, each at its default rate on the small chip (one build serves both).
NETWORKS = ("ds_cnn", "resnet8")
#: Row entries that depend on the machine and the moment, not on the simulation.
VARYING = {"wall_s", "host", "chip_build"}


@pytest.mark.cosim
def test_rtl_points_on_a_local_cluster_give_the_pools_rows(tmp_path: Path) -> None:
    rows, steps = {}, {}
    for name, cluster in (("pool", None), ("cluster", "local")):  # the pool forks first
        steps[name] = []
        with open_executor(cluster, 2) as executor:
            rows[name] = run_points(
                NETWORKS, tmp_path / name, 1, steps[name].append, ("--hw", str(SMALL_CHIP)),
                executor,
            )  # fmt: skip
    for pool, cluster in zip(rows["pool"], rows["cluster"], strict=True):
        assert set(RTL_COLUMNS) <= set(pool)
        assert {k: v for k, v in pool.items() if k not in VARYING} == {
            k: v for k, v in cluster.items() if k not in VARYING
        }
        assert pool["passed"] and pool["bit_exact"] and pool["deadlines_met"]
        assert pool["layers_cycle_exact"] == pool["layers"] > 0 and pool["measured_cycles"] > 0
    assert [r["network"] for r in rows["cluster"]] == list(NETWORKS)
    for name in ("pool", "cluster"):  # one line per point as it finishes, saying where the
        assert len(steps[name]) == 2  # chip build came from
        assert all(
            " pass (" in s and ("chip cached" in s or "chip built in" in s) for s in steps[name]
        )
    assert (tmp_path / "cluster" / "ds_cnn" / "report.json").is_file()
