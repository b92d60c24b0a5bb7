"""One run across several processes, through accelerate (DDP; FSDP with an accelerate config file):

    accelerate launch --num_processes 2 -m peftbench +method=lora +task=rte            # 2 GPUs
    accelerate launch --config_file launch/fsdp.yaml -m peftbench ...            # a model too big for one
    torchrun --nproc_per_node 2 -m peftbench +method=lora +task=rte device=cpu        # 2 CPU processes (gloo)

Each training batch of `trainer.batch_size` examples (the global batch) is split across the processes,
so a run on N processes takes the steps a single-process run takes on the same batches. Process 0
alone writes the record, talks to the tracker and evaluates, on the whole evaluation set (no example
twice); throughput counts the examples of all processes; memory is process 0's."""

import os

import torch


def world_size() -> int:
    """Processes of this run, as the launcher (accelerate, torchrun) says."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def make_accelerator(device: torch.device):
    """The accelerate engine when several processes were launched (gloo on CPU, NCCL on GPUs); None for one."""
    if world_size() == 1:
        return None
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    return Accelerator(cpu=device.type == "cpu", dataloader_config=DataLoaderConfiguration(split_batches=True))


def summed(accelerator, values: list[int]) -> list[int]:
    """Per-step counts added over the processes (each saw its share of every global batch)."""
    if accelerator is None or not values:
        return values
    return accelerator.reduce(torch.tensor(values, device=accelerator.device), reduction="sum").tolist()
