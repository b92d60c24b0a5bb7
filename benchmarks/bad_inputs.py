"""The bad-input table of tests/test_faults.py, run as a user types it: each case as its own
`python -m peftbench` process, with its exit code, wall time and what it printed last.

    .venv/bin/python benchmarks/bad_inputs.py        # prints a Markdown table
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from test_faults import BAD_COMMAND_LINES, command_line  # noqa: E402  (the table the tests hold)


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "WANDB_MODE": "disabled", "PEFTBENCH_RESULTS_DIR": f"{home}/results"}
        env.pop("WANDB_API_KEY", None)
        print(
            "| command line (after +method=lora +task=rte tracker=none model=tiny_bert) | exit | seconds | message |"
        )
        print("|---|---|---|---|")
        for overrides, _ in BAD_COMMAND_LINES:
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "peftbench", *command_line(overrides)],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            seconds = time.perf_counter() - started
            last = (result.stderr.strip().splitlines() or [""])[-1].replace("|", "\\|")
            print(f"| `{' '.join(overrides)}` | {result.returncode} | {seconds:.1f} | {last} |")
        wrote = list(Path(home, "results").rglob("*.json"))
        print(f"\nrecords written: {len(wrote)}")


if __name__ == "__main__":
    main()
