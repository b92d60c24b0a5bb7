#!/usr/bin/env bash
# The GPU check, one script for one short session on a GPU machine (with gpu_bundle/ from prepare.sh):
#   1. the project imports and its CPU tests of the real-scale path pass on that machine's Python
#   2. MiniLM LoRA on RTE on CUDA in fp32 and bf16: accuracy, step time, memory by phase
#   3. a random-weight RoBERTa-base LoRA: step time and memory at real width, with memory sanity checks
#   4. with 2 GPUs, the same run under `accelerate launch --num_processes 2`
# QLoRA 4-bit on CUDA needs bitsandbytes (125 MB), which does not fit the bundle: it is reported as not run.
# Everything it writes goes under $OUT (default gpu_check_out/).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-gpu_check_out}"; mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
SITE=/tmp/gpu_check_site
python -m pip install --quiet --no-index --no-deps --target "$SITE" gpu_bundle/wheels/*.whl
export PYTHONPATH="$PWD:$SITE" PEFTBENCH_DATA_DIR="$PWD/gpu_bundle/data" HF_HUB_OFFLINE=1 PEFTBENCH_CHECKPOINT_DIR=
python - <<'PY'
import sys, torch, transformers, peft
print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__,
      "peft", peft.__version__, "cuda", torch.version.cuda, [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
from safetensors.torch import load_file, save_file
import shutil, pathlib
src, dst = pathlib.Path("gpu_bundle/minilm_l6_fp16"), pathlib.Path("/tmp/minilm_l6")
shutil.copytree(src, dst, dirs_exist_ok=True)
weights = {k: v.float() for k, v in load_file(src / "model.safetensors").items()}
save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
PY
echo "== 1. CPU tests of the real-scale path on this machine's Python"
timeout 240 python -m pytest -q -x -p no:cacheprovider tests/test_house.py tests/test_real_scale.py tests/test_speed_options.py \
  -k "not activation_memory_grows" 2>&1 | tail -5
RUN=(python -m peftbench +method=lora +task=rte tracker=none device=cuda results_dir="$OUT/results" num_threads=4)
echo "== 2. MiniLM LoRA on RTE, CUDA, fp32 and bf16"
for precision in fp32 bf16; do
  timeout 180 "${RUN[@]}" model=hf model.hub_id=/tmp/minilm_l6 model.name=minilm_l6_gpu trainer.precision=$precision \
    trainer.group_by_length=true 2>&1 | grep -E "accuracy|step time|peak|phases|error" | head -8
done
echo "== 3. RoBERTa-base (random weights) LoRA, 60 steps: costs at real width"
timeout 120 "${RUN[@]}" model=roberta_base model.pretrained=false model.tokenizer=/tmp/minilm_l6 \
  task.max_train_samples=960 trainer.epochs=1 trainer.precision=bf16 2>&1 | grep -E "step time|peak|error" | head -4
if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  echo "== 4. 2 GPUs, accelerate launch"
  timeout 180 accelerate launch --num_processes 2 -m peftbench +method=lora +task=rte tracker=none \
    model=hf model.hub_id=/tmp/minilm_l6 model.name=minilm_l6_gpu_ddp results_dir="$OUT/results" 2>&1 | tail -3
else
  echo "== 4. one GPU: the 2-GPU accelerate run is not run"
fi
echo "== QLoRA 4-bit on CUDA: not run (bitsandbytes is not on this machine and does not fit the bundle)"
echo "== memory sanity: weights bytes equal the parameter bytes; CUDA peaks split by phase"
python - "$OUT/results" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.json")):
    r = json.loads(path.read_text())
    if r["status"] != "ok":
        print(path.name, r["status"], r.get("error", {}).get("message")); continue
    m, p = r["memory"], r["run"]["parameter_dtypes"]
    held = sum(n * (2 if d in ("bfloat16", "float16") else 4) for group in p.values() for d, n in group.items())
    print(f"{r['run']['model']} {r['config']['trainer']['precision']}: accuracy {r['metrics']['final'].get('accuracy')}, "
          f"step {1000 * r['throughput']['median_step_seconds']:.1f} ms, peak train {m['peak_train_bytes'] / 2**20:.0f} MiB "
          f"(reserved {m['peak_reserved_bytes'] / 2**20:.0f}), by phase {m['by_phase']}, activations "
          f"{(m['breakdown']['activations_bytes'] or 0) / 2**20:.0f} MiB, weights bytes {m['breakdown']['weights_bytes']} "
          f"{'==' if m['breakdown']['weights_bytes'] == held else '!='} parameter bytes {held}")
PY
