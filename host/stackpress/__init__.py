"""stackpress host tool: talks to a fixture over its serial protocol; never in its control loop."""

__version__ = "0.9.0"
