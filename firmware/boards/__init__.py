"""One module per board: the only firmware code that touches hardware or the simulator."""
