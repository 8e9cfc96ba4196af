"""The Amaranth accelerator: systolic array, feeder, scratchpads, RRAM banks, layer sequencer."""
