"""voltflow: energy-minimal power-state schedules for edge DNN accelerators, checked on RTL.

The sub-packages follow the data flow (docs/architecture.md): ``voltflow.scheduler`` (models and
solvers), ``voltflow.hw`` (shared hardware facts), ``voltflow.pmu``, ``voltflow.rtl``,
``voltflow.cosim`` and ``voltflow.cli``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
