// Line charts of metric series in SVG: several series, drag across to zoom into an x range, double-click to reset.
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2458c6", "#c0392b", "#1f8a4c", "#b7791f", "#7a5cc7", "#17869e", "#d35400", "#555"];

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

const fmt = (v) => Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : +v.toFixed(4);

export function lineChart(series, { width = 640, height = 260 } = {}) {
  // series: { name: [[x, y], ...] } — x is the point's order (or any number), y its value.
  const wrap = document.createElement("div");
  wrap.className = "chart";
  const names = Object.keys(series);
  const legend = document.createElement("div");
  legend.className = "legend";
  names.forEach((n, i) => {
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = COLOURS[i % COLOURS.length];
    item.append(sw, `${n} (${series[n].length})`);
    legend.append(item);
  });
  const all = names.flatMap((n) => series[n]);
  const full = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Chart of ${names.join(", ")}` });
  const M = { l: 66, r: 14, t: 12, b: 28 };
  let range = full.slice();
  function draw() {
    root.replaceChildren();
    const pts = names.map((n) => series[n].filter((p) => p[0] >= range[0] && p[0] <= range[1]));
    const ys = pts.flat().map((p) => p[1]);
    let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const x0 = range[0], x1 = range[1] === range[0] ? range[0] + 1 : range[1];
    const sx = (x) => M.l + (x - x0) / (x1 - x0) * (width - M.l - M.r);
    const sy = (y) => height - M.b - (y - y0) / (y1 - y0) * (height - M.t - M.b);
    for (let i = 0; i <= 4; i++) {
      const y = y0 + (y1 - y0) * i / 4;
      root.append(svg("line", { x1: M.l, x2: width - M.r, y1: sy(y), y2: sy(y), stroke: "#eceff3" }));
      root.append(svg("text", { x: M.l - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 13, fill: "#5d6875" }, fmt(y)));
      const x = x0 + (x1 - x0) * i / 4;
      root.append(svg("text", { x: sx(x), y: height - 6, "text-anchor": "middle", "font-size": 13, fill: "#5d6875" }, x1 - x0 >= 8 ? Math.round(x) : fmt(x)));
    }
    pts.forEach((p, i) => {
      if (!p.length) return;
      const d = p.map((q, j) => `${j ? "L" : "M"}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(" ");
      root.append(svg("path", { d, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": 1.8, "data-series": names[i] }));
      if (p.length < 60) for (const q of p) root.append(svg("circle", { cx: sx(q[0]), cy: sy(q[1]), r: 2.5, fill: COLOURS[i % COLOURS.length] }));
    });
    root.dataset.range = `${range[0]},${range[1]}`;
    const band = svg("rect", { class: "band", y: M.t, height: height - M.t - M.b, width: 0, fill: "rgba(36,88,198,.15)" });
    root.append(band);
    const toX = (ev) => { const r = root.getBoundingClientRect(); return (ev.clientX - r.left) / r.width * width; };
    const back = (px) => x0 + (Math.min(Math.max(px, M.l), width - M.r) - M.l) / (width - M.l - M.r) * (x1 - x0);
    let start = null;
    root.onpointerdown = (ev) => { start = toX(ev); root.setPointerCapture(ev.pointerId); };
    root.onpointermove = (ev) => { if (start === null) return; const x = toX(ev); band.setAttribute("x", Math.min(x, start)); band.setAttribute("width", Math.abs(x - start)); };
    root.onpointerup = (ev) => {
      if (start === null) return;
      const x = toX(ev), a = back(Math.min(x, start)), b = back(Math.max(x, start)), dragged = Math.abs(x - start) > 4;
      start = null;
      if (dragged && b > a) range = [a, b];
      draw();
    };
  }
  root.ondblclick = () => { range = full.slice(); draw(); };
  draw();
  const reset = document.createElement("button");
  reset.type = "button"; reset.className = "secondary"; reset.textContent = "Reset zoom";
  reset.onclick = () => { range = full.slice(); draw(); };
  wrap.append(legend, root, reset);
  return wrap;
}

export function sparkline(values, { width = 90, height = 22 } = {}) {
  const root = svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `durations: ${values.map((v) => v.toFixed(1)).join(", ")} s` });
  if (values.length < 2) return root;
  const lo = Math.min(...values), hi = Math.max(...values) || 1;
  const sx = (i) => 2 + i / (values.length - 1) * (width - 4);
  const sy = (v) => height - 2 - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (height - 4);
  root.append(svg("path", { d: values.map((v, i) => `${i ? "L" : "M"}${sx(i).toFixed(1)},${sy(v).toFixed(1)}`).join(" "), fill: "none", stroke: "#2458c6", "stroke-width": 1.5 }));
  return root;
}
