"""Pure training logic, no I/O: tasks, labels, training sets, rolling-origin backtests, metrics,
reason codes, figures and the simulator ground-truth comparison."""
