"""The results explorer (report/explorer.py): its data is the reports' grouping of fixture records, the page is
self-contained and rebuilds byte for byte, and in a real headless Chromium its table filters and sorts, its plots
draw one point per row with the Pareto front, and hovering a point names its method."""

import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from peftbench.records import read_records, write_record
from peftbench.report.__main__ import main as report_main
from peftbench.report.explorer import explorer_data, record_links, write_explorer

MODEL = "minilm_l6"
FAMILIES = {"lora": "reparametrised", "full_ft": "baseline", "bitfit": "selective", "prompt_tuning": "additive"}
SCREENSHOT_COPY = Path(
    os.environ.get("PEFTBENCH_EXPLORER_SCREENSHOT") or Path(tempfile.gettempdir()) / "explorer_screenshot.png"
)


def record(method, task, seed, value, share, step_seconds, status="ok", collapsed=None, **options):
    """An ok record with every field the explorer reads; collapsed="class": one prediction for every example,
    collapsed="loss": a loss that did not fall."""
    metric = "accuracy" if task == "rte" else "matthews_corr"
    predictions = [1] * 8 if collapsed == "class" else [0, 1] * 4
    curve = [0.7, 0.69, 0.69] if collapsed == "loss" else [0.7, 0.5, 0.3]
    return {
        "schema_version": 1,
        "status": status,
        "run": {
            "id": f"{task}-{method}-{options.get('r', 0)}-seed{seed}",
            "task": task,
            "model": MODEL,
            "method": method,
            "method_family": FAMILIES[method],
            "seed": seed,
        },
        "config": {
            "method": {"name": method, **options},
            "task": {"name": task, "max_train_samples": 500},
            "budget": {"name": "none"},
            "seed": seed,
        },
        "params": {"trainable_share": share, "stored_share": share},
        "memory": {"peak_train_bytes": (500 + 400 * share) * 2**20},
        "throughput": {"median_step_seconds": step_seconds},
        "latency": {"method": {"overhead_pct": 10.0 * share}, "merged": {"overhead_pct": 0.0}},
        "checkpoint": {"bytes": int(share * 9e7)},
        "metrics": {"main_metric": metric, "final": {metric: value}, "loss_curve": curve},
        "predictions": {"predictions": predictions, "labels": [0, 1] * 4},
    }


RECORDS = [
    record("lora", "rte", 0, 0.60, 0.003, 0.14, r=8, target_modules=["q", "v"]),
    record("lora", "rte", 1, 0.62, 0.003, 0.15, r=8, target_modules=["q", "v"]),
    record("lora", "rte", 2, 0.64, 0.003, 0.13, r=8, target_modules=["q", "v"]),
    record("lora", "rte", 0, 0.58, 0.0015, 0.14, r=4, target_modules=["q", "v"]),  # another setting: its own row
    record("full_ft", "rte", 0, 0.66, 1.0, 0.32),
    record("full_ft", "rte", 1, 0.68, 1.0, 0.33),
    record("bitfit", "rte", 0, 0.57, 0.001, 0.13),
    record("bitfit", "rte", 1, 0.50, 0.001, 0.13, collapsed="class"),
    record("prompt_tuning", "rte", 0, 0.50, 0.0002, 0.2, collapsed="loss"),
    record("prompt_tuning", "rte", 1, 0.50, 0.0002, 0.2, collapsed="loss"),
    record("lora", "cola", 0, 0.31, 0.003, 0.14, r=8, target_modules=["q", "v"]),
    record("full_ft", "cola", 0, 0.42, 1.0, 0.31),
    record("bitfit", "cola", 0, 0.20, 0.001, 0.13, status="failed"),  # not ok: counted, not shown
]
ROWS = 7  # lora r=8, lora r=4, full_ft, bitfit, prompt_tuning on rte; lora, full_ft on cola


@pytest.fixture
def store(tmp_path) -> Path:
    """tmp/records/<task>/<model>/<method>/<run id>.json, as the recipe writes them."""
    for r in RECORDS:
        write_record(
            r, tmp_path / "records" / r["run"]["task"] / MODEL / r["run"]["method"] / f"{r['run']['id']}.json"
        )
    return tmp_path


@pytest.fixture
def page(store) -> Path:
    return write_explorer(read_records(str(store / "records")), store, record_links(store / "records", store))


def test_rows_are_the_reports_groups_with_mean_std_n_collapse_marks_and_record_links(store):
    data = explorer_data(read_records(str(store / "records")), record_links(store / "records", store))
    groups = {(g["task"], g["method"], g["setting"]): g for g in data["groups"]}
    assert len(data["groups"]) == ROWS and data["not_ok"] == {"failed": 1}
    lora = groups[("rte", "lora", "r=8")]
    assert lora["n"] == 3 and lora["family"] == "reparametrised" and lora["task_options"] == "max_train_samples=500"
    assert lora["metric"] == [pytest.approx(0.62), pytest.approx(statistics.stdev([0.60, 0.62, 0.64])), 3]
    assert lora["values"]["step_time"][0] == pytest.approx(0.14) and lora["options"] == "r=8, target_modules=q+v"
    assert groups[("rte", "lora", "r=4")]["n"] == 1 and groups[("rte", "lora", "r=4")]["metric"][1] is None
    assert [run.get("collapsed") for run in groups[("rte", "bitfit", "")]["runs"]] == [None, "predicts one class"]
    assert {run["collapsed"] for run in groups[("rte", "prompt_tuning", "")]["runs"]} == {"loss did not fall"}
    assert data["task_metrics"] == {"cola": "matthews_corr", "rte": "accuracy"}
    for run in (run for g in data["groups"] for run in g["runs"]):
        assert run["href"].startswith("records/") and (store / unquote(run["href"])).is_file()
    assert [column["higher_is_better"] for column in data["columns"]] == [False] * len(data["columns"])


def test_the_page_is_self_contained_embeds_its_data_and_rebuilds_byte_identical(store, page, tmp_path_factory):
    text = page.read_text("utf-8")
    again = tmp_path_factory.mktemp("again")
    records = list(reversed(read_records(str(store / "records"))))  # another order: the same bytes
    assert write_explorer(records, again, record_links(store / "records", store)).read_bytes() == page.read_bytes()
    for external in ("<link", " src=", "@import", "url(", "https://"):
        assert external not in text, external
    embedded = text.split('<script type="application/json" id="explorer-data">')[1].split("</script>")[0]
    assert json.loads(embedded) == json.loads(
        json.dumps(explorer_data(records, record_links(store / "records", store)))
    )


def test_the_report_cli_writes_the_explorer_and_the_readme_links_it(tmp_path):
    results = tmp_path / "results"
    for r in RECORDS:  # without predictions: the tables' paired bootstrap would take half a minute
        path = results / r["run"]["task"] / MODEL / r["run"]["method"] / f"{r['run']['id']}.json"
        write_record({k: v for k, v in r.items() if k != "predictions"}, path)
    report_main([f"results_dir={results}", f"out_dir={results / 'reports'}"])
    explorer = results / "reports" / "index.html"
    assert explorer.is_file() and '"href":"../rte/minilm_l6/lora/' in explorer.read_text("utf-8")
    assert "[The results explorer](reports/index.html)" in (results / "README.md").read_text("utf-8")


# ---- in a real browser ----


def browser_paths() -> tuple[str, str]:
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("needs chromium and chromedriver on PATH (make browser installs Debian's chromium-driver)")
    return chromium, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver = browser_paths()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="needs selenium (the dev extra: pip install -e .[dev])"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # the system's: Selenium Manager downloads nothing
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1500,1300",
    ):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def opened(browser, page: Path):
    browser.get(page.as_uri())
    return browser


def table_methods(browser) -> list[str]:
    return [
        row.find_element("css selector", "td").text.replace("⚠", "").strip()
        for row in browser.find_elements("css selector", "#runs-body tr")
    ]


@pytest.mark.browser
def test_in_chromium_the_table_filters_and_sorts(browser, page):
    from selenium.webdriver.support.ui import Select

    opened(browser, page)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    assert len(table_methods(browser)) == ROWS and "7 of 7 rows shown (12 runs)" in browser.page_source
    Select(browser.find_element("id", "filter-task")).select_by_value("cola")
    assert sorted(table_methods(browser)) == ["full_ft", "lora"]
    Select(browser.find_element("id", "filter-task")).select_by_value("")
    browser.find_element("id", "filter-text").send_keys("r=4")
    assert table_methods(browser) == ["lora"]
    browser.find_element("id", "filter-text").clear()
    browser.execute_script("document.getElementById('filter-text').dispatchEvent(new Event('input'))")
    Select(browser.find_element("id", "filter-family")).select_by_value("baseline")
    assert table_methods(browser) == ["full_ft", "full_ft"]
    Select(browser.find_element("id", "filter-family")).select_by_value("")

    header = browser.find_element("css selector", "#runs-head th[data-key=step_time]")
    header.click()  # ascending median step time: lora r=8 (0.14) ties lora r=4 and cola's lora; full_ft last
    assert header.get_attribute("aria-sort") == "ascending" and table_methods(browser)[-2:] == ["full_ft", "full_ft"]
    assert table_methods(browser)[:2] == ["bitfit", "lora"]
    header.click()
    assert header.get_attribute("aria-sort") == "descending" and table_methods(browser)[:2] == ["full_ft", "full_ft"]
    for link in browser.find_elements("css selector", "td.runs a"):
        assert Path(unquote(urlparse(link.get_attribute("href")).path)).is_file()  # relative links resolve
    assert len(browser.find_elements("css selector", "td.runs a.collapsed")) == 3  # bitfit seed 1, prompt_tuning
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


@pytest.mark.browser
def test_in_chromium_the_pareto_plots_draw_each_row_mark_the_front_and_name_a_point_on_hover(browser, page, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    opened(browser, page)
    svgs = browser.find_elements("css selector", "#plots svg.pareto")
    assert [len(svg.find_elements("css selector", "circle.point")) for svg in svgs] == [2, 5]  # cola, rte
    front = [c.get_attribute("data-method") for c in svgs[1].find_elements("css selector", "circle.point.front")]
    assert sorted(front) == ["bitfit", "full_ft", "lora", "lora"]  # prompt_tuning collapsed in every run: never on it
    Select(browser.find_element("id", "plot-cost")).select_by_value("step_time")
    assert len(browser.find_elements("css selector", "#plots circle.point")) == ROWS
    point = browser.find_elements("css selector", "#plots svg.pareto")[1].find_element(
        "css selector", "circle.point[data-method=prompt_tuning]"
    )
    ActionChains(browser).move_to_element(point).perform()
    tooltip = browser.find_element("id", "tooltip")
    assert (
        tooltip.is_displayed() and "prompt_tuning (additive)" in tooltip.text and "loss did not fall" in tooltip.text
    )
    assert "Median step (s): 0.200 ± 0.000" in tooltip.text and "n = 2 run(s)" in tooltip.text
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    screenshot = tmp_path / "explorer.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
