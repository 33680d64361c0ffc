// lossboard dashboard: configurations over seeds, in TensorBoard (its `lossboard` tab).
// TensorBoard imports this ES module in an iframe and calls render(). Everything comes from
// the plugin's own routes (./info, ./configurations, ./members); no network beyond them.

import { colour, drawChart, formatValue, num } from "./chart.js";

const state = {
  info: null,
  data: null,
  tag: "",
  over: null,       // null: the server's default (seed when runs have it)
  splits: null,     // null: every split
  band: "std",
  higherIsBetter: false,
  show: "20",
  logY: false,
  opened: new Map(), // configuration name -> its member runs (thin lines)
  sort: null,        // {column, descending}
};

const STYLE = `
:root { --bg: #fff; --fg: #212121; --muted: #616161; --line: #e0e0e0; --head: #f5f5f5;
  --accent: #f57c00; --tip: rgba(255,255,255,0.96); --error: #c62828; color-scheme: light; }
:root.lb-dark { --bg: #202124; --fg: #e8eaed; --muted: #9aa0a6; --line: #3c4043;
  --head: #2d2e31; --accent: #ffb74d; --tip: rgba(32,33,36,0.96); --error: #ef9a9a;
  color-scheme: dark; }
html, body { margin: 0; background: var(--bg); color: var(--fg);
  font: 13px/1.4 Roboto, "Helvetica Neue", Arial, sans-serif; }
.lb-root { padding: 10px 16px 24px; max-width: 1800px; }
.lb-controls { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center;
  padding-bottom: 8px; border-bottom: 1px solid var(--line); }
.lb-controls label { white-space: nowrap; }
.lb-controls select, .lb-controls button { font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 3px; padding: 2px 6px; }
.lb-controls button { cursor: pointer; }
.lb-group { display: inline-flex; gap: 8px; align-items: center; }
.lb-group > b { font-weight: 500; color: var(--muted); }
.lb-status { color: var(--muted); margin: 6px 0; min-height: 1.4em; }
.lb-status.lb-error { color: var(--error); white-space: pre-wrap; }
.lb-legend { display: flex; flex-wrap: wrap; gap: 2px 14px; margin: 6px 0; }
.lb-legend-item { cursor: pointer; user-select: none; display: inline-flex; align-items: center;
  gap: 5px; }
.lb-legend-item.lb-open { font-weight: 600; }
.lb-swatch { display: inline-block; width: 14px; height: 4px; border-radius: 2px;
  margin-right: 5px; vertical-align: middle; }
.lb-chart-host { position: relative; }
.lb-chart { display: block; }
.lb-grid { stroke: var(--line); stroke-width: 1; }
.lb-frame { fill: none; stroke: var(--muted); stroke-width: 1; }
.lb-tick, .lb-label, .lb-empty { fill: var(--muted); font-size: 11px; }
.lb-label { font-size: 12px; fill: var(--fg); }
.lb-cursor { stroke: var(--muted); stroke-dasharray: 3 3; pointer-events: none; }
.lb-tip { position: absolute; pointer-events: none; background: var(--tip); color: var(--fg);
  border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; font-size: 12px;
  max-width: 560px; box-shadow: 0 2px 6px rgba(0,0,0,0.2); z-index: 2; }
.lb-tip-head { color: var(--muted); margin-bottom: 3px; }
.lb-table-wrap { overflow-x: auto; margin-top: 12px; }
table.lb-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.lb-table th, .lb-table td { padding: 3px 10px; border-bottom: 1px solid var(--line);
  text-align: right; white-space: nowrap; }
.lb-table th { background: var(--head); cursor: pointer; font-weight: 500; position: sticky;
  top: 0; }
.lb-table th.lb-sorted::after { content: " ▲"; font-size: 9px; }
.lb-table th.lb-sorted.lb-desc::after { content: " ▼"; }
.lb-table td:first-child, .lb-table th:first-child { text-align: left; }
.lb-table tbody tr { cursor: pointer; }
.lb-table tbody tr:hover { background: var(--head); }
.lb-table tbody tr.lb-open { outline: 2px solid var(--accent); outline-offset: -2px; }
.lb-notes { color: var(--muted); margin: 8px 0 0; padding-left: 18px; }
.lb-hint { color: var(--muted); font-size: 12px; }
`;

function node(tag, attrs, parent, text) {
  const out = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "className") out.className = value;
    else out.setAttribute(key, value);
  }
  if (text !== undefined) out.textContent = text;
  if (parent) parent.appendChild(out);
  return out;
}

// TensorBoard's dark mode: the `dark-mode` class on its body (this iframe is same-origin);
// without access to it, the browser's prefers-color-scheme.
function followTheme() {
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let parentBody = null;
  try {
    parentBody = window.parent !== window ? window.parent.document.body : null;
  } catch (error) {
    parentBody = null;
  }
  const apply = () => {
    const dark = parentBody ? parentBody.classList.contains("dark-mode") : !!(media && media.matches);
    document.documentElement.classList.toggle("lb-dark", dark);
  };
  apply();
  if (parentBody) {
    new MutationObserver(apply).observe(parentBody, { attributes: true, attributeFilter: ["class"] });
  }
  if (media && media.addEventListener) media.addEventListener("change", apply);
}

async function getJson(route, params) {
  const query = new URLSearchParams();
  for (const [key, value] of params) query.append(key, value);
  const response = await fetch(`./${route}?${query.toString()}`, { headers: { "X-XSRF-Protected": "1" } });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new Error(`${route}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  if (!response.ok) throw new Error(body.error || `${route}: HTTP ${response.status}`);
  return body;
}

function queryParams(extra) {
  // before the first answer (or after a refusal), the server's defaults
  if (!state.info) return extra || [];
  const params = [["tag", state.tag]];
  const over = state.over === null ? state.info.over : state.over;
  if (over.length) for (const key of over) params.push(["over", key]);
  else params.push(["over", ""]);
  for (const split of state.splits || state.info.splits) params.push(["split", split]);
  return params.concat(extra || []);
}

const ui = {};

function buildControls(root) {
  const bar = node("div", { className: "lb-controls" }, root);
  const tagLabel = node("label", {}, bar, "component ");
  ui.tag = node("select", { id: "lb-tag" }, tagLabel);
  ui.tag.addEventListener("change", () => { state.tag = ui.tag.value; state.opened.clear(); refresh(); });
  ui.over = node("span", { className: "lb-group", id: "lb-over" }, bar);
  ui.splits = node("span", { className: "lb-group", id: "lb-splits" }, bar);
  const bandLabel = node("label", {}, bar, "band ");
  ui.band = node("select", { id: "lb-band" }, bandLabel);
  for (const [value, text] of [["std", "mean ± std"], ["minmax", "min – max"], ["ci", "95% CI of the mean"]]) {
    node("option", { value }, ui.band, text);
  }
  ui.band.addEventListener("change", () => { state.band = ui.band.value; refresh(); });
  const showLabel = node("label", {}, bar, "curves of the best ");
  ui.show = node("select", { id: "lb-show" }, showLabel);
  for (const value of ["10", "20", "50", "all"]) node("option", { value }, ui.show, value);
  ui.show.value = state.show;
  ui.show.addEventListener("change", () => { state.show = ui.show.value; refresh(); });
  const higher = node("label", {}, bar);
  ui.higher = node("input", { type: "checkbox", id: "lb-higher" }, higher);
  higher.appendChild(document.createTextNode(" higher is better"));
  ui.higher.addEventListener("change", () => { state.higherIsBetter = ui.higher.checked; refresh(); });
  const log = node("label", {}, bar);
  ui.log = node("input", { type: "checkbox", id: "lb-log" }, log);
  log.appendChild(document.createTextNode(" log scale"));
  ui.log.addEventListener("change", () => { state.logY = ui.log.checked; draw(); });
  ui.reload = node("button", { type: "button", id: "lb-reload", title: "read the runs again" }, bar, "reload");
  ui.reload.addEventListener("click", () => reload());
  ui.status = node("div", { className: "lb-status", id: "lb-status" }, root);
  ui.legend = node("div", { className: "lb-legend", id: "lb-legend" }, root);
  ui.chart = node("div", { className: "lb-chart-host", id: "lb-chart" }, root);
  node("div", { className: "lb-hint" }, root,
    "Click a configuration (legend or table row) to show its runs as thin lines; click a column to sort.");
  ui.tableWrap = node("div", { className: "lb-table-wrap" }, root);
  ui.notes = node("ul", { className: "lb-notes", id: "lb-notes" }, root);
}

function checkboxes(host, title, names, chosen, onChange, id) {
  host.textContent = "";
  node("b", {}, host, title);
  if (!names.length) node("span", { className: "lb-hint" }, host, "none");
  for (const name of names) {
    const label = node("label", {}, host);
    const box = node("input", { type: "checkbox", value: name, "data-group": id }, label);
    box.checked = chosen.includes(name);
    label.appendChild(document.createTextNode(" " + name));
    box.addEventListener("change", () => {
      const picked = [...host.querySelectorAll("input:checked")].map((b) => b.value);
      onChange(picked);
    });
  }
}

function fillControls() {
  const info = state.info;
  ui.tag.textContent = "";
  for (const tag of info.tags) node("option", { value: tag }, ui.tag, tag);
  if (!info.tags.includes(state.tag)) state.tag = info.tags.includes("epoch_loss") ? "epoch_loss" : (info.tags[0] || "");
  ui.tag.value = state.tag;
  const over = state.over === null ? info.over : state.over.filter((k) => info.hparams.includes(k));
  checkboxes(ui.over, "average over", info.hparams, over, (picked) => {
    state.over = picked; state.opened.clear(); refresh();
  }, "over");
  const splits = (state.splits || info.splits).filter((s) => info.splits.includes(s));
  checkboxes(ui.splits, "splits", info.splits, splits, (picked) => {
    state.splits = picked; refresh();
  }, "split");
  ui.band.value = state.band;
}

function setStatus(text, error) {
  ui.status.textContent = text;
  ui.status.classList.toggle("lb-error", !!error);
}

let generation = 0;

// Reads the runs again (TensorBoard's reload button, the tab's own, or a first load): one
// request, whose answer also says which tags, splits and hparams the runs have now.
async function reload() {
  const opened = [...state.opened.keys()];
  await refresh();
  for (const name of opened) await openMembers(name, true);
}

async function refresh() {
  const mine = ++generation;
  setStatus("reading the runs…");
  const started = performance.now();
  const extra = [["band", state.band], ["higher_is_better", state.higherIsBetter ? "1" : "0"], ["show", state.show]];
  let data;
  try {
    data = await getJson("configurations", queryParams(extra));
  } catch (error) {
    if (mine !== generation) return;
    if (state.info) {  // a tag or hparam that is gone since: the server's defaults instead
      state.info = null;
      state.tag = "";
      state.over = null;
      state.splits = null;
      try {
        data = await getJson("configurations", extra);
      } catch (again) {
        error = again;
      }
    }
    if (!data) {
      if (mine === generation) {
        state.data = null;
        draw();
        setStatus(String(error.message || error), true);
      }
      return;
    }
  }
  if (mine !== generation) return;
  state.data = data;
  state.info = data.info;
  state.tag = data.tag;
  fillControls();
  if (!data.info.tags.length) {
    setStatus("No run under this logdir has an epoch_* tag yet: train a run with "
      + "lossboard.LossLogger (or Keras' TensorBoard callback), then press reload.");
    draw();
    return;
  }
  const configs = data.configurations;
  const runs = configs.reduce((total, c) => total + c.runs, 0);
  const drawn = configs.filter((c) => Object.keys(c.curves).length).length;
  const over = data.over.length ? data.over.join(", ") : "nothing (each set of equal hparams)";
  let text = `${configs.length} configuration(s) of ${runs} run(s), averaged over ${over}; ` +
    `ranked by the mean final ${data.ranked_by} value; band: ${data.band_text}.`;
  if (drawn < configs.length) text += ` Curves of the best ${drawn}; the table lists all.`;
  if (data.skipped.length) text += ` Left out the folders lossboard aggregate wrote: ${data.skipped.join(", ")}.`;
  setStatus(text + ` (${Math.round(performance.now() - started)} ms)`);
  for (const name of [...state.opened.keys()]) {
    if (!configs.some((c) => c.name === name)) state.opened.delete(name);
  }
  draw();
}

async function openMembers(name, force) {
  if (state.opened.has(name) && !force) {
    state.opened.delete(name);
    draw();
    return;
  }
  try {
    const body = await getJson("members", queryParams([["config", name]]));
    state.opened.set(name, body.runs);
  } catch (error) {
    setStatus(String(error.message || error), true);
  }
  draw();
}

function chartSize() {
  const width = Math.max(320, Math.min(ui.chart.clientWidth || document.documentElement.clientWidth - 32, 1760));
  const height = Math.round(Math.max(240, Math.min(window.innerHeight * 0.55, width * 0.5, 620)));
  return { width, height };
}

function draw() {
  const data = state.data;
  const curves = [];
  const members = [];
  ui.legend.textContent = "";
  if (data) {
    for (const c of data.configurations) {
      const shade = colour(c.colour);
      for (const [split, band] of Object.entries(c.curves)) {
        curves.push({
          name: c.name, colour: shade, split, runs: c.runs, steps: band.steps,
          mean: band.mean.map(num), low: band.low.map(num), high: band.high.map(num), std: band.std.map(num),
        });
      }
      for (const run of state.opened.get(c.name) || []) {
        for (const [split, curve] of Object.entries(run.curves)) {
          members.push({ name: c.name, run: run.run, colour: shade, split, steps: curve.steps, values: curve.values.map(num) });
        }
      }
      if (Object.keys(c.curves).length || state.opened.has(c.name)) {
        const item = node("span", { className: "lb-legend-item", "data-config": c.name, title: c.members.join("\n") }, ui.legend);
        item.classList.toggle("lb-open", state.opened.has(c.name));
        const swatch = node("span", { className: "lb-swatch" }, item);
        swatch.style.background = shade;
        item.appendChild(document.createTextNode(`${c.name} (n=${c.runs})`));
        item.addEventListener("click", () => openMembers(c.name));
      }
    }
    if (curves.length) {
      const styles = node("span", { className: "lb-hint" }, ui.legend, "train solid, validation dashed");
      styles.style.marginLeft = "auto";
    }
  }
  const { width, height } = chartSize();
  drawChart(ui.chart, curves, members, {
    width, height, logY: state.logY, bandText: data ? data.band_text : "", tag: state.tag,
  });
  drawTable();
}

// The table's text columns (as `lossboard compare --over` prints them) and, for sorting, the
// numeric column behind each (as --csv and compare_groups give them).
function sortKeys(table) {
  const numeric = table.numeric.header || [];
  return table.header.map((shown) => {
    const name = shown.toLowerCase().replace(/[()]/g, "");  // "p vs best (Holm)": "... holm"
    let best = numeric.indexOf(name);
    if (best < 0) best = numeric.findIndex((n) => n.startsWith(name + " "));
    return best;
  });
}

function drawTable() {
  ui.tableWrap.textContent = "";
  ui.notes.textContent = "";
  const data = state.data;
  if (!data || !data.table.header.length) return;
  const table = data.table;
  const keys = sortKeys(table);
  const rows = table.cells.map((cells, i) => ({ cells, numeric: table.numeric.cells[i], config: data.configurations[i] }));
  if (state.sort && state.sort.column < table.header.length) {
    const { column, descending } = state.sort;
    const key = keys[column];
    const value = (row) => {
      const v = key >= 0 ? row.numeric[key] : row.cells[column];
      const n = typeof v === "number" ? v : Number(v);
      return Number.isNaN(n) || v === "" || v === null ? null : n;
    };
    rows.sort((a, b) => {
      const x = value(a), y = value(b);
      if (x === null && y === null) return String(a.cells[column]).localeCompare(String(b.cells[column]));
      if (x === null) return 1;
      if (y === null) return -1;
      return descending ? y - x : x - y;
    });
  }
  const element = node("table", { className: "lb-table", id: "lb-table" }, ui.tableWrap);
  const head = node("tr", {}, node("thead", {}, element));
  table.header.forEach((name, column) => {
    const th = node("th", { "data-column": String(column) }, head, name);
    if (state.sort && state.sort.column === column) {
      th.classList.add("lb-sorted");
      th.classList.toggle("lb-desc", state.sort.descending);
    }
    th.addEventListener("click", () => {
      const again = state.sort && state.sort.column === column;
      state.sort = { column, descending: again ? !state.sort.descending : false };
      drawTable();
    });
  });
  const body = node("tbody", {}, element);
  for (const row of rows) {
    const tr = node("tr", { "data-config": row.config.name }, body);
    tr.classList.toggle("lb-open", state.opened.has(row.config.name));
    row.cells.forEach((text, column) => {
      const key = keys[column];
      const attrs = key >= 0 ? { "data-value": String(row.numeric[key]), "data-key": table.numeric.header[key] } : {};
      const td = node("td", attrs, tr, String(text));
      if (column === 0) {
        const swatch = node("span", { className: "lb-swatch" });
        swatch.style.background = colour(row.config.colour);
        td.prepend(swatch);
      }
    });
    tr.addEventListener("click", () => openMembers(row.config.name));
  }
  for (const note of data.notes) node("li", {}, ui.notes, note);
}

export function render() {
  const style = document.createElement("style");
  style.textContent = STYLE;
  document.head.appendChild(style);
  followTheme();
  const root = node("div", { className: "lb-root", id: "lb-root" }, document.body);
  buildControls(root);
  // TensorBoard's reload button (and its auto-reload) calls reload() on a dashboard's
  // element; this iframe is ours, so it reloads too.
  try {
    if (window.frameElement) window.frameElement.reload = () => reload();
  } catch (error) {
    // a cross-origin host: the reload button of the dashboard itself still works
  }
  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(draw, 100);
  });
  reload();
}

export { formatValue };
