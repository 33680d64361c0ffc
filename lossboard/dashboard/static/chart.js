// lossboard dashboard: the chart, in plain SVG (no library, no network).
// One mean curve per configuration and split (train solid, validation dashed), its band
// shaded, member runs as thin lines, a hover read-out of epoch, mean and spread.

const SVG = "http://www.w3.org/2000/svg";

// 24 colours that stay apart on light and dark backgrounds; past them, golden-angle hues.
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#e7ba52", "#637939", "#ad494a", "#a55194", "#6baed6",
  "#fd8d3c", "#74c476", "#9e9ac8", "#843c39", "#de9ed6", "#3182bd", "#b5cf6b", "#e6550d",
];

export function colour(index) {
  if (index < PALETTE.length) return PALETTE[index];
  const hue = Math.round((index * 137.508) % 360);
  return `hsl(${hue}, 65%, ${index % 2 ? 45 : 60}%)`;
}

export function num(value) {
  return typeof value === "number" ? value : Number(value);
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

// Rounded tick values spanning [low, high].
export function ticks(low, high, count, integer) {
  if (!(high > low)) return [low];
  let raw = (high - low) / Math.max(1, count);
  if (integer) raw = Math.max(1, raw);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = steps.map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

export function formatValue(v) {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0 || Math.abs(v) >= 0.01) return v.toFixed(4);
  return v.toExponential(4);
}

function tickText(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

// Segments of consecutive finite points: a NaN or infinity breaks a line.
function segments(xs, ys) {
  const out = [];
  let current = [];
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(ys[i])) current.push([xs[i], ys[i]]);
    else if (current.length) {
      out.push(current);
      current = [];
    }
  }
  if (current.length) out.push(current);
  return out;
}

function linePath(points, sx, sy) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
}

function bandPaths(steps, low, high, sx, sy) {
  const out = [];
  let start = 0;
  const ok = (i) => Number.isFinite(low[i]) && Number.isFinite(high[i]);
  while (start < steps.length) {
    while (start < steps.length && !ok(start)) start++;
    let end = start;
    while (end < steps.length && ok(end)) end++;
    if (end > start) {
      const top = [], bottom = [];
      for (let i = start; i < end; i++) top.push([steps[i], high[i]]);
      for (let i = end - 1; i >= start; i--) bottom.push([steps[i], low[i]]);
      if (end - start === 1) {  // one epoch: a thin vertical bar
        const x = steps[start];
        out.push(linePath([[x, low[start]], [x, high[start]]], sx, sy));
      } else {
        out.push(linePath(top, sx, sy) + linePath(bottom, sx, sy).replace(/^M/, "L") + "Z");
      }
    }
    start = end;
  }
  return out;
}

// Draws `curves` ([{name, colour, split, steps, mean, low, high, std, runs}]) and `members`
// ([{name, run, colour, split, steps, values}]) into `host`; returns the svg.
export function drawChart(host, curves, members, options) {
  const { width, height, logY, bandText, tag } = options;
  host.textContent = "";
  const svg = el("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "lb-chart",
    "data-curves": String(curves.length),
    "data-bands": String(curves.filter((c) => c.low.some((v, i) => Number.isFinite(v) && Number.isFinite(c.high[i]))).length),
    role: "img", "aria-label": `${tag}: ${curves.length} curves`,
  }, host);
  const margin = { left: 70, right: 20, top: 14, bottom: 42 };
  const plotW = Math.max(50, width - margin.left - margin.right);
  const plotH = Math.max(50, height - margin.top - margin.bottom);
  const transform = logY ? (v) => (v > 0 ? Math.log10(v) : NaN) : (v) => v;
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  const seeY = (v) => {
    const t = transform(v);
    if (Number.isFinite(t)) {
      yMin = Math.min(yMin, t);
      yMax = Math.max(yMax, t);
    }
  };
  for (const c of curves) {
    c.steps.forEach((s, i) => {
      xMin = Math.min(xMin, s);
      xMax = Math.max(xMax, s);
      seeY(c.mean[i]); seeY(c.low[i]); seeY(c.high[i]);
    });
  }
  for (const m of members) {
    m.steps.forEach((s, i) => {
      xMin = Math.min(xMin, s);
      xMax = Math.max(xMax, s);
      seeY(m.values[i]);
    });
  }
  if (!Number.isFinite(xMin)) {
    el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "lb-empty" }, svg)
      .textContent = "No curve to draw: pick another tag or split.";
    return svg;
  }
  if (xMax === xMin) { xMin -= 1; xMax += 1; }
  if (!(yMax > yMin)) { const pad = Math.abs(yMin) * 0.1 || 1; yMin -= pad; yMax += pad; }
  const padY = (yMax - yMin) * 0.04;
  yMin -= padY; yMax += padY;
  const sx = (x) => margin.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const syRaw = (t) => margin.top + (1 - (t - yMin) / (yMax - yMin)) * plotH;
  const sy = (v) => syRaw(transform(v));
  const axes = el("g", { class: "lb-axes" }, svg);
  for (const t of ticks(yMin, yMax, Math.max(3, Math.floor(plotH / 50)))) {
    const y = syRaw(t);
    el("line", { x1: margin.left, x2: margin.left + plotW, y1: y, y2: y, class: "lb-grid" }, axes);
    el("text", { x: margin.left - 6, y: y + 4, "text-anchor": "end", class: "lb-tick" }, axes)
      .textContent = logY ? tickText(Math.pow(10, t)) : tickText(t);
  }
  const xTicks = ticks(xMin, xMax, Math.max(2, Math.floor(plotW / 80)), true).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    const x = sx(t);
    el("line", { x1: x, x2: x, y1: margin.top, y2: margin.top + plotH, class: "lb-grid" }, axes);
    el("text", { x, y: margin.top + plotH + 16, "text-anchor": "middle", class: "lb-tick" }, axes)
      .textContent = String(t);
  }
  el("rect", { x: margin.left, y: margin.top, width: plotW, height: plotH, class: "lb-frame" }, axes);
  el("text", { x: margin.left + plotW / 2, y: height - 6, "text-anchor": "middle", class: "lb-label" }, axes)
    .textContent = "epoch";
  el("text", {
    x: 14, y: margin.top + plotH / 2, "text-anchor": "middle", class: "lb-label",
    transform: `rotate(-90 14 ${margin.top + plotH / 2})`,
  }, axes).textContent = tag + (logY ? " (log)" : "");

  const clip = el("clipPath", { id: "lb-clip" }, el("defs", {}, svg));
  el("rect", { x: margin.left, y: margin.top, width: plotW, height: plotH }, clip);
  const layer = el("g", { "clip-path": "url(#lb-clip)" }, svg);
  const bands = el("g", { class: "lb-bands" }, layer);
  for (const c of curves) {
    for (const d of bandPaths(c.steps, c.low, c.high, sx, sy)) {
      el("path", {
        d, fill: c.colour, stroke: c.colour, class: "band",
        "data-config": c.name, "data-split": c.split,
        "fill-opacity": c.split === "validation" ? 0.12 : 0.18, "stroke-opacity": 0.25,
      }, bands);
    }
  }
  const thin = el("g", { class: "lb-members" }, layer);
  for (const m of members) {
    for (const seg of segments(m.steps, m.values)) {
      el("path", {
        d: linePath(seg, sx, sy), stroke: m.colour, fill: "none", class: "member",
        "stroke-width": 1, "stroke-opacity": 0.7, "data-run": m.run, "data-split": m.split,
        "stroke-dasharray": m.split === "validation" ? "4 3" : "none",
      }, thin);
    }
  }
  const lines = el("g", { class: "lb-curves" }, layer);
  for (const c of curves) {
    const group = el("g", { class: "curve", "data-config": c.name, "data-split": c.split }, lines);
    for (const seg of segments(c.steps, c.mean)) {
      el("path", {
        d: linePath(seg, sx, sy), stroke: c.colour, fill: "none", "stroke-width": 2.2,
        "stroke-dasharray": c.split === "validation" ? "7 4" : "none",
      }, group);
    }
    if (c.steps.length === 1 && Number.isFinite(c.mean[0])) {
      el("circle", { cx: sx(c.steps[0]), cy: sy(c.mean[0]), r: 3, fill: c.colour }, group);
    }
  }
  hover(svg, curves, { sx, margin, plotW, plotH, xMin, xMax, bandText, host });
  return svg;
}

function hover(svg, curves, g) {
  const cursor = el("line", { y1: g.margin.top, y2: g.margin.top + g.plotH, class: "lb-cursor", visibility: "hidden" }, svg);
  const tip = document.createElement("div");
  tip.className = "lb-tip";
  tip.style.display = "none";
  g.host.appendChild(tip);
  const catcher = el("rect", {
    x: g.margin.left, y: g.margin.top, width: g.plotW, height: g.plotH, fill: "transparent", class: "lb-catcher",
  }, svg);
  catcher.addEventListener("mouseleave", () => {
    tip.style.display = "none";
    cursor.setAttribute("visibility", "hidden");
  });
  catcher.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const x = event.clientX - box.left;
    const epoch = Math.round(g.xMin + ((x - g.margin.left) / g.plotW) * (g.xMax - g.xMin));
    const rows = [];
    for (const c of curves) {
      const i = c.steps.indexOf(epoch);
      if (i >= 0) rows.push({ c, i });
    }
    if (!rows.length) {
      tip.style.display = "none";
      cursor.setAttribute("visibility", "hidden");
      return;
    }
    rows.sort((a, b) => (a.c.mean[a.i] - b.c.mean[b.i]) || 0);
    cursor.setAttribute("x1", g.sx(epoch));
    cursor.setAttribute("x2", g.sx(epoch));
    cursor.setAttribute("visibility", "visible");
    const shown = rows.slice(0, 14);
    tip.textContent = "";
    const head = document.createElement("div");
    head.className = "lb-tip-head";
    head.textContent = `epoch ${epoch} · band: ${g.bandText}`;
    tip.appendChild(head);
    for (const { c, i } of shown) {
      const line = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "lb-swatch";
      swatch.style.background = c.colour;
      line.appendChild(swatch);
      const std = Number.isFinite(c.std[i]) ? ` ± ${formatValue(c.std[i])}` : "";
      line.appendChild(document.createTextNode(
        `${c.name} ${c.split === "validation" ? "val" : c.split} (n=${c.runs}): ` +
        `${formatValue(c.mean[i])}${std} [${formatValue(c.low[i])}, ${formatValue(c.high[i])}]`));
      tip.appendChild(line);
    }
    if (rows.length > shown.length) {
      const more = document.createElement("div");
      more.textContent = `+${rows.length - shown.length} more`;
      tip.appendChild(more);
    }
    tip.style.display = "block";
    const left = g.sx(epoch) + 14;
    tip.style.left = `${Math.min(left, Math.max(0, box.width - tip.offsetWidth - 4))}px`;
    tip.style.top = `${Math.max(0, event.clientY - box.top - tip.offsetHeight / 2)}px`;
  });
}
