"""Achieved versus target trainable parameters for one budget across every method (meta device,
no training):

    python benchmarks/budget_table.py [budget=params_0.3m] [model=minilm_l6] [task=rte]
"""

import sys

from hydra import compose, initialize_config_dir

from peftbench import CONF_DIR
from peftbench.budget import BudgetError, solve_budget
from peftbench.methods import METHODS


def main() -> None:
    args = {"budget": "params_0.3m", "model": "minilm_l6", "task": "rte"}
    args.update(argument.split("=", 1) for argument in sys.argv[1:])
    print(f"budget {args['budget']} on {args['model']} ({args['task']} head)\n")
    print("| method | knob | value | target | achieved | achieved / target |")
    print("|---|---|---|---|---|---|")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for name in sorted(METHODS):
            cfg = compose(
                config_name="config",
                overrides=[
                    f"+method={name}",
                    f"+task={args['task']}",
                    f"model={args['model']}",
                    f"budget={args['budget']}",
                ],
            )
            target = cfg.budget.params if cfg.budget.params is not None else cfg.budget.share
            try:
                _, budget = solve_budget(cfg)
            except BudgetError as error:
                print(f"| {name} | - | - | {target:,} | - | unreachable: {error} |")
                continue
            achieved = budget["achieved_params"] if cfg.budget.params is not None else budget["achieved_share"]
            print(
                f"| {name} | {budget['knob'] or '(none)'} | {budget['value'] if budget['value'] is not None else '-'} "
                f"| {target:,} | {budget['achieved_params']:,} | {achieved / target:.3f} |"
            )


if __name__ == "__main__":
    main()
