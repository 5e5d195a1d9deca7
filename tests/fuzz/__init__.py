"""Coverage-guided fuzzing (atheris) of everything that reads untrusted input.

`python -m tests.fuzz --runs N` runs every harness of `harnesses.py` for N inputs, each in its own
process (libFuzzer owns the process it runs in); `--harness NAME` picks some; `--list` names
them. `make fuzz` is the long run; tests/fuzz/test_fuzz_smoke.py a short one inside `make test`.
"""
