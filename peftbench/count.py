"""Exact parameter accounting at paper scale, without weights:

    python -m peftbench.count +method=lora model=gpt3_175b method.r=1

builds the architecture on the `meta` device from its config numbers (no memory, any size), applies
the method, and prints the parameters the method trains, split from the task head, which most
papers leave out of their counts."""

import json
import sys
import time

import hydra
from omegaconf import DictConfig

from peftbench import CONF_DIR
from peftbench.cli import answer_help, check_group_choices, fail, register_resolvers


def count(cfg: DictConfig) -> dict:
    """Parameter counts of method x model on the meta device (no task needed)."""
    from peftbench.hub_models import complete_model_config
    from peftbench.measure import parameter_split
    from peftbench.methods import method_options
    from peftbench.methods.modules import head_parameters
    from peftbench.models import build_meta_model
    from peftbench.plan import apply_on_meta, plan_run

    started = time.perf_counter()
    cfg.model = complete_model_config(cfg.model)
    plan = plan_run(cfg)
    method = plan.method
    model = build_meta_model(cfg.model, plan.num_labels)
    base_ids = {id(p) for p in model.parameters()}
    model = apply_on_meta(model, plan)  # the head is counted apart
    head = head_parameters(model, plan.arch)  # after apply: peft may hold a trained copy of it
    split = parameter_split(model, base_ids, {id(p) for p in head})
    head_size = sum(p.numel() for p in {id(p): p for p in head}.values())
    method_params = split["added"] + split["unfrozen"]  # the trained head is counted apart
    # what is kept after training, where a training-only part is dropped (a prefix MLP)
    trained_head = sum(p.numel() for p in {id(p): p for p in head}.values() if p.requires_grad)
    stored = method.stored_parameters(model) - trained_head if method.stored_parameters else method_params
    base_size = split["total"] - split["added"]
    return {
        "model": cfg.model.name,
        "method": cfg.method.name,
        "options": method_options(cfg.method),
        "method_params": method_params,
        "added": split["added"],
        "unfrozen": split["unfrozen"],
        "head_params": head_size,
        "total": split["total"],
        "method_share": method_params / split["total"],
        "method_stored": stored,
        "stored_share": stored / base_size,
        "seconds": time.perf_counter() - started,
    }


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    if "method" not in cfg:
        fail("no method given; add +method=<name>.")
    from peftbench.budget import BudgetError, solve_budget
    from peftbench.hub_models import complete_model_config
    from peftbench.plan import NotCountable
    from peftbench.validate import ConfigError, check_method

    try:  # the run's own checks of the method's values, then its budget solver: the size a run would train
        cfg.model = complete_model_config(cfg.model)
        check_method(cfg)
        cfg, budget = solve_budget(cfg)
        result = count(cfg)
    except (ConfigError, BudgetError) as error:
        fail(str(error))
    except NotCountable as error:
        fail(f"{error}.")
    if budget:
        result["budget"] = budget
    print(f"{result['method']} on {result['model']} (meta device, no weights), options {result['options']}")
    if budget and budget["knob"]:
        print(f"  budget {budget['name']}: method.{budget['knob']}={budget['value']}")
    print(
        f"  method parameters: {result['method_params']:,} ({result['method_params'] / 1e6:.2f}M, "
        f"{100 * result['method_share']:.4f}% of {result['total']:,})"
    )
    print(f"    added {result['added']:,}, existing unfrozen {result['unfrozen']:,}")
    if result["method_stored"] != result["method_params"]:
        print(
            f"  stored after training: {result['method_stored']:,} "
            f"({100 * result['stored_share']:.4f}% of the base model)"
        )
    print(f"  task head (not in the above): {result['head_params']:,}")
    print(f"  counted in {result['seconds']:.1f} s")
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}))


def main() -> None:
    answer_help(sys.argv[1:], __doc__, groups=("method", "model", "budget"))
    check_group_choices(sys.argv[1:])
    register_resolvers()  # the config's Hydra folder names use them
    hydra_main()


if __name__ == "__main__":
    main()
