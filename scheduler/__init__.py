"""Network zoo, chip description, cost model, problem instances and power-state solvers."""
