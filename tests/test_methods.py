"""One test body per behaviour, the methods as rows: training works, frozen weights stay frozen, and
the trainable count equals the method's exact formula."""

import math
from pathlib import Path

import pytest
import torch
from transformers import set_seed

from peftbench import checkpoints, measure, recipe
from peftbench.methods import METHODS, get_method
from peftbench.methods.selection import selection_masks
from peftbench.plan import build_base, plan_run
from peftbench.recipe import run
from peftbench.train import train


def tiny_dims(cfg) -> dict:
    """Layers L, width d, FFN width i, classes C, and B: the base's parameters outside the head."""
    a = cfg.model.architecture
    set_seed(cfg.seed)
    base = build_base(plan_run(cfg))[0]
    B = sum(p.numel() for p in base.parameters()) - head(a.hidden_size, 2)
    return {"L": a.num_hidden_layers, "d": a.hidden_size, "i": a.intermediate_size, "C": 2, "B": B}


def head(d, C):
    return d * C + C  # the new classifier: weight and bias


def lora_matrices(L, r, d):
    return L * 2 * (2 * r * d)  # A (r x d) and B (d x r) on q and v in every layer


PREFIX_MLP = ["method.num_virtual_tokens=5", "method.projection_hidden_size=16"]
# case -> (method, overrides, exact trainable count, count stored after training (None: the same)),
# counts as functions of the tiny BERT's layers L, width d, FFN width i, classes C, total size (with
# the method) and B, the base's parameters outside the head
CASES = {
    "linear_probe": ("linear_probe", [], lambda L, d, i, C, total, B: head(d, C), None),
    # per layer: q, k, v, attention-output, FFN-in (i), FFN-output biases and two LayerNorm biases;
    # plus the embedding LayerNorm and pooler biases, and the head
    "bitfit": ("bitfit", [], lambda L, d, i, C, total, B: L * (7 * d + i) + 2 * d + head(d, C), None),
    # the paper's subset: query and FFN-intermediate biases
    "bitfit_query_ffn": (
        "bitfit",
        ["method.biases=query_ffn"],
        lambda L, d, i, C, total, B: L * (d + i) + head(d, C),
        None,
    ),
    # 0.5% of the base's entries by Fisher information
    "fishmask": ("fishmask", [], lambda L, d, i, C, total, B: math.floor(0.005 * B) + head(d, C), None),
    # n FFN nodes per layer, each with d weights in the FFN input and d in its output; n from the share
    "far": (
        "far",
        ["method.trainable_share=0.005"],
        lambda L, d, i, C, total, B: L * round(0.005 * (B + head(d, C)) / (L * 2 * d)) * 2 * d + head(d, C),
        None,
    ),
    # a dense diff and a gate logit per base entry train; 0.5% of the entries are kept
    "diff_pruning": (
        "diff_pruning",
        [],
        lambda L, d, i, C, total, B: 2 * B + head(d, C),
        lambda L, d, i, C, total, B: math.floor(0.005 * B) + head(d, C),
    ),
    # SparseAdapter, Large-Sparse: bottleneck 4 widened to 8 at sparsity 0.5, so each of the two weights of an
    # adapter keeps 4d entries (a dense bottleneck-4 weight's), by magnitude; biases (8 + d) dense; after
    # attention and FFN. Only survivors exist as numbers: what trains is what is stored.
    "sparse_adapter_large": (
        "sparse_adapter",
        ["method.bottleneck=4", "method.large_sparse=true", "method.saliency=magnitude"],
        lambda L, d, i, C, total, B: L * 2 * (2 * 4 * d + 8 + d) + head(d, C),
        None,
    ),
    # d numbers in all (the per-tensor scales among them)
    "intrinsic_said": (
        "intrinsic_said",
        ["method.dimension=200"],
        lambda L, d, i, C, total, B: 200 + head(d, C),
        None,
    ),
    "lora": ("lora", ["method.r=4"], lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C), None),
    "lora_pissa": (
        "lora",
        ["method.r=4", "method.init=pissa"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    "lora_loftq": (
        "lora",
        ["method.r=4", "method.init=loftq", "method.loftq_iter=2"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    # CorDA: B A from W times the training batches' input covariance, in on_train_start; W keeps the residual
    "lora_corda": (
        "lora",
        ["method.r=4", "method.init=corda"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    "lora_orthogonal": (
        "lora",
        ["method.r=4", "method.init=orthogonal"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    "lora_pissa_niter": (
        "lora",
        ["method.r=4", "method.init=pissa_niter_4"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    # EVA: A from the training batches' activations, ranks redistributed (q and v are all d x d: the same count)
    "lora_eva": (
        "lora",
        ["method.r=4", "method.init=eva"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    # the same matrices as LoRA; only the optimizer differs (B's learning rate lr_ratio x A's)
    "lora_plus": (
        "lora_plus",
        ["method.r=4"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C),
        None,
    ),
    # A frozen: only B (d x r) on q and v in every layer trains
    "lora_fa": ("lora_fa", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * (d * 4) + head(d, C), None),
    "rslora": ("rslora", ["method.r=4"], lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + head(d, C), None),
    # DoRA adds a magnitude per output unit of each adapted matrix
    "dora": (
        "dora",
        ["method.r=4"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + L * 2 * d + head(d, C),
        None,
    ),
    # a base-rewriting init under DoRA: the checkpoint, converted for the original base, keeps the magnitudes
    "dora_pissa": (
        "dora",
        ["method.r=4", "method.init=pissa"],
        lambda L, d, i, C, total, B: lora_matrices(L, 4, d) + L * 2 * d + head(d, C),
        None,
    ),
    "full_ft": ("full_ft", [], lambda L, d, i, C, total, B: total, None),
    # every parameter trains; GaLore changes only what the optimizer keeps (OPTIMIZER_STATE)
    "galore": ("galore", ["method.rank=4"], lambda L, d, i, C, total, B: total, None),
    # every parameter trains; LOMO keeps no optimizer state (OPTIMIZER_STATE) and no gradients after backward
    "lomo": ("lomo", [], lambda L, d, i, C, total, B: total, None),
    # one vector per key and value output (d each), one over the FFN's inner activation (i)
    "ia3": ("ia3", [], lambda L, d, i, C, total, B: L * (d + d + i) + head(d, C), None),
    # two rank-r pairs per matrix: 2 x r x (in + out)
    "loha": ("loha", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * (2 * 4 * (d + d)) + head(d, C), None),
    # d = 32 factors as 4 x 8: a full 4 x 4 factor and the 8 x 8 factor as a rank-2 pair (8x2 + 2x8)
    "lokr": ("lokr", ["method.r=2"], lambda L, d, i, C, total, B: L * 2 * (4 * 4 + 2 * 8 * 2) + head(d, C), None),
    # a trained vector per output (d) and per shared rank (r) for each matrix
    "vera": ("vera", ["method.r=16"], lambda L, d, i, C, total, B: L * 2 * (d + 16) + head(d, C), None),
    # OFT: d/b blocks of b(b-1)/2 numbers (the skew-symmetric half) per matrix, b = 8
    "oft": ("oft", ["method.block_size=8"], lambda L, d, i, C, total, B: L * 2 * (d // 8) * 28 + head(d, C), None),
    # the exact Cayley transform instead of OFTv2's Neumann series: the same count
    "oft_exact_cayley": (
        "oft",
        ["method.block_size=8", "method.use_cayley_neumann=false"],
        lambda L, d, i, C, total, B: L * 2 * (d // 8) * 28 + head(d, C),
        None,
    ),
    # BOFT with one butterfly factor: d/4 full 4 x 4 blocks (peft stores all b^2) and a scale per output
    "boft": (
        "boft",
        ["method.block_size=4"],
        lambda L, d, i, C, total, B: L * 2 * ((d // 4) * 16 + d) + head(d, C),
        None,
    ),
    # r Householder vectors of the input width per matrix
    "hra": ("hra", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * d + head(d, C), None),
    # road_1: an angle and a scale for each of the d/2 output pairs
    "road": ("road", ["method.group_size=8"], lambda L, d, i, C, total, B: L * 2 * d + head(d, C), None),
    # a gain and a bias per unit of every LayerNorm: the embeddings' and two per layer
    "ln_tuning": ("ln_tuning", [], lambda L, d, i, C, total, B: (2 * L + 1) * 2 * d + head(d, C), None),
    # n spectral coefficients per matrix
    "fourierft": (
        "fourierft",
        ["method.n_frequency=50"],
        lambda L, d, i, C, total, B: L * 2 * 50 + head(d, C),
        None,
    ),
    # the shared bank (16 vectors of 8) and, per matrix, 16 logits for each of r x (d/8 + d/8) sub-vectors
    "vblora": (
        "vblora",
        ["method.r=4", "method.num_vectors=16", "method.vector_length=8"],
        lambda L, d, i, C, total, B: 16 * 8 + L * 2 * 4 * (d // 8 + d // 8) * 16 + head(d, C),
        None,
    ),
    # n = d/r random bases per matrix: Lambda (r x n) and Gamma (n x d)
    "randlora": (
        "randlora",
        ["method.r=4", "method.alpha=80"],
        lambda L, d, i, C, total, B: L * 2 * ((d // 4) * 4 + (d // 4) * d) + head(d, C),
        None,
    ),
    # (d/b) x (d/b) circulant blocks of b numbers each, b = 8
    "c3a": ("c3a", ["method.block_size=8"], lambda L, d, i, C, total, B: L * 2 * d * d // 8 + head(d, C), None),
    # r x (in + out) sparse entries per matrix
    "shira": ("shira", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * (d + d) + head(d, C), None),
    # A (r x d), B (d x r) and the bound lambda per matrix
    "delora": ("delora", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * (4 * (d + d) + 1) + head(d, C), None),
    # one r x out shard per matrix
    "miss": ("miss", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * d + head(d, C), None),
    # k^2 = 4 blocks, each a rank-r/k pair over d/k inputs and d/k outputs: r x (d + d) in all
    "gralora": (
        "gralora",
        ["method.r=4", "method.alpha=8"],
        lambda L, d, i, C, total, B: L * 2 * 2 * 2 * (2 * (d // 2 + d // 2)) + head(d, C),
        None,
    ),
    # a rank-r pair per matrix, applied as a Hadamard product with the frozen weight
    "hira": ("hira", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * (d + d) + head(d, C), None),
    # a row of width d for each of the tokenizer's five special tokens ([CLS], [SEP], [PAD], [UNK], [MASK])
    "trainable_tokens": ("trainable_tokens", [], lambda L, d, i, C, total, B: 5 * d + head(d, C), None),
    "trainable_tokens_chosen": (
        "trainable_tokens",
        ["method.token_ids=[101,102,1000]"],
        lambda L, d, i, C, total, B: 3 * d + head(d, C),
        None,
    ),
    # a scale per output (d) and 2r for the Gaussian's mean and log-variance, per matrix
    "pvera": ("pvera", ["method.r=16"], lambda L, d, i, C, total, B: L * 2 * (d + 2 * 16) + head(d, C), None),
    # one vector theta_d for the whole model
    "unilora": (
        "unilora",
        ["method.theta_d_length=64"],
        lambda L, d, i, C, total, B: 64 + head(d, C),
        None,
    ),
    # u numbers per matrix (no tying)
    "tinylora": ("tinylora", ["method.u=8"], lambda L, d, i, C, total, B: L * 2 * 8 + head(d, C), None),
    # one v of u numbers for all matrices (full tying)
    "tinylora_tied": (
        "tinylora",
        ["method.u=8", "method.weight_tying=1.0"],
        lambda L, d, i, C, total, B: 8 + head(d, C),
        None,
    ),
    # n wavelet coefficients per matrix
    "waveft": ("waveft", ["method.n_frequency=50"], lambda L, d, i, C, total, B: L * 2 * 50 + head(d, C), None),
    # per layer and target an A (r x d) and a router (num_B x r); per target num_B experts B (r x d) for all layers
    "lily": (
        "lily",
        ["method.r=4"],
        lambda L, d, i, C, total, B: L * 2 * (4 * d + 2 * 4) + 2 * (2 * 4 * d) + head(d, C),
        None,
    ),
    # stride 2: one A per target for both layers; routers per layer; B experts per target
    "lily_stride2": (
        "lily",
        ["method.r=4", "method.stride_A=2"],
        lambda L, d, i, C, total, B: 2 * 4 * d + L * 2 * 2 * 4 + 2 * (2 * 4 * d) + head(d, C),
        None,
    ),
    # subspace rank 1: per matrix an A (1 x r) for each of the K subspaces, and the B_i (rows_i x 1), one per output
    "adamss": (
        "adamss",
        ["method.r=8", "method.num_subspaces=2"],
        lambda L, d, i, C, total, B: L * 2 * (2 * 8 + d) + head(d, C),
        None,
    ),
    # k = d - effective_rank low singular directions: U (d x k), S (k) and V (k x d) per matrix
    "osf": (
        "osf",
        ["method.effective_rank=8"],
        lambda L, d, i, C, total, B: L * 2 * (d - 8) * (d + 1 + d) + head(d, C),
        None,
    ),
    # depth 0: A (r x in) and B (out x r) per matrix
    "peanut": ("peanut", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * (d + d) + head(d, C), None),
    # P (out x r) and R (r x in) per matrix
    "deft": ("deft", ["method.r=4"], lambda L, d, i, C, total, B: L * 2 * 4 * (d + d) + head(d, C), None),
    # A and B rank-r pairs (r x (in + out) each), C a rank-r pair from in to 1 (r x (in + 1)), D and E one each
    "glora": (
        "glora",
        ["method.r=4"],
        lambda L, d, i, C, total, B: L * 2 * (2 * 4 * (d + d) + 4 * (d + 1) + 2) + head(d, C),
        None,
    ),
    # R's r(r-1)/2 skew-symmetric numbers and the two r-vectors per matrix
    "psoft": (
        "psoft",
        ["method.r=4", "method.alpha=4"],
        lambda L, d, i, C, total, B: L * 2 * (4 * 3 // 2 + 2 * 4) + head(d, C),
        None,
    ),
    # a bias of width d on each value projection
    "beft": ("beft", [], lambda L, d, i, C, total, B: L * d + head(d, C), None),
    # floor(1% of d x d) entries per matrix
    "supertuning": ("supertuning", [], lambda L, d, i, C, total, B: L * 2 * (d * d // 100) + head(d, C), None),
    # d scales and floor(1% of d x d) sparse entries of S per matrix
    "frod": ("frod", [], lambda L, d, i, C, total, B: L * 2 * (d + d * d // 100) + head(d, C), None),
    # on LLaMA: adapter_len x d prompt vectors and a gate per layer; LLaMA's score head has no bias (d x C)
    "adaption_prompt": (
        "adaption_prompt",
        ["model=tiny_llama", "method.adapter_len=4"],
        lambda L, d, i, C, total, B: L * (4 * d + 1) + d * C,
        None,
    ),
    # on the LLaMA LM (RTE by label words): a context of 40 tokens of training examples, d numbers each; no head.
    # A wide projection ball (20 x sqrt(d / 2048)) so that 24 steps on the 32-wide toy show in the loss
    "cpt": (
        "cpt",
        ["model=tiny_llama_lm", "method.context_tokens=40", "method.input_epsilon=20"],
        lambda L, d, i, C, total, B: 40 * d,
        None,
    ),
    "prompt_tuning": (
        "prompt_tuning",
        ["method.num_virtual_tokens=5"],
        lambda L, d, i, C, total, B: 5 * d + head(d, C),
        None,
    ),
    "prompt_tuning_vocab": (
        "prompt_tuning",
        ["method.num_virtual_tokens=5", "method.init=sample_vocab"],
        lambda L, d, i, C, total, B: 5 * d + head(d, C),
        None,
    ),
    # keys and values of every layer: 2 x layers x tokens x width
    "prefix_tuning": (
        "prefix_tuning",
        ["method.num_virtual_tokens=5", "method.projection=false"],
        lambda L, d, i, C, total, B: 2 * L * 5 * d + head(d, C),
        None,
    ),
    # through the MLP: token embeddings (5 x d), d -> h and h -> 2Ld layers; only 2Ld x 5 is stored
    "prefix_tuning_mlp": (
        "prefix_tuning",
        PREFIX_MLP,
        lambda L, d, i, C, total, B: 5 * d + (d * 16 + 16) + (16 * 2 * L * d + 2 * L * d) + head(d, C),
        lambda L, d, i, C, total, B: 2 * L * 5 * d + head(d, C),
    ),
    # peft's MLP encoder: d -> h -> h -> d; only the 5 x d prompts it computes are stored
    "p_tuning": (
        "p_tuning",
        ["method.num_virtual_tokens=5", "method.encoder_hidden_size=16"],
        lambda L, d, i, C, total, B: 5 * d + (d * 16 + 16) + (16 * 16 + 16) + (16 * d + d) + head(d, C),
        lambda L, d, i, C, total, B: 5 * d + head(d, C),
    ),
    "p_tuning_v2": (
        "p_tuning_v2",
        ["method.num_virtual_tokens=5"],
        lambda L, d, i, C, total, B: 2 * L * 5 * d + head(d, C),
        None,
    ),
    # SVD form per matrix: P (r x in), Q (out x r) and r singular values, on q and v
    # LoRA on all six linear roles of a quantized base: q, k, v, attention-output (d x d) and the FFN pair (d x i)
    "qlora": (
        "qlora",
        ["method.r=4"],
        lambda L, d, i, C, total, B: L * (4 * 2 * 4 * d + 2 * 4 * (d + i)) + head(d, C),
        None,
    ),
    "qlora_8bit": (
        "qlora_8bit",
        ["method.r=4"],
        lambda L, d, i, C, total, B: L * (4 * 2 * 4 * d + 2 * 4 * (d + i)) + head(d, C),
        None,
    ),
    "adalora": (
        "adalora",
        [
            "method.init_r=4",
            "method.target_r=2",
            "method.target_modules=[q,v]",
            "method.tinit=2",
            "method.tfinal=4",
            "method.deltaT=2",
        ],
        lambda L, d, i, C, total, B: L * 2 * (4 * d + d * 4 + 4) + head(d, C),
        None,
    ),
}

# Optimizer state (numbers) where it is not AdamW's two moments per trainable parameter. GaLore, rank 4: each
# projected m x n matrix keeps the projection onto its smaller side (4 x n for m >= n, else m x 4) and two moments
# of the projected gradient (m x 4, else 4 x n): 3 x 4d for q, k, v and attention-output (d x d), 4d + 2 x 4i for
# FFN-in (i x d) and FFN-output (d x i); everything else, AdamW's two moments.
# Methods whose optimizer updates each parameter during backward and drops its gradient: one gradient at a time.
GRADIENTS_ONE_AT_A_TIME = {"lomo"}
OPTIMIZER_STATE = {
    "galore": lambda L, d, i, C, total, B: 2 * (total - L * (4 * d * d + 2 * d * i)) + L * (14 * 4 * d + 4 * 4 * i),
    "lomo": lambda L, d, i, C, total, B: 0,
}


def test_every_registered_method_has_a_row():
    from test_adapters import CASES as ADAPTER_CASES  # the adapters' table runs them on BERT, GPT-2 and LLaMA

    assert {method for method, *_ in [*CASES.values(), *ADAPTER_CASES.values()]} == set(METHODS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_method_trains_freezes_and_counts(case, tiny_run_config, monkeypatch):
    method, overrides, formula, stored_formula = CASES[case]
    cfg = tiny_run_config(method, *overrides)
    initial_state = {}

    def train_from_here(model, *args, **kwargs):  # the state training starts from, after on_train_start
        initial_state.update({name: p.detach().clone() for name, p in model.named_parameters()})
        return train(model, *args, **kwargs)

    monkeypatch.setattr(recipe, "train", train_from_here)
    output = run(cfg)
    record = output.record

    assert record["status"] == "ok"
    params = record["params"]
    dims = tiny_dims(cfg)
    assert params["trainable"] == formula(**dims, total=params["total"])
    assert params["stored_after_training"] == (stored_formula or formula)(**dims, total=params["total"])
    assert params["trainable_share"] == pytest.approx(params["trainable"] / params["total"])

    assert len(record["metrics"]["history"]) == cfg.trainer.epochs
    first, last = sum(output.losses[:5]) / 5, sum(output.losses[-5:]) / 5
    assert last < first, f"{case}: loss did not fall ({first:.4f} -> {last:.4f})"

    tuned = dict(output.model.named_parameters())
    assert tuned.keys() == initial_state.keys()
    frozen_changed = [
        n for n, p in tuned.items() if not p.requires_grad and not torch.equal(p.detach(), initial_state[n])
    ]
    trained_moved = [n for n, p in tuned.items() if p.requires_grad and not torch.equal(p.detach(), initial_state[n])]
    assert frozen_changed == [], f"{case} changed frozen weights: {frozen_changed[:5]}"
    assert trained_moved

    state_formula = OPTIMIZER_STATE.get(method)
    state_numel = state_formula(**dims, total=params["total"]) if state_formula else 2 * params["trainable"]
    check_memory_breakdown(record, output.model, optimizer_state_numel=state_numel)
    check_checkpoint_round_trip(cfg, record, output.model)
    check_merge(method, record)
    check_only_selected_entries_change(cfg, method, output.model)


def check_memory_breakdown(record, model, every_parameter_stepped: bool = True, optimizer_state_numel=None):
    """The analytic parts are exact: fp32 weights (quantized ones at a byte per stored element; every
    tensor held, training-only ones too), fp32 gradients of the trainable parameters, and AdamW's two
    fp32 moments per trainable parameter (or `optimizer_state_numel` fp32 numbers, a method's own optimizer)."""
    parts, params = record["memory"]["breakdown"], record["params"]
    quantized = (record["method_state"] or {}).get("quantized_weights_bytes", 0)  # int8/uint8: one byte per element
    tensors = {id(p): p for p in model.parameters()}.values()
    held = sum(p.numel() for p in tensors)
    assert parts["weights_bytes"] == 4 * (held - quantized) + quantized
    assert sum(measure.logical_numel(p) for p in tensors) >= params["total"]  # 4-bit weights: two per stored byte
    if record["config"]["method"]["name"] in GRADIENTS_ONE_AT_A_TIME:  # the largest trainable tensor's gradient
        assert parts["gradients_bytes"] == 4 * max(p.numel() for p in tensors if p.requires_grad)
    else:
        assert parts["gradients_bytes"] == 4 * params["trainable"]
    if every_parameter_stepped:
        state_numel = 2 * params["trainable"] if optimizer_state_numel is None else optimizer_state_numel
        assert parts["optimizer_state_bytes"] == state_numel * 4
    else:  # AdamW makes a parameter's state on its first gradient; a randomly routed expert may have none yet
        assert 0 < parts["optimizer_state_bytes"] <= 2 * params["trainable"] * 4
    peak = record["memory"]["peak_train_bytes"]
    assert peak == record["memory"]["by_phase"]["train"]["rss"] > 0  # the training phase, evaluations apart
    assert parts["activations_bytes"] > 0  # measured: what autograd saved for backward
    assert parts["other_bytes"] == peak - sum(v for k, v in parts.items() if k != "other_bytes")


def check_checkpoint_round_trip(cfg, record, tuned):
    """The run's checkpoint folder, measured in full, rebuilds the tuned model through peftbench.load: the same
    outputs (test_checkpoints.py does it in a fresh process for every method)."""
    folder = Path(record["checkpoint"]["path"])
    files = {path.name: path.stat().st_size for path in folder.iterdir()}
    assert record["checkpoint"]["files"] == files and record["checkpoint"]["bytes"] == sum(files.values())
    assert record["checkpoint"]["bytes"] > 4 * record["params"]["stored_after_training"]
    loaded = checkpoints.load(record)
    batch = measure.latency_batch(tuned, batch_size=4, seq_length=16)
    cpu = torch.device("cpu")
    torch.testing.assert_close(measure.outputs(loaded.model, batch, cpu), measure.outputs(tuned, batch, cpu))


def check_only_selected_entries_change(cfg, method, tuned):
    """Selective methods: every base weight entry that differs after training (merged, so what users
    deploy) lies inside the method's mask or kept diff."""
    masks = selection_masks(tuned)
    if not masks:
        return
    set_seed(cfg.seed)
    base = build_base(plan_run(cfg))[0].state_dict()
    merged = measure.merged_copy(tuned, get_method(method)).state_dict()
    changed_somewhere = False
    for name, mask in masks.items():
        changed = merged[name] != base[name]
        assert not (changed & ~mask).any(), f"{method}: {name} changed outside its selection"
        changed_somewhere |= bool(changed.any())
    assert changed_somewhere


def check_merge(method, record):
    latency = record["latency"]
    for key in ("base", "method"):
        assert latency[key]["median_ms"] > 0 and latency[key]["p90_ms"] >= latency[key]["median_ms"]
    if method.startswith("qlora"):  # merging re-quantizes: the check must say how far off it is
        check = latency["merge_check"]
        assert check["equivalent"] or check["reason"].startswith("merged outputs differ from unmerged by")
    elif get_method(method).mergeable:
        assert latency["merge_check"]["equivalent"], latency["merge_check"]
        assert latency["merge_check"]["max_abs_diff"] <= 1e-4 and latency["merged"]["median_ms"] > 0
    else:
        assert latency["merged"] is None and "no weights to merge" in latency["merge_check"]["reason"]


def test_lora_merge_removes_the_adapter_modules(tiny_run_config):
    output = run(tiny_run_config("lora", "trainer.max_steps=3"))
    merged = measure.merged_copy(output.model, get_method("lora"))
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    assert any("lora_" in name for name, _ in output.model.named_parameters())  # the tuned model is untouched
