"""Power-management unit: command ISA, compiler back-end, ROM images and the PMU hardware."""
