// Two or more executions side by side: parameters (differences marked), step durations, final metric values.
import { get } from "../api.js";
import { h, badge, duration, seconds, table, show, enc } from "../dom.js";

export async function render(view, q) {
  const ids = (q.get("ids") || "").split(",").filter(Boolean);
  if (ids.length < 2) { view.append(h("p", {}, "Pick two or more executions on the executions page to compare them.")); return; }
  const runs = await Promise.all(ids.map((id) => get(`/executions/${enc(id)}`)));
  const metrics = await Promise.all(ids.map((id) => get(`/executions/${enc(id)}/metrics`)));
  const head = () => ["", ...runs.map((r) => h("a", { href: `#/executions/${enc(r.id)}` }, r.id))];
  const row = (label, values) => {
    const same = values.every((v) => show(v) === show(values[0]));
    return h("tr", { class: same ? "" : "changed" }, h("th", { scope: "row" }, label), values.map((v) => h("td", {}, v instanceof Node ? v : show(v))));
  };
  const paramNames = [...new Set(runs.flatMap((r) => Object.keys(r.parameters)))];
  const stepNames = [...new Set(runs.flatMap((r) => r.steps.map((s) => s.name)))];
  const last = (points) => { const out = {}; for (const p of points) out[`${p.step_name}.${p.name}`] = p.value; return out; };
  const finals = metrics.map(last), metricNames = [...new Set(finals.flatMap(Object.keys))];
  view.append(h("h1", {}, `Compare ${runs.length} executions`),
    h("h2", {}, "Overview"), table(head(), [row("Pipeline", runs.map((r) => `${r.pipeline_name} v${r.pipeline_version}`)),
      h("tr", {}, h("th", { scope: "row" }, "Status"), runs.map((r) => h("td", {}, badge(r.status)))),
      row("Duration", runs.map((r) => duration(r.started_at, r.ended_at)))], { id: "compare-overview" }),
    h("h2", {}, "Parameters"), table(head(), paramNames.map((n) => row(n, runs.map((r) => r.parameters[n]))), { id: "compare-parameters" }),
    h("h2", {}, "Step durations (s)"), table(head(), stepNames.map((n) => row(n, runs.map((r) => {
      const s = r.steps.find((x) => x.name === n);
      return s ? (s.cache_hit ? "cached" : show(seconds(s.started_at, s.ended_at)?.toFixed(1))) : "—";
    })))),
    h("h2", {}, "Metrics (last value)"), table(head(), metricNames.map((n) => row(n, finals.map((f) => f[n])))));
}
