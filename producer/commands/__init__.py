"""The operator commands besides `pull`: discover, plan, verify, reset (and status's entry).

Each module holds one command: `run(args, settings_of)` builds what it needs from the parsed
flags (through the CLI's `settings_of`, so flags and `OCPI_PULLER_*` variables mean what they
mean for `pull`) and returns the exit code. `outcome.py` prints their result or failure the same
way: text, or exactly one JSON line under `--output json`.
"""
