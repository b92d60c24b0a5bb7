// The results explorer's table, filters and Pareto plots, from the JSON that explorer.py embeds. Plain DOM and SVG:
// no library, no network. Directions (higher or lower is better) come from the data, declared in fields.py.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const PLOT = { width: 460, height: 330, left: 60, right: 16, top: 14, bottom: 54 };
  const state = { sortKey: null, descending: false };
  const byId = (id) => document.getElementById(id);

  // ---- numbers ----
  function significant(value) {  // three significant digits, without exponents in the usual range
    if (value === 0) return "0";
    const decimals = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
    return value.toFixed(Math.min(decimals, 12));
  }
  function formatted(value, decimals) {
    return decimals === null ? significant(value) : value.toFixed(decimals);
  }
  function summaryText(summary, decimals) {  // [mean, std, n] -> "0.834 ± 0.004"
    const std = summary[1] === null ? "" : ` ± ${formatted(summary[1], decimals)}`;
    return formatted(summary[0], decimals) + std;
  }
  function directionText(higherIsBetter) {
    if (higherIsBetter === null) return "";
    return higherIsBetter ? "higher is better" : "lower is better";
  }

  // ---- the groups ----
  const metricName = (group) => data.task_metrics[group.task];
  const collapsedRuns = (group) => group.runs.filter((run) => run.collapsed);
  const everyRunCollapsed = (group) => collapsedRuns(group).length === group.runs.length;
  function collapsedText(group) {
    const collapsed = collapsedRuns(group);
    if (!collapsed.length) return "";
    const reasons = [...new Set(collapsed.map((run) => run.collapsed))].sort().join("; ");
    return `${collapsed.length} of ${group.runs.length} run(s) collapsed (${reasons}): not a result to rank`;
  }
  function searchText(group) {
    return [group.method, group.family, group.task, group.model, group.setting, group.task_options, group.budget,
      group.options].join(" ").toLowerCase();
  }

  // ---- the table's columns: text ones sort as text, the rest by their mean ----
  function textCell(td, text) { td.textContent = text; }
  function summaryCell(decimals) {
    return (td, summary, group) => {
      td.className = "number";
      if (!summary) { td.textContent = "–"; return; }
      td.append(formatted(summary[0], decimals));
      if (summary[1] !== null) {
        const std = document.createElement("span");
        std.className = "std";
        std.textContent = ` ± ${formatted(summary[1], decimals)}`;
        td.append(std);
      }
      if (summary[2] !== group.n) td.append(` (n=${summary[2]})`);
    };
  }
  function methodCell(td, method, group) {
    td.append(method);
    const text = collapsedText(group);
    if (text) {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.title = text;
      mark.textContent = " ⚠";
      td.append(mark);
    }
  }
  function familyCell(td, family) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = data.colours[family];
    td.append(swatch, family);
  }
  function runsCell(td, runs) {
    td.className = "runs";
    for (const run of runs) {
      const link = document.createElement(run.href ? "a" : "span");
      if (run.href) link.href = run.href;
      link.textContent = `s${run.seed}`;
      link.title = run.id + (run.collapsed ? `: collapsed (${run.collapsed})` : "");
      if (run.collapsed) link.className = "collapsed";
      td.append(link);
    }
  }
  const COLUMNS = [
    { key: "method", heading: "Method", value: (g) => g.method, render: methodCell },
    { key: "family", heading: "Family", value: (g) => g.family, render: familyCell },
    { key: "task", heading: "Task", value: (g) => g.task },
    { key: "model", heading: "Model", value: (g) => g.model },
    { key: "task_options", heading: "Task options", value: (g) => g.task_options },
    { key: "setting", heading: "Setting", value: (g) => g.setting, title: "what sets it apart from the method's other settings" },
    { key: "budget", heading: "Budget", value: (g) => g.budget },
    { key: "n", heading: "n", value: (g) => g.n, numeric: true, title: "runs (seeds)",
      render: (td, n) => { td.className = "number"; td.textContent = n; } },
    { key: "runs", heading: "Records", value: (g) => g.runs.map((run) => run.seed).join(" "),
      title: "each run's record (JSON), by seed", render: (td, runs, g) => runsCell(td, g.runs) },
    { key: "metric_name", heading: "Metric", value: metricName },
    { key: "metric", heading: "Task metric", unit: "final epoch", value: (g) => g.metric, numeric: true,
      title: "the task's main metric at the final epoch, mean ± std over seeds", render: summaryCell(3) },
    ...data.columns.map((column) => ({
      key: column.key, heading: column.heading, unit: column.unit, value: (g) => g.values[column.key] || null,
      numeric: true, render: summaryCell(column.decimals),
      title: [column.label, column.unit, directionText(column.higher_is_better)].filter(Boolean).join(", "),
    })),
    { key: "options", heading: "Method options", value: (g) => g.options,
      render: (td, text) => { td.className = "options"; td.textContent = text; td.title = text; } },
  ];
  const sortValue = (column, group) => {
    const value = column.value(group);
    return column.numeric && Array.isArray(value) ? value[0] : value;
  };

  function compareGroups(column, a, b) {
    const x = sortValue(column, a), y = sortValue(column, b);
    const xMissing = x === null || x === undefined || x === "", yMissing = y === null || y === undefined || y === "";
    if (xMissing || yMissing) return xMissing - yMissing;  // missing last, in either direction
    const order = column.numeric ? x - y : (x < y ? -1 : x > y ? 1 : 0);
    return state.descending ? -order : order;
  }

  // ---- filters ----
  const FILTERS = { "filter-task": "task", "filter-model": "model", "filter-family": "family", "filter-budget": "budget" };
  function fillFilters() {
    for (const [id, key] of Object.entries(FILTERS)) {
      const select = byId(id);
      for (const value of [...new Set(data.groups.map((g) => g[key]))].sort()) {
        select.append(new Option(value, value));
      }
    }
  }
  function visibleGroups() {
    const text = byId("filter-text").value.trim().toLowerCase();
    return data.groups.filter((group) =>
      Object.entries(FILTERS).every(([id, key]) => !byId(id).value || group[key] === byId(id).value) &&
      (!text || text.split(/\s+/).every((word) => searchText(group).includes(word))));
  }

  // ---- the table ----
  function renderHead() {
    const row = byId("runs-head");
    for (const column of COLUMNS) {
      const th = document.createElement("th");
      th.dataset.key = column.key;
      th.textContent = column.heading;
      if (column.unit) {
        const unit = document.createElement("span");
        unit.className = "unit";
        unit.textContent = column.unit;
        th.append(unit);
      }
      th.title = `${column.title ? column.title + ". " : ""}Click to sort.`;
      th.tabIndex = 0;
      th.addEventListener("click", () => {
        state.descending = state.sortKey === column.key ? !state.descending : false;
        state.sortKey = column.key;
        render();
      });
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); th.click(); }
      });
      row.append(th);
    }
  }
  function renderTable(groups) {
    const sortColumn = COLUMNS.find((column) => column.key === state.sortKey);
    const rows = sortColumn ? [...groups].sort((a, b) => compareGroups(sortColumn, a, b)) : groups;
    for (const th of byId("runs-head").children) {
      if (th.dataset.key === state.sortKey) th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    const body = byId("runs-body");
    body.replaceChildren();
    for (const group of rows) {
      const tr = document.createElement("tr");
      if (everyRunCollapsed(group)) tr.className = "all-collapsed";
      for (const column of COLUMNS) {
        const td = document.createElement("td");
        (column.render || textCell)(td, column.value(group), group);
        tr.append(td);
      }
      body.append(tr);
    }
    const runs = groups.reduce((sum, group) => sum + group.n, 0);
    byId("row-count").textContent = `${groups.length} of ${data.groups.length} rows shown (${runs} runs)`;
  }

  // ---- Pareto plots ----
  function paretoFront(points, maximizeMetric, minimizeCost) {
    // as plots.pareto_front: no candidate at least as good on both and better on one; equal points do not dominate
    const keys = points.map((p) => [(minimizeCost ? 1 : -1) * p.x, (maximizeMetric ? -1 : 1) * p.y]);
    const front = [];
    keys.forEach((key, i) => {
      if (!points[i].candidate) return;
      const dominated = keys.some((other, j) => points[j].candidate && other[0] <= key[0] && other[1] <= key[1] &&
        (other[0] !== key[0] || other[1] !== key[1]));
      if (!dominated) front.push(i);
    });
    return front.sort((a, b) => points[a].x - points[b].x || a - b);
  }
  function niceStep(span) {
    const power = Math.pow(10, Math.floor(Math.log10(span / 5)));
    const fraction = span / 5 / power;
    return power * (fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10);
  }
  function scale(low, high, log, start, end) {  // a linear or log10 axis over [low, high], padded by 5%
    const to = log ? Math.log10 : (v) => v;
    let a = to(low), b = to(high);
    if (a === b) { const pad = a === 0 ? 1 : Math.abs(a) * 0.1; a -= pad; b += pad; }
    const pad = (b - a) * 0.05;
    a -= pad; b += pad;
    const at = (v) => start + ((to(v) - a) / (b - a)) * (end - start);
    let ticks = [];
    if (log) {
      for (let k = Math.ceil(a); k <= Math.floor(b); k++) ticks.push(Math.pow(10, k));
      if (ticks.length < 2) {
        ticks = [];
        for (let k = Math.floor(a); k <= Math.ceil(b); k++) {
          for (const m of [1, 2, 5]) { const v = m * Math.pow(10, k); if (to(v) >= a && to(v) <= b) ticks.push(v); }
        }
      }
    } else {
      const step = niceStep(b - a);
      for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    const lowest = log ? Math.pow(10, a) : a;
    return { at, ticks, clamp: (v) => (log && v <= lowest ? lowest : v) };
  }
  const tickText = (v) => String(Number(v.toPrecision(4)));
  function svgElement(name, attributes, parent) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (parent) parent.append(element);
    return element;
  }
  function svgText(parent, text, attributes) {
    svgElement("text", attributes, parent).textContent = text;
  }

  function tooltipLines(point, cost, metric) {
    const g = point.group;
    const lines = [`${g.task} / ${g.model}${g.task_options ? " (" + g.task_options + ")" : ""}`];
    if (g.setting) lines.push(`setting: ${g.setting}`);
    lines.push(`budget: ${g.budget}`, `n = ${g.n} run(s)`);
    lines.push(`${metric}: ${summaryText(g.metric, 3)}`);
    lines.push(`${cost.heading} (${cost.unit}): ${summaryText(g.values[cost.key], cost.decimals)}`);
    if (g.options) lines.push(`options: ${g.options}`);
    if (collapsedText(g)) lines.push(`⚠ ${collapsedText(g)}`);
    if (point.front) lines.push("Pareto-optimal among the shown rows");
    return lines;
  }
  function showTooltip(event, point, cost, metric) {
    const tooltip = byId("tooltip");
    const title = document.createElement("b");
    title.textContent = `${point.group.method} (${point.group.family})`;
    tooltip.replaceChildren(title, "\n" + tooltipLines(point, cost, metric).join("\n"));
    tooltip.hidden = false;
    const box = event.target.getBoundingClientRect();
    const x = event.clientX || box.right, y = event.clientY || box.bottom;
    tooltip.style.left = `${Math.min(x + 14, window.innerWidth - tooltip.offsetWidth - 8)}px`;
    tooltip.style.top = `${Math.min(y + 14, window.innerHeight - tooltip.offsetHeight - 8)}px`;
  }
  function hideTooltip() { byId("tooltip").hidden = true; }

  function drawPanel(title, groups, cost) {
    const metric = metricName(groups[0]);
    const points = groups.map((group) => ({
      group, x: group.values[cost.key][0], sx: group.values[cost.key][1] || 0, y: group.metric[0],
      sy: group.metric[1] || 0, candidate: !everyRunCollapsed(group),
    }));
    const log = cost.pareto_log && points.every((p) => p.x > 0);
    const x = scale(Math.min(...points.map((p) => (log && p.x - p.sx <= 0 ? p.x : p.x - p.sx))),
      Math.max(...points.map((p) => p.x + p.sx)), log, PLOT.left, PLOT.width - PLOT.right);
    const y = scale(Math.min(...points.map((p) => p.y - p.sy)), Math.max(...points.map((p) => p.y + p.sy)), false,
      PLOT.height - PLOT.bottom, PLOT.top);
    const maximize = data.metric_higher_is_better[metric] !== false;
    const front = paretoFront(points, maximize, cost.higher_is_better !== true);
    front.forEach((i) => { points[i].front = true; });

    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    const svg = svgElement("svg", { class: "pareto", width: PLOT.width, height: PLOT.height,
      viewBox: `0 0 ${PLOT.width} ${PLOT.height}`, role: "img", "aria-label": `${title}: ${metric} against ${cost.heading}` });
    figure.append(caption, svg);
    for (const tick of x.ticks) {
      svgElement("line", { class: "grid", x1: x.at(tick), x2: x.at(tick), y1: PLOT.top, y2: PLOT.height - PLOT.bottom }, svg);
      svgText(svg, tickText(tick), { x: x.at(tick), y: PLOT.height - PLOT.bottom + 14, "text-anchor": "middle" });
    }
    for (const tick of y.ticks) {
      svgElement("line", { class: "grid", x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: y.at(tick), y2: y.at(tick) }, svg);
      svgText(svg, tickText(tick), { x: PLOT.left - 5, y: y.at(tick) + 3, "text-anchor": "end" });
    }
    svgElement("rect", { class: "axis", fill: "none", x: PLOT.left, y: PLOT.top,
      width: PLOT.width - PLOT.left - PLOT.right, height: PLOT.height - PLOT.top - PLOT.bottom }, svg);
    const xMiddle = (PLOT.left + PLOT.width - PLOT.right) / 2;
    svgText(svg, `${cost.label} (${cost.unit}${log ? ", log" : ""})`, { x: xMiddle, y: PLOT.height - 20, "text-anchor": "middle" });
    svgText(svg, `(${directionText(cost.higher_is_better)})`, { x: xMiddle, y: PLOT.height - 7, "text-anchor": "middle" });
    const yMiddle = (PLOT.top + PLOT.height - PLOT.bottom) / 2;
    svgText(svg, `${metric}, final epoch (${directionText(maximize)})`,
      { x: 14, y: yMiddle, "text-anchor": "middle", transform: `rotate(-90 14 ${yMiddle})` });

    svgElement("polyline", { class: "front-line", points: front.map((i) => `${x.at(points[i].x)},${y.at(points[i].y)}`).join(" ") }, svg);
    for (const point of points) {
      const colour = data.colours[point.group.family];
      const cx = x.at(point.x), cy = y.at(point.y);
      if (point.sx) {
        const left = x.at(x.clamp(point.x - point.sx)), right = x.at(point.x + point.sx);
        svgElement("path", { class: "error", stroke: colour, d: `M${left},${cy}H${right}M${left},${cy - 3}v6M${right},${cy - 3}v6` }, svg);
      }
      if (point.sy) {
        const top = y.at(point.y + point.sy), bottom = y.at(point.y - point.sy);
        svgElement("path", { class: "error", stroke: colour, d: `M${cx},${top}V${bottom}M${cx - 3},${top}h6M${cx - 3},${bottom}h6` }, svg);
      }
    }
    for (const point of points) {  // after every error bar, so no bar covers a point
      const colour = data.colours[point.group.family];
      const collapsed = collapsedRuns(point.group).length > 0;
      const circle = svgElement("circle", {
        class: "point" + (point.front ? " front" : "") + (collapsed ? " collapsed" : ""),
        cx: x.at(point.x), cy: y.at(point.y), r: 5, tabindex: 0,
        fill: collapsed ? "#fff" : colour, stroke: point.front ? "#000" : collapsed ? colour : "#fff",
        "data-method": point.group.method,
        "aria-label": `${point.group.method}: ${tooltipLines(point, cost, metric).join("; ")}`,
      }, svg);
      circle.addEventListener("mouseenter", (event) => showTooltip(event, point, cost, metric));
      circle.addEventListener("focus", (event) => showTooltip(event, point, cost, metric));
      circle.addEventListener("mouseleave", hideTooltip);
      circle.addEventListener("blur", hideTooltip);
    }
    return figure;
  }
  function renderPlots(groups) {
    const cost = data.columns.find((column) => column.key === byId("plot-cost").value);
    const panels = new Map();  // one per task, model and task options, in the table's order
    for (const group of groups) {
      if (!group.metric || !group.values[cost.key]) continue;
      const title = `${group.task} / ${group.model}${group.task_options ? " (" + group.task_options + ")" : ""}`;
      if (!panels.has(title)) panels.set(title, []);
      panels.get(title).push(group);
    }
    const plots = byId("plots");
    plots.replaceChildren(...[...panels].map(([title, panel]) => drawPanel(title, panel, cost)));
    if (!panels.size) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = `No shown row has both a task metric and ${cost.label.toLowerCase()}.`;
      plots.append(empty);
    }
  }
  function renderLegend() {
    const legend = byId("legend");
    for (const [family, colour] of Object.entries(data.colours)) {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      item.append(swatch, family);
      legend.append(item);
    }
  }

  function render() {
    hideTooltip();
    const groups = visibleGroups();
    renderTable(groups);
    renderPlots(groups);
  }

  function start() {
    const runs = data.groups.reduce((sum, group) => sum + group.n, 0);
    const notOk = Object.entries(data.not_ok).map(([status, n]) => `${n} ${status}`).join(", ");
    byId("summary").textContent = `${data.groups.length} rows from ${runs} ok runs` +
      (notOk ? `; records not ok, not shown: ${notOk}.` : ".");
    byId("note").textContent = data.note;
    for (const column of data.columns.filter((c) => c.pareto_log !== undefined)) {
      byId("plot-cost").append(new Option(`${column.label} (${column.unit})`, column.key));
    }
    fillFilters();
    renderHead();
    renderLegend();
    for (const id of [...Object.keys(FILTERS), "plot-cost"]) byId(id).addEventListener("change", render);
    byId("filter-text").addEventListener("input", render);
    render();
  }
  start();
})();
