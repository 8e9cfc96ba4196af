"""Hardware facts shared by the PMU and the accelerator RTL: widths and bus signatures."""
