// The pipeline's DAG from its definition, laid out top to bottom in layers (longest path, barycentre order) as SVG.
// Condition branches are labelled edges (if / else); a ForEach body is drawn inside a dashed box.
const SVG = "http://www.w3.org/2000/svg";
const W = 160, H = 38, GAP_X = 26, GAP_Y = 50, PAD = 20;

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function references(value, found = new Set()) {
  if (Array.isArray(value)) value.forEach((v) => references(v, found));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "Get" && typeof v === "string" && v.startsWith("Steps.")) found.add(v.slice(6).split(/[.[]/)[0]);
      else if (k !== "IfSteps" && k !== "ElseSteps" && k !== "Steps") references(v, found);
    }
  }
  return found;
}

export function graphOf(definition) {
  const nodes = new Map(), edges = [], groups = [];
  function visit(step, group) {
    nodes.set(step.Name, { name: step.Name, type: step.Type, group });
    const args = step.Arguments || {};
    if (step.Type === "Condition") {
      for (const s of args.IfSteps || []) { visit(s, group); edges.push({ from: step.Name, to: s.Name, label: "if" }); }
      for (const s of args.ElseSteps || []) { visit(s, group); edges.push({ from: step.Name, to: s.Name, label: "else" }); }
    }
    if (step.Type === "ForEach") {
      const body = { name: step.Name, members: [] };
      groups.push(body);
      for (const s of args.Steps || []) { visit(s, body); body.members.push(s.Name); }
    }
  }
  for (const step of definition.Steps || []) visit(step, null);
  function link(step) {
    const own = groups.find((g) => g.name === step.Name);  // a ForEach's outputs come from its own body
    const deps = new Set([...(step.DependsOn || []), ...references(step.Arguments || {}), ...references(step.PropertyFiles || [])]);
    if (own) own.members.forEach((m) => deps.delete(m));
    for (const d of deps) if (nodes.has(d) && d !== step.Name && !edges.some((e) => e.from === d && e.to === step.Name)) edges.push({ from: d, to: step.Name });
    const args = step.Arguments || {};
    for (const s of [...(args.IfSteps || []), ...(args.ElseSteps || []), ...(args.Steps || [])]) link(s);
  }
  (definition.Steps || []).forEach(link);
  for (const g of groups) {  // the ForEach fans out to the body steps that depend on nothing else inside it
    for (const m of g.members) if (!edges.some((e) => e.to === m && g.members.includes(e.from))) edges.push({ from: g.name, to: m, label: "each" });
  }
  for (const g of groups) {  // what uses a ForEach's outputs comes after its whole body (layering only, not drawn)
    for (const e of edges.filter((x) => x.from === g.name && !g.members.includes(x.to))) {
      for (const m of g.members) edges.push({ from: m, to: e.to, hidden: true });
    }
  }
  return { nodes, edges, groups };
}

export function layout(graph) {
  const layer = new Map(), incoming = new Map();
  for (const n of graph.nodes.keys()) incoming.set(n, []);
  for (const e of graph.edges) incoming.get(e.to).push(e.from);
  const visiting = new Set();
  function depth(n) {
    if (layer.has(n)) return layer.get(n);
    if (visiting.has(n)) return 0;
    visiting.add(n);
    const d = Math.max(-1, ...incoming.get(n).map(depth)) + 1;
    layer.set(n, d);
    return d;
  }
  [...graph.nodes.keys()].forEach(depth);
  const columns = [];
  for (const [n, d] of layer) (columns[d] ||= []).push(n);
  const pos = new Map();
  columns.forEach((col, x) => {
    if (x > 0) {  // barycentre of the predecessors' rows keeps edges short and uncrossed where it can
      const bary = (n) => { const ps = incoming.get(n).filter((p) => pos.has(p)); return ps.length ? ps.reduce((s, p) => s + pos.get(p).row, 0) / ps.length : 1e9; };
      col.sort((a, b) => bary(a) - bary(b));
    }
    col.forEach((n, row) => pos.set(n, { row, x: PAD + row * (W + GAP_X), y: PAD + 14 + x * (H + GAP_Y) }));
  });
  const widest = Math.max(1, ...columns.map((c) => c.length));
  return { pos, width: PAD * 2 + widest * (W + GAP_X) - GAP_X, height: PAD * 2 + 14 + columns.length * (H + GAP_Y) - GAP_Y };
}

export function drawDag(definition, onSelect) {
  const graph = graphOf(definition);
  const { pos, width, height } = layout(graph);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Pipeline graph" });
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8f9aa6" }));
  root.append(svg("defs"));
  root.firstChild.append(marker);
  for (const g of graph.groups) {
    const ps = g.members.map((m) => pos.get(m)).filter(Boolean);
    if (!ps.length) continue;
    const x0 = Math.min(...ps.map((p) => p.x)) - 10, y0 = Math.min(...ps.map((p) => p.y)) - 20;
    const x1 = Math.max(...ps.map((p) => p.x)) + W + 10, y1 = Math.max(...ps.map((p) => p.y)) + H + 20;
    root.append(svg("rect", { class: "group", x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 8, "data-foreach": g.name }));
    root.append(svg("text", { class: "group-label", x: x0 + 6, y: y1 - 5 }, `for each item of ${g.name}`));
  }
  for (const e of graph.edges.filter((x) => !x.hidden)) {
    const a = pos.get(e.from), b = pos.get(e.to);
    const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y, my = (y1 + y2) / 2;
    root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 2}`, "marker-end": "url(#arrow)", "data-edge": `${e.from}->${e.to}` }));
    if (e.label) root.append(svg("text", { class: "edge-label", x: x2 + 6, y: y2 - 6 }, e.label));
  }
  for (const [name, n] of graph.nodes) {
    const p = pos.get(name);
    const g = svg("g", { class: "node", transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button", "data-step": name, "data-status": "Pending", "aria-label": `step ${name}` });
    g.append(svg("rect", { width: W, height: H, rx: 6 }));
    g.append(svg("text", { x: 10, y: 16 }, name.length > 22 ? name.slice(0, 21) + "…" : name));
    g.append(svg("text", { x: 10, y: 30, class: "sub", "font-size": 10, fill: "#5d6875" }, n.type));
    g.append(svg("title", {}, `${name} (${n.type})`));
    if (onSelect) {
      g.addEventListener("click", () => onSelect(name));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onSelect(name); } });
    }
    root.append(g);
  }
  return root;
}

export function colour(root, steps) {
  // Paint each node with its step's status (a ForEach body step may have one run per item: the worst wins).
  const order = ["Failed", "Stopping", "Stopped", "Interrupted", "Executing", "Starting", "Queued", "Pending", "Succeeded", "Skipped"];
  const byName = new Map();
  for (const s of steps) {
    const base = byName.has(s.name) || root.querySelector(`[data-step="${CSS.escape(s.name)}"]`) ? s.name : s.name.split(/[[/#]/)[0];
    const prev = byName.get(base);
    if (!prev || order.indexOf(s.status) < order.indexOf(prev.status)) byName.set(base, s);
  }
  for (const g of root.querySelectorAll(".node")) {
    const s = byName.get(g.dataset.step);
    g.dataset.status = s ? s.status : "Pending";
    g.dataset.cached = s && s.cache_hit ? "true" : "false";
    const sub = g.querySelector(".sub");
    if (sub && s) sub.textContent = `${s.status}${s.cache_hit ? " (cached)" : ""}`;
  }
}
