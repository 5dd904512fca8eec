"""The virtual fixture: a physical model, a MicroPython board process and a pty."""
