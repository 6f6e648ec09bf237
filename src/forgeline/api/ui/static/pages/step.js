// The step panel: status and attempts, outputs with their URIs, properties, the log (paged tail, followed
// live), metric series as line charts, and lineage links (the execution a cache hit came from).
import { get } from "../api.js";
import { h, badge, duration, kv, show, table, enc } from "../dom.js";
import { logViewer } from "../log.js";
import { lineChart } from "../chart.js";

const RUNNING = ["Pending", "Starting", "Queued", "Executing", "Stopping"];

export async function stepPanel(record, step) {
  const base = `/executions/${enc(record.id)}/steps/${enc(step.name)}`;
  const attempts = record.attempts.filter((a) => a.step_name === step.name);
  const outputs = Object.entries(step.outputs || {});
  const parts = [
    h("h3", {}, step.name, " ", badge(step.status)),
    kv({ Kind: step.kind, Duration: duration(step.started_at, step.ended_at), Attempts: step.attempts,
      ...(step.failure_reason ? { Failure: h("span", { class: "error" }, step.failure_reason) } : {}),
      Lineage: step.cache_hit
        ? h("span", {}, "cache hit: ran in ", h("a", { href: `#/executions/${enc(step.cache_source)}?step=${enc(step.name)}`, "data-lineage": "cache-source" }, step.cache_source))
        : h("span", {}, "ran in this execution", record.parent_execution_id ? [" (retry of ", h("a", { href: `#/executions/${enc(record.parent_execution_id)}?step=${enc(step.name)}` }, record.parent_execution_id), ")"] : "") }),
  ];
  if (attempts.length) parts.push(h("h4", {}, "Attempts"), table(["#", "Status", "Duration", "Failure"], attempts.map((a) =>
    h("tr", {}, h("td", {}, a.attempt), h("td", {}, badge(a.status)), h("td", {}, duration(a.started_at, a.ended_at)),
      h("td", { class: "error" }, [a.failure_kind, a.failure_reason].filter(Boolean).join(": "))))));
  if (outputs.length) parts.push(h("h4", {}, "Outputs"), table(["Name", "URI"], outputs.map(([k, v]) =>
    h("tr", {}, h("td", {}, k), h("td", {}, h("code", { "data-output": k }, show(v)))))));
  if (step.properties && Object.keys(step.properties).length) parts.push(h("h4", {}, "Properties"),
    h("pre", { class: "diff", id: "properties" }, JSON.stringify(step.properties, null, 2)));
  const metrics = await get(`/executions/${enc(record.id)}/metrics`, { step: step.name });
  if (metrics.length) {
    const series = {};
    for (const p of metrics) (series[p.name] ||= []).push([series[p.name]?.length || 0, p.value]);
    parts.push(h("h4", {}, "Metrics"), h("div", { id: "metrics-chart" }, lineChart(series)));
  }
  let log = null;
  if (attempts.some((a) => a.log_path) || RUNNING.includes(step.status)) {
    try {
      log = await logViewer(`${base}/logs`, RUNNING.includes(step.status));
      parts.push(h("h4", {}, "Log"), log.element);
    } catch (err) { parts.push(h("h4", {}, "Log"), h("p", { class: "muted" }, err.message)); }
  }
  return { element: h("div", { class: "card", "data-panel": step.name }, parts), close: () => log && log.close() };
}
