"""`make figures`: reproduce the PowerFlow-DNN evaluation with voltflow (issue 7).

Writes PNG + CSV per figure, ``sweep_all_networks.csv``, ``summary.json`` (headline numbers) and
``results.md`` (the README's Results section) into ``--out`` (default ``figures/``)::

    python -m bench.figures [--out DIR] [--quick] [--workers N] [--cluster ADDR]
                            [--ilp-time-limit S] [--no-rtl]

Figures:

1. ``fig1_squeezenet_rate``: SqueezeNet energy per period vs target rate (1 FPS to the highest
   feasible) for nominal, +gating, +greedy, +gating+greedy and the exact DP.
2. ``fig2_networks``: normalised energy of the four paper networks at the highest rate the
   nominal baseline meets and at half of it.
3. ``fig3_rails``: energy vs number of rails (1 to 5), evenly spaced vs optimised rails.
4. ``fig4_solver_time``: exact DP (cold) vs CBC ILP time vs grid size (3, 5, 6, 9 levels) at 80 %
   of each network's nominal limit, with the ILP's status; dominance pruning: states kept and the
   measured speedup of the bare DP (fresh instances, with and without pruning).
5. ``fig5_transition``: sensitivity to the transition energy (0 to 1000 nJ per switch).
6. ``fig6_breakdown``: per-layer energy breakdown of three SqueezeNet layers, and
   ``fig6_saving.csv``: per-layer saving of the DP schedule sorted by marginal utility.
7. ``fig7_rtl_validation``: one rate point per network run on the RTL with ``voltflow cosim``
   (bench/rtl_points.py): predicted vs measured cycles, energy and saving (``--no-rtl`` skips it;
   off by default with ``--quick``).

Baselines as in the paper: nominal and +greedy on the ``no_pg`` instance; +gating,
+gating+greedy, the exact DP, the ILP and even rails on ``rram_pg``. Every job, the RTL points
included, runs on one executor (scheduler/executor.py): the local process pool, or a Dask cluster
with ``--cluster local`` or ``--cluster tcp://HOST:PORT`` (docs/scale.md); the ILPs (the longest)
first; rate sweeps are grouped per method in chunks so that the DP's per-instance preparation is
reused within a job. ``--quick`` solves a few points per figure.

Modules: ``experiments`` (what is computed: the constants and the job functions, run in worker
processes), ``runner`` (the jobs on the executor, and its progress line), ``summary`` (the jobs'
results turned into the rows of every CSV and the numbers of ``summary.json``), ``plots``
(figures 1-6), ``tables`` (the CSV files) and ``markdown`` (``results.md``); ``__main__`` joins
them.
"""
