"""The benchmark behind `make bench`: every figure is a ratio against a baseline measured in the same
run, so it holds on a noisy machine. Results go to `bench/results.json` and a table on stdout."""
