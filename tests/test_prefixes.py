"""peftbench's own key/value prefixes on encoder-decoder models (T5, BART): on the encoder's
self-attention, the decoder's self-attention and the cross-attention, as Li & Liang put them; an
attention that matches the model's own; causal decoding and cached generation kept; and prefix
tuning, MAM and UniPELT through the run path with exact counts."""

import re

import pytest
import torch
from test_adapters import adapter
from test_methods import check_checkpoint_round_trip
from transformers import set_seed

from peftbench.methods import get_method
from peftbench.methods.prefix_attention import ATTENTION, PrefixGroup
from peftbench.models import architecture_config, auto_class
from peftbench.plan import arch_of
from peftbench.recipe import run

from conftest import compose_config

# model -> the attention modules that get prefixes, with the layer number as #: one group each
GROUPS = {
    "tiny_t5": {
        "encoder.block.#.layer.#.SelfAttention",
        "decoder.block.#.layer.#.SelfAttention",
        "decoder.block.#.layer.#.EncDecAttention",
    },
    "tiny_bart_lm": {
        "model.encoder.layers.#.self_attn",
        "model.decoder.layers.#.self_attn",
        "model.decoder.layers.#.encoder_attn",
    },
}
LENGTH = 3


def tiny_seq2seq(model: str, method: str | None, *overrides: str):
    """The tiny model, built without a tokenizer, with the method applied (None: the base)."""
    cfg = compose_config(
        [f"+method={method or 'lora'}", "+task=e2e_nlg", f"model={model}", "tracker=none", *overrides]
    )
    set_seed(0)
    base = auto_class(cfg.model).from_config(architecture_config(cfg.model, 2)).eval()
    if method is None:
        return cfg, base
    options = {k: v for k, v in cfg.method.items() if k not in ("name", "lr")}
    adapted = get_method(method).apply(base, get_method(method).make_config(options), arch_of(cfg.model)).eval()
    return cfg, adapted


def batch(model: torch.nn.Module) -> dict:
    """Two inputs, the second padded after 6 tokens, and decoder inputs."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    attention_mask = torch.ones(2, 9, dtype=torch.long)
    attention_mask[1, 6:] = 0
    return {
        "input_ids": torch.randint(200, vocab, (2, 9), generator=generator),
        "attention_mask": attention_mask,
        "decoder_input_ids": torch.randint(200, vocab, (2, 5), generator=generator),
    }


def scramble_prefixes(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in model.prefix_groups.parameters():
            parameter.normal_(0, 3.0)  # large enough that attention leans on the prefixes


@pytest.mark.parametrize("model", sorted(GROUPS))
def test_peftbench_attention_without_prefixes_is_the_models_own(model):
    """Padding masks, T5's relative position bias and the decoder's causal mask all come through."""
    _, base = tiny_seq2seq(model, None)
    inputs = batch(base)
    with torch.no_grad():
        before = base(**inputs).logits
        base.set_attn_implementation(ATTENTION)
        assert torch.allclose(base(**inputs).logits, before, atol=1e-5)


@pytest.mark.parametrize("model", sorted(GROUPS))
def test_prefixes_reach_encoder_decoder_and_cross_attention(model):
    cfg, tuned = tiny_seq2seq(model, "prefix_tuning", f"method.num_virtual_tokens={LENGTH}", "method.projection=false")
    slots = {name: module.prefix_slot for name, module in tuned.named_modules() if hasattr(module, "prefix_slot")}
    assert {re.sub(r"\.\d+\.", ".#.", name) for name in slots} == GROUPS[model]
    assert len(tuned.prefix_groups) == 3
    assert {id(group) for group, _ in slots.values()} == {id(g) for g in tuned.prefix_groups}
    for group in tuned.prefix_groups:  # each layer its own prefixes
        assert sorted(layer for g, layer in slots.values() if g is group) == list(range(group.layers))
    width = tuned.config.d_model  # the tiny models' key width (T5: 2 heads x 16)
    trainable = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    assert trainable == len(slots) * 2 * LENGTH * width  # only the prefixes train
    inputs = batch(tuned)
    with torch.no_grad():
        reference = tuned(**inputs).logits
        for group in tuned.prefix_groups:  # each group reaches its attention
            group.prefixes.mul_(2.0)
            assert not torch.allclose(tuned(**inputs).logits, reference, atol=1e-4)
            group.prefixes.mul_(0.5)


@pytest.mark.parametrize("model", sorted(GROUPS))
def test_decoder_stays_causal_and_cached_generation_matches(model):
    _, tuned = tiny_seq2seq(model, "prefix_tuning", f"method.num_virtual_tokens={LENGTH}", "method.projection=false")
    scramble_prefixes(tuned)
    inputs = batch(tuned)
    changed = {**inputs, "decoder_input_ids": inputs["decoder_input_ids"].clone()}
    changed["decoder_input_ids"][:, -1] += 1
    with torch.no_grad():
        first, second = tuned(**inputs).logits, tuned(**changed).logits
        assert torch.allclose(first[:, :-1], second[:, :-1], atol=1e-5)  # earlier positions cannot see the last token
        assert not torch.allclose(first[:, -1], second[:, -1], atol=1e-4)
        generate = {
            "input_ids": inputs["input_ids"],
            "attention_mask": inputs["attention_mask"],
            "max_new_tokens": 6,
            "min_new_tokens": 6,
            "do_sample": False,
            "decoder_start_token_id": 0,
        }
        assert torch.equal(tuned.generate(**generate, use_cache=True), tuned.generate(**generate, use_cache=False))


def test_the_prefix_mlp_computes_each_layer_as_the_whole():
    group = PrefixGroup(layers=3, length=4, width=8, projection_hidden_size=16)
    whole = group.mlp(group.embedding).view(4, 3, 2, 8)  # (length, layer, key/value, width)
    for layer in range(3):
        keys, values = group.keys_values(layer)
        assert torch.allclose(keys, whole[:, layer, 0]) and torch.allclose(values, whole[:, layer, 1])
    assert group.stored_numbers() == 3 * 2 * 4 * 8


def test_unipelt_gates_peftbench_prefixes():
    """On T5 the prefix gate scales the prefixes as they enter attention: open (1) it gives the
    ungated model's output, half open it does not."""
    options = [f"method.prefix_length={LENGTH}", "method.prefix_projection=false", "method.parts=[prefix]"]
    _, gated = tiny_seq2seq("tiny_t5", "unipelt", *options)
    _, ungated = tiny_seq2seq("tiny_t5", "unipelt_nogate", *options)
    gates = [module.prefix_gate for module in gated.modules() if hasattr(module, "prefix_gate")]
    assert len(gates) == 3 * 2  # every attention with prefixes: 2 encoder, 2 decoder and 2 cross
    scramble_prefixes(gated)
    ungated.prefix_groups.load_state_dict(gated.prefix_groups.state_dict())
    inputs = batch(gated)
    with torch.no_grad():
        for gate in gates:
            gate.linear.bias.fill_(50.0)  # sigmoid(50) is 1.0 in float32
        reference = ungated(**inputs).logits
        assert torch.allclose(gated(**inputs).logits, reference, atol=1e-5)
        gates[-1].linear.bias.fill_(0.0)  # the last cross-attention's gate gives 0.5
        assert not torch.allclose(gated(**inputs).logits, reference, atol=1e-4)


def prefixes(attentions, width, length):
    return attentions * 2 * length * width


# method case -> (method, overrides, trainable count, stored count) from attentions with prefixes A,
# layers with an FFN F, width d; the tiny models' encoder and decoder have 2 layers each: A = 6, F = 4
RUN_CASES = {
    # through the MLP: embedding (l x d), d -> 16, 16 -> 2 x layers x d, for each of the three groups
    "prefix_tuning_mlp": (
        "prefix_tuning",
        [f"method.num_virtual_tokens={LENGTH}", "method.projection_hidden_size=16"],
        lambda A, F, d: 3 * (LENGTH * d + d * 16 + 16 + 16 * 2 * 2 * d + 2 * 2 * d),
        lambda A, F, d: prefixes(A, d, LENGTH),
    ),
    "mam": (
        "mam",
        [f"method.prefix_length={LENGTH}", "method.prefix_projection=false", "method.bottleneck=4"],
        lambda A, F, d: prefixes(A, d, LENGTH) + F * adapter(d, 4),
        None,
    ),
    # the FFN adapter and LoRA r=2 on q and v of every attention, each part gated (d + 1 a gate)
    "unipelt": (
        "unipelt",
        [f"method.prefix_length={LENGTH}", "method.prefix_projection=false", "method.bottleneck=4", "method.lora_r=2"],
        lambda A, F, d: prefixes(A, d, LENGTH) + F * adapter(d, 4) + A * 2 * 2 * 2 * d + (A + F + 2 * A) * (d + 1),
        None,
    ),
}


@pytest.mark.parametrize("model", ["tiny_t5_lm", "tiny_bart_lm"])
@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_prefix_methods_run_on_seq2seq(case, model, tiny_run_config):
    method, overrides, trainable, stored = RUN_CASES[case]
    cfg = tiny_run_config(method, f"model={model}", *overrides, task="e2e_nlg")
    output = run(cfg)
    record = output.record
    d = cfg.model.architecture.get("d_model")
    counts = {"A": 6, "F": 4, "d": d}
    assert record["params"]["trainable"] == trainable(**counts)
    assert record["params"]["stored_after_training"] == (stored or trainable)(**counts)
    assert sum(output.losses[-5:]) < sum(output.losses[:5]), f"{case} on {model}: loss did not fall"
    assert all(isinstance(text, str) for text in record["predictions"]["predictions"])
    check_checkpoint_round_trip(cfg, record, output.model)
