"""The package's shape: no import loop between its modules (imports inside functions included, where
a loop hides)."""

import ast
from pathlib import Path

import pytest

import peftbench

PACKAGE_DIR = Path(peftbench.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in its code (`from a import b`: a.b where b is
    a module, else a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                for alias in node.names
            }
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_loop_hidden_in_a_function():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_of_the_package_imports_itself_through_others():
    graph = import_graph()
    assert {"peftbench.recipe", "peftbench.budget", "peftbench.plan"} <= set(graph)
    assert "peftbench.plan" in graph["peftbench.budget"]  # the graph sees real edges
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


# Optional heavy packages: imported only where they are used, so that a run with tracker=none on a
# classification task needs none of them (a GPU machine may lack them all).
OPTIONAL_PACKAGES = ("wandb", "bitsandbytes", "nltk", "rouge_score", "sacrebleu", "datasets", "gguf", "galore_torch")
RUN_NEEDS = ("bitsandbytes", "datasets")  # loaded by a classification run all the same (see below)


def module_level_imports(path: Path) -> set[str]:
    """Top-level package names a module imports when it is imported (not inside its functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_optional_packages_are_imported_only_inside_the_functions_that_use_them():
    offenders = {
        module_name(path): sorted(module_level_imports(path) & set(OPTIONAL_PACKAGES))
        for path in PACKAGE_DIR.rglob("*.py")
    }
    assert not {name: packages for name, packages in offenders.items() if packages}


@pytest.mark.slow
def test_a_classification_run_without_a_tracker_loads_no_optional_package(tmp_path):
    """In a fresh process, as the CLI runs it (peft itself imports bitsandbytes when it is installed: not ours;
    datasets reads every run's training data, so a run needs it, while importing the package does not)."""
    import subprocess
    import sys

    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import TINY_RUN, compose_config, write_toy_rte
from peftbench.recipe import run
data = write_toy_rte(__import__("pathlib").Path({str(tmp_path)!r}) / "data")
run(compose_config(["+method=lora", "+task=rte", f"data_dir={{data}}", "results_dir={tmp_path}/results",
                    "checkpoint_dir=null", *TINY_RUN, "trainer.epochs=1"]))
print("loaded:", sorted(m for m in {tuple(p for p in OPTIONAL_PACKAGES if p not in RUN_NEEDS)!r} if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"


def test_reading_and_reporting_records_imports_no_torch_nor_peft():
    """The report, choose and the published set read JSON records: they answer in a second or two, not after
    the ten that importing torch, transformers and peft takes on this machine."""
    import subprocess
    import sys

    script = (
        "import sys, peftbench.report.__main__, peftbench.choose, peftbench.published; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_a_bad_value_on_the_command_line_is_answered_before_torch_loads():
    """`trainer.epochs=0` is refused by the checks that need no model: in half a second, not after the
    imports of torch, transformers and peft (preflight loads them only for what needs them)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from peftbench.cli import preflight\n"
        "try:\n"
        "    preflight(['+method=lora', '+task=rte', 'trainer.epochs=0'])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "trainer.epochs=0 is not valid" in result.stderr
    assert result.stdout.strip() == "2 []"


def test_the_hub_models_auto_class_names_are_the_models_auto_classes():
    from peftbench.hub_models import AUTO_CLASS_NAMES
    from peftbench.models import AUTO_CLASSES

    assert AUTO_CLASS_NAMES == tuple(AUTO_CLASSES)
