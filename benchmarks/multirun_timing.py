"""Wall time of one 2 methods x 2 seeds multirun, sequential versus the local parallel launcher
(joblib, 2 workers sharing the cores):

    python benchmarks/multirun_timing.py [model=minilm_l6] [samples=160]
"""

import subprocess
import sys
import tempfile
import time


def multirun_seconds(launcher: list[str], settings: list[str]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "peftbench",
                "-m",
                "+method=lora,bitfit",
                "+task=rte",
                "seed=0,1",
                f"results_dir={folder}/results",
                f"hydra.sweep.dir={folder}/sweep",
                *settings,
                *launcher,
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def main() -> None:
    args = {"model": "minilm_l6", "samples": "160"}
    args.update(argument.split("=", 1) for argument in sys.argv[1:])
    settings = [
        f"model={args['model']}",
        f"task.max_train_samples={args['samples']}",
        "trainer.epochs=1",
        "tracker=none",
        "checkpoint_dir=null",
        "force=true",
    ]
    print(
        f"2 x 2 multirun: lora,bitfit x seed 0,1 on rte, {args['model']}, {args['samples']} training examples, 1 epoch"
    )
    sequential = multirun_seconds([], settings)
    print(f"  sequential (basic launcher, default threads): {sequential:.1f} s", flush=True)
    parallel = multirun_seconds(["hydra/launcher=local_parallel"], settings)
    print(f"  joblib, 2 workers x 1 thread:                 {parallel:.1f} s")
    print(f"  sequential / parallel = {sequential / parallel:.2f}")


if __name__ == "__main__":
    main()
