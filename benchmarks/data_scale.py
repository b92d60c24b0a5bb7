"""make bench-data: a synthetic 1,000,000-row CSV task loaded and tokenized two ways, each in a fresh process:

- lists: the file read into Python dicts, Examples, and a list of features (the path before `datasets`);
- datasets: peftbench's path (data.load_task + data.train_features: Arrow files, memory-mapped, `Dataset.map`),
  first with an empty cache, then again (the second run reads the cached rows and features).

Prints each one's peak resident memory and wall time. Options: rows=1000000 tokenizer=minilm_l6."""

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_costs import arguments

ROOT = Path(__file__).resolve().parent.parent
WORDS = "the a film movie story actor plot scene good bad great awful slow funny long dull bright dark".split()
TASK = """defaults: [/templates/task@_here_, _self_]
name: scale
hub: {path: none, name: null}
local: {dir: scale, format: csv, splits: {train: train.csv, validation: dev.csv}}
segments: ["{text}"]
labels: [neg, pos]
"""

LOAD = """
import json, resource, sys, time
started = time.perf_counter()
from peftbench import data, formats
from peftbench.cli import compose
from peftbench.plan import build_base, plan_run
mode, conf, data_dir, model = sys.argv[1:5]
from pathlib import Path
cfg = compose(["+method=bitfit", "+task=scale", f"model={model}", f"data_dir={data_dir}"], [Path(conf)])
plan = plan_run(cfg)
tokenizer = build_base(plan)[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "lists":
    rows = data.read_csv(Path(data_dir) / "scale" / "train.csv")
    examples = [data.to_example(row, cfg.task) for row in rows]
    features = formats.classifier_features(examples, tokenizer, cfg.task, plan.max_length)
    count = len(features)
else:
    splits = data.load_task(cfg.task, data_dir, cfg.seed)
    identity = data.identity(cfg.task, data_dir)
    features, lengths = data.train_features(splits, formats.classifier_features, "classifier", tokenizer,
                                            plan.max_length, identity)
    count = len(features)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"features": count, "peak_mib": peak / 1024, "model_mib": before / 1024,
                  "seconds": time.perf_counter() - started}))
"""


def write_task(folder: Path, rows: int) -> tuple[Path, Path]:
    conf, data_dir = folder / "conf", folder / "data"
    (conf / "task").mkdir(parents=True)
    (conf / "task" / "scale.yaml").write_text(TASK)
    (data_dir / "scale").mkdir(parents=True)
    rng = random.Random(0)
    for split, n in (("train", rows), ("dev", 1000)):
        with open(data_dir / "scale" / f"{split}.csv", "w") as file:
            file.write("text,label\n")
            for _ in range(n):
                file.write(f"{' '.join(rng.choices(WORDS, k=rng.randint(5, 25)))},{rng.choice(('neg', 'pos'))}\n")
    return conf, data_dir


def measure(mode: str, conf: Path, data_dir: Path, model: str, cache: Path) -> dict:
    env = {"PEFTBENCH_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", LOAD, mode, str(conf), str(data_dir), model]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    options = arguments({"rows": "1000000", "model": "minilm_l6"})
    rows = int(options["rows"])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        conf, data_dir = write_task(Path(folder), rows)
        size = (data_dir / "scale" / "train.csv").stat().st_size
        print(
            f"{rows:,} training rows, {size / 2**20:.0f} MiB of CSV (written in {time.perf_counter() - started:.0f} s)"
        )
        cache = Path(folder) / "cache"
        results = {
            "lists (Python dicts and lists)": measure("lists", conf, data_dir, options["model"], cache),
            "datasets, empty cache": measure("datasets", conf, data_dir, options["model"], cache),
            "datasets, second run (cache)": measure("datasets", conf, data_dir, options["model"], cache),
        }
    print(f"{'path':34} {'features':>10} {'peak RSS MiB':>13} {'of which before loading':>24} {'seconds':>8}")
    for name, r in results.items():
        print(f"{name:34} {r['features']:>10,} {r['peak_mib']:>13.0f} {r['model_mib']:>24.0f} {r['seconds']:>8.1f}")
    lists, first = results["lists (Python dicts and lists)"], results["datasets, empty cache"]
    added = (lists["peak_mib"] - lists["model_mib"]) / max(1.0, first["peak_mib"] - first["model_mib"])
    print(f"memory added by loading and tokenizing: lists / datasets = {added:.1f}x")


if __name__ == "__main__":
    main()
