"""ClawDesk benchmarks (see each script's docstring; `make bench` runs the performance ones)."""
