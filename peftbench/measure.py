"""Cost measurements taken the same way for every method: parameters, peak memory and its
breakdown, training throughput, inference latency (base, with the method, merged), checkpoint size."""

import copy
import ctypes
import gc
import math
import statistics
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch

from peftbench import tensor_tags

# --- parameters -------------------------------------------------------------------------------


def logical_numel(parameter: torch.Tensor) -> int:
    """Weights a tensor stands for: bitsandbytes packs two 4-bit weights per byte and keeps the shape aside."""
    state = getattr(parameter, "quant_state", None)
    return math.prod(state.shape) if state is not None else parameter.numel()


def parameter_split(model, base_parameter_ids: set[int], head_parameter_ids: set[int]) -> dict:
    """Trainable parameters split three ways: the task head (new under every method, wherever it lies:
    peft trains a copy of it), what the method adds, and existing weights it unfreezes (whole, or
    selected entries trained in place; see `peftbench.tensor_tags`). `total` is the tuned model's
    size in weights (4-bit ones unpacked): tied weights once, and no tensor tagged outside it."""
    parameters = {id(p): p for p in model.parameters()}
    trainable = {i: p for i, p in parameters.items() if p.requires_grad}
    head = sum(p.numel() for i, p in trainable.items() if i in head_parameter_ids)
    new = {i: p for i, p in trainable.items() if i not in base_parameter_ids and i not in head_parameter_ids}
    added = sum(p.numel() for p in new.values() if not tensor_tags.selects_base_entries(p))
    total = sum(logical_numel(p) for p in parameters.values() if tensor_tags.counts_in_total(p))
    count = sum(p.numel() for p in trainable.values())
    return {
        "trainable": count,
        "total": total,
        "trainable_share": count / total,
        "added": added,
        "unfrozen": count - added - head,
        "head": head,
    }


# --- memory -----------------------------------------------------------------------------------


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_state_tensors(optimizer) -> list[torch.Tensor]:
    """The optimizer's per-parameter tensors, with those its state objects hold (GaLore's projection matrices);
    not the 0-d step counters."""
    values = [value for state in optimizer.state.values() for value in state.values()]
    held = [t for value in values if not torch.is_tensor(value) for t in getattr(value, "__dict__", {}).values()]
    return [t for t in values + held if torch.is_tensor(t) and t.dim() > 0]


def memory_breakdown(model, optimizer) -> dict:
    """Analytic parts of training memory. Optimizer state counts its per-parameter tensors (Adam:
    exp_avg and exp_avg_sq, 2 x trainable x 4 bytes in fp32). Gradients: every trainable parameter's, or the
    largest one's where the optimizer updates each parameter during backward and drops its gradient (LOMO)."""
    parameters = list({id(p): p for p in model.parameters()}.values())
    state = optimizer_state_tensors(optimizer)
    gradient_sizes = [tensor_bytes([p]) for p in parameters if p.requires_grad]
    one_at_a_time = getattr(optimizer, "updates_during_backward", False)
    return {
        "weights_bytes": tensor_bytes(parameters),
        "gradients_bytes": max(gradient_sizes, default=0) if one_at_a_time else sum(gradient_sizes),
        "optimizer_state_bytes": tensor_bytes(state),
    }


def release_freed_memory() -> None:
    """Hand memory that Python and the C allocator hold after frees back to the OS (glibc's
    malloc_trim), so that the resident set grows again when it is reused."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the resident set may understate reused memory
        pass


def freeze_startup_objects() -> None:
    """Take the objects alive after the imports (modules, classes, functions: hundreds of thousands) out of
    the cyclic collector's scans, once per process, so that `release_freed_memory` before each run
    collects only what runs made: a third of a second less per run. Objects made later stay collectable."""
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()


class PeakMemory:
    """Peak memory of a stretch of work, above the level at `start()`, also split by phase (training,
    and evaluation inside `phase("evaluation")`). On CUDA the allocator's own peak counters, allocated and
    reserved; on CPU the process's resident set size sampled by a thread, so that each run of a multirun
    gets its own peak (the OS's lifetime maximum, ru_maxrss, would carry over between runs)."""

    def __init__(self, device: torch.device, interval_s: float = 0.002):
        self.device, self.interval_s = device, interval_s
        self.process = psutil.Process()
        self.baseline = self.peak = 0
        self.current = "train"
        self.phase_peaks: dict[str, dict[str, int]] = {}  # phase -> {allocated, reserved} or {rss}
        self._stop = threading.Event()
        self._thread = None

    def _fold(self) -> None:
        """The peak since the last fold goes to the current phase (CUDA: then the counters restart)."""
        peaks = self.phase_peaks.setdefault(self.current, {})
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            current = {
                "allocated": torch.cuda.max_memory_allocated(self.device) - self.baseline,
                "reserved": torch.cuda.max_memory_reserved(self.device),
            }
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            current = {"rss": self.peak - self.baseline}
            self.peak = self.process.memory_info().rss
        for kind, value in current.items():
            peaks[kind] = max(peaks.get(kind, 0), value)

    @contextmanager
    def phase(self, name: str):
        """Peaks inside the block count for `name` (e.g. evaluation between training epochs)."""
        self._fold()
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self._fold()
            self.current = previous

    def start(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
            return self
        release_freed_memory()  # else a run after another in the same process reuses its freed heap unseen
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> dict:
        if self.device.type == "cuda":
            self._fold()
            phases = {name: dict(peaks) for name, peaks in self.phase_peaks.items()}
            return {
                "kind": "cuda_allocator",
                "peak_allocated_bytes": max(peaks["allocated"] for peaks in phases.values()),
                "peak_reserved_bytes": max(peaks["reserved"] for peaks in phases.values()),
                "baseline_bytes": self.baseline,
                "by_phase": phases,
            }
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self._fold()
        phases = {name: dict(peaks) for name, peaks in self.phase_peaks.items()}
        return {
            "kind": "cpu_rss",
            "peak_bytes": max(peaks["rss"] for peaks in phases.values()),
            "baseline_bytes": self.baseline,
            "by_phase": phases,
        }


class SavedActivations:
    """The bytes autograd saves for backward during the forward passes inside the block (saved-tensor
    hooks): each storage counted once, the model's parameters left out. That is the activation memory a
    training step holds at the start of its backward pass, on any device (gradient checkpointing saves
    only its segment inputs, and so shows less)."""

    def __init__(self, model):
        self.parameter_storages = {storage_key(p) for p in model.parameters()}
        self.storages: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key = storage_key(tensor)
        if key not in self.parameter_storages:
            self.storages[key] = storage_bytes(tensor)
        return tensor

    def __enter__(self) -> "SavedActivations":
        self.storages = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


def storage_key(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # a tensor without a plain storage (a subclass): itself
        return id(tensor)


def storage_bytes(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):
        return tensor.numel() * tensor.element_size()


def memory_record(peak: dict, breakdown: dict, activation_bytes: int | None) -> dict:
    """The peak of the training phase (evaluations are apart, in `by_phase`) with its parts: weights,
    gradients and optimizer state (analytic), activations (measured by saved-tensor hooks; None when no
    step was measured), and the rest (temporary buffers, allocator slack: measured minus the parts)."""
    training = peak["by_phase"]["train"]
    measured = training.get("allocated", training.get("rss"))
    parts = {**breakdown, "activations_bytes": activation_bytes}
    other = measured - sum(value for value in parts.values() if value is not None)
    return {**peak, "peak_train_bytes": measured, "breakdown": {**parts, "other_bytes": other}}


# --- throughput -------------------------------------------------------------------------------


def throughput(step_seconds: list[float], step_samples: list[int], step_tokens: list[int], warmup_steps: int) -> dict:
    """Median step time after warm-up; samples/s and real (non-padding) tokens/s over those steps."""
    measured = slice(min(warmup_steps, max(len(step_seconds) - 1, 0)), None)
    seconds = step_seconds[measured]
    return {
        "warmup_steps": measured.start,
        "measured_steps": len(seconds),
        "median_step_seconds": statistics.median(seconds),
        "measured_samples": sum(step_samples[measured]),  # of every process in a run on several
        "samples_per_second": sum(step_samples[measured]) / sum(seconds),
        "tokens_per_second": sum(step_tokens[measured]) / sum(seconds),
    }


# --- latency ----------------------------------------------------------------------------------


def latency_batch(model, batch_size: int, seq_length: int, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    vocab_size = model.config.vocab_size
    lowest_id = 1000 if vocab_size > 2000 else 1
    input_ids = torch.randint(lowest_id, vocab_size, (batch_size, seq_length), generator=generator)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if getattr(model.config, "is_encoder_decoder", False):  # a seq2seq model also reads a target: a quarter as long
        batch["decoder_input_ids"] = input_ids[:, : max(1, seq_length // 4)]
    return batch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a sync point: kernels are asynchronous


@torch.no_grad()
def latency(
    model, batch: dict, device: torch.device, warmup: int, repeats: int, min_warmup_seconds: float = 1.0
) -> dict:
    """Median and p90 of single forward passes, after at least `warmup` passes and `min_warmup_seconds`
    (caches, allocator and CPU clocks settle in time, not in a count of passes)."""
    was_training = model.training
    model.eval()
    batch = {k: v.to(device) for k, v in batch.items()}
    started, passes = time.perf_counter(), 0
    while passes < warmup or time.perf_counter() - started < min_warmup_seconds:
        model(**batch)
        passes += 1
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        model(**batch)
        synchronize(device)
        times.append(time.perf_counter() - started)
    model.train(was_training)
    times.sort()
    p90 = times[math.ceil(0.9 * len(times)) - 1]  # nearest rank
    return {"median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * p90, "repeats": repeats}


def overhead_pct(latency_ms: float, base_ms: float) -> float:
    return 100.0 * (latency_ms - base_ms) / base_ms


@torch.no_grad()
def outputs(model, batch: dict, device: torch.device) -> torch.Tensor:
    was_training = model.training
    model.eval()
    logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
    model.train(was_training)
    return logits


def merged_copy(model, method):
    """The method's weights folded into a copy of the base (the tuned model stays as it is)."""
    return method.merge(copy.deepcopy(model))


def merge_check(unmerged: torch.Tensor, merged: torch.Tensor, tolerance: float) -> dict:
    """Equivalent when the largest difference is within `tolerance` of the largest |output| (at least 1):
    float32 rounding grows with the outputs' size (a language model's logits reach tens)."""
    difference = (unmerged - merged).abs().max().item()
    scale = max(1.0, unmerged.abs().max().item())
    return {
        "max_abs_diff": difference,
        "output_scale": scale,
        "tolerance": tolerance,
        "allowed_abs_diff": tolerance * scale,
        "equivalent": difference <= tolerance * scale,
    }


# --- checkpoint -------------------------------------------------------------------------------


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What must be saved to restore the tuned model on top of its base: the trained tensors."""
    return {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}


# --- forgetting ---------------------------------------------------------------------------------

GENERAL_TEXT = Path(__file__).resolve().parent / "texts" / "general.txt"  # its source: texts/SOURCE.md


def general_text_ids(tokenizer, tokens: int, margin: int = 64) -> list[int]:
    """The first `tokens` token ids of the held-out general text. Whole lines are tokenized, as many as give
    `margin` ids more than asked (the text is 200 KB; a run asks for a few thousand tokens), so the ids kept
    are those of the whole text: the pre-tokenizers split at whitespace, and only the last few ids of a
    prefix can differ from the whole text's."""
    text = GENERAL_TEXT.read_text(encoding="utf-8")
    end = 0
    while True:
        end = min(len(text), max(2 * end, 8 * (tokens + margin)))
        end = text.find("\n", end) + 1 or len(text)  # a whole line
        ids = tokenizer(text[:end]).input_ids
        if end == len(text) or len(ids) >= tokens + margin:
            return ids[:tokens]


@torch.no_grad()
def general_text_loss(model, ids: list[int], device: torch.device, chunk: int = 128, batch: int = 8) -> dict:
    """A causal language model's mean loss per token (nats) on the general text's token ids (general_text_ids),
    in chunks of `chunk` tokens: what tuning costs the model outside its task."""
    chunks = torch.tensor(ids[: len(ids) // chunk * chunk]).view(-1, chunk)
    was_training = model.training
    model.eval()
    total, counted = 0.0, 0
    for start in range(0, len(chunks), batch):
        inputs = chunks[start : start + batch].to(device)
        loss = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=inputs).loss.float().item()
        predicted = inputs.shape[0] * (chunk - 1)  # each chunk's first token has nothing before it
        total, counted = total + loss * predicted, counted + predicted
    model.train(was_training)
    return {"loss": total / counted, "tokens": int(chunks.numel())}
