"""Verilog generation, cached Verilator builds, cocotb testbenches, reports and the CLI."""
