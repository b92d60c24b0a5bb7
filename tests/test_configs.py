"""Every config file composes, and every method config matches a registered method."""

import re
from dataclasses import asdict

import pytest

from peftbench import CONF_DIR
from peftbench.methods import METHODS, get_method, method_options

from conftest import compose_config

TEMPLATES = CONF_DIR / "templates"  # what configs start from; not selectable themselves
CONFIG_FILES = sorted(path for path in CONF_DIR.rglob("*.yaml") if TEMPLATES not in path.parents)
BASE = ["+method=lora", "+task=rte"]


def overrides_for(path) -> list[str]:
    """How the CLI selects this file: a group option replaces (or appends) its group's choice."""
    relative = path.relative_to(CONF_DIR)
    if len(relative.parts) == 1:
        return BASE
    group, name = "/".join(relative.parts[:-1]), relative.stem
    if group in ("method", "task"):
        return [o for o in BASE if not o.startswith(f"+{group}=")] + [f"+{group}={name}"]
    return BASE + [f"{group}={name}"]


def test_config_files_found():
    groups = {path.parent.name for path in CONFIG_FILES}
    assert {"method", "task", "model", "trainer", "tracker"} <= groups


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_config_file_composes(path):
    cfg = compose_config(overrides_for(path))
    if path.parent.name in ("method", "task", "model", "tracker"):
        assert cfg[path.parent.name].name == path.stem  # records and the registry go by this name


def test_the_task_template_is_not_a_task_and_every_task_starts_from_it():
    from peftbench.cli import available

    assert "task" not in available("task") and "templates" not in available("task")
    for path in (CONF_DIR / "task").glob("*.yaml"):
        assert "defaults: [/templates/task@_here_, _self_]" in path.read_text(), path.name
    with pytest.raises(Exception, match="name"):  # a task that sets nothing is incomplete
        compose_config([*BASE[:1], "+templates=task"]).templates.name.upper()


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")))
def test_method_config_builds_its_registered_options(name):
    cfg = compose_config(["+method=" + name, "+task=rte"])
    get_method(name).make_config(method_options(cfg.method))  # unknown keys would raise
    assert cfg.trainer.lr == cfg.method.lr


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_config_file_states_its_config_class_defaults(name):
    """A method's options live twice: its YAML is what a run composes, records and hashes (so it lists
    every option), its config class is what the registry says the method is (dora: use_dora) and what a
    hybrid builds its parts from. Each option's value is the same in both."""
    composed = method_options(compose_config(["+method=" + name]).method)
    defaults = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in asdict(get_method(name).config_cls()).items()
    }
    assert composed == defaults


def test_every_registered_method_has_a_config():
    assert set(METHODS) == {p.stem for p in (CONF_DIR / "method").glob("*.yaml")}


def test_unknown_method_option_is_one_clear_sentence():
    with pytest.raises(ValueError, match=r"Unknown option\(s\) rank for method 'lora'; valid options: r, alpha"):
        get_method("lora").make_config({"rank": 4})


def test_unknown_method_name_lists_the_valid_ones():
    listed = re.escape(", ".join(sorted(METHODS)))
    with pytest.raises(KeyError, match=f"Unknown method 'loar'; available methods: {listed}\\."):
        get_method("loar")


def test_overrides_reach_the_config():
    cfg = compose_config(BASE + ["method.r=4", "trainer.epochs=1", "task.max_train_samples=200", "seed=3"])
    assert (cfg.method.r, cfg.trainer.epochs, cfg.task.max_train_samples, cfg.seed) == (4, 1, 200, 3)
