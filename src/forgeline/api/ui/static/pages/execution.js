// An execution's live page: the DAG coloured by step status (updated over SSE, no reload), steps with durations,
// cache sources, attempts and failures, parameters, stop/retry/resume for operators, and the step panel.
import { get, post, stream, ApiError } from "../api.js";
import { h, badge, when, duration, table, kv, errorBox, enc } from "../dom.js";
import { drawDag, colour } from "../dag.js";
import { can } from "../session.js";
import { stepPanel } from "./step.js";

export async function render(view, id, q) {
  let record = await get(`/executions/${enc(id)}`);
  const version = await get(`/pipelines/${enc(record.pipeline_name)}/versions/${record.pipeline_version}`);
  const header = h("div", { class: "card" }), steps = h("section", {}), panel = h("section", { id: "step-panel" });
  let closePanel = () => {};
  const select = async (name) => {
    open = name;
    closePanel();
    panel.replaceChildren(h("p", { class: "muted" }, `Loading ${name}…`));
    const step = record.steps.find((s) => s.name === name);
    if (!step) { panel.replaceChildren(h("p", { class: "muted" }, `${name} has not run in this execution.`)); closePanel = () => {}; return; }
    try {
      const built = await stepPanel(record, step);
      panel.replaceChildren(built.element);
      closePanel = built.close;
      panel.scrollIntoView({ block: "nearest" });
    } catch (err) { panel.replaceChildren(errorBox(err)); }
  };
  const dag = drawDag(version.definition, select);
  const message = h("p", { class: "error", role: "alert" });

  function action(label, verb) {
    return h("button", { type: "button", "data-action": verb, onclick: async (ev) => {
      ev.target.disabled = true; message.textContent = "";
      try { await post(`/executions/${enc(record.id)}/${verb}`); await refresh(); listen(); }
      catch (err) { message.textContent = err.message; ev.target.disabled = false; }
    } }, label);
  }

  function paint() {
    const finished = ["Stopped", "Failed", "Succeeded"].includes(record.status);
    const buttons = can("operator") ? [
      !finished ? action("Stop", "stop") : null,
      finished && record.status !== "Succeeded" ? action("Retry", "retry") : null,
      record.orchestrator_lost ? action("Resume", "resume") : null] : [];
    header.replaceChildren(
      h("h1", {}, "Execution ", h("span", { id: "execution-id" }, record.id), " ", h("span", { id: "execution-status" }, badge(record.status))),
      kv({ Pipeline: h("a", { href: `#/pipelines/${enc(record.pipeline_name)}` }, `${record.pipeline_name} v${record.pipeline_version}`),
        Created: when(record.created_at), Duration: duration(record.started_at, record.ended_at),
        "Started by": record.started_by ? `${record.started_by.kind} ${record.started_by.name || ""}` : "—",
        Parameters: h("code", { id: "parameters" }, JSON.stringify(record.parameters)),
        ...(record.failure_reason ? { "Failure": h("span", { class: "error" }, record.failure_reason) } : {}),
        ...(record.orchestrator_lost ? { "Orchestrator": `lost ${record.orchestrator_lost}` } : {}),
        ...(record.parent_execution_id ? { "Retry of": h("a", { href: `#/executions/${enc(record.parent_execution_id)}` }, record.parent_execution_id) } : {}) }),
      h("div", { class: "actions" }, buttons), message);
    colour(dag, record.steps);
    const attempts = (name) => record.attempts.filter((a) => a.step_name === name);
    steps.replaceChildren(h("h2", {}, "Steps"), table(["Step", "Status", "Duration", "Attempts", "Cache", "Failure"],
      record.steps.map((s) => h("tr", { "data-step-row": s.name },
        h("td", {}, h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); select(s.name); } }, s.name)),
        h("td", {}, badge(s.status)), h("td", {}, duration(s.started_at, s.ended_at)),
        h("td", {}, attempts(s.name).map((a) => h("div", {}, `#${a.attempt} ${a.status}${a.failure_reason ? ": " + a.failure_reason : ""}`))),
        h("td", {}, s.cache_hit ? h("span", {}, "hit from ", h("a", { href: `#/executions/${enc(s.cache_source)}` }, s.cache_source)) : "—"),
        h("td", { class: "error" }, s.failure_reason || "")))));
  }

  let pending = null;
  let open = null;  // the step shown in the panel: rebuilt when its status changes
  const statusOf = (name) => (record.steps.find((s) => s.name === name) || {}).status;
  async function refresh() {
    const before = open && statusOf(open);
    record = await get(`/executions/${enc(id)}`);
    paint();
    if (open && statusOf(open) !== before) select(open);
  }
  const scheduleRefresh = () => { pending ||= setTimeout(async () => { pending = null; try { await refresh(); } catch (err) { if (!(err instanceof ApiError)) throw err; } }, 150); };
  let close = () => {};
  function listen() {
    close();
    close = stream(`/executions/${enc(id)}/events/stream`, { step: scheduleRefresh, end: () => { close(); scheduleRefresh(); } });
  }
  paint();
  view.append(header, h("div", { class: "grid" },
    h("section", {}, h("h2", {}, "Graph"), h("div", { class: "dag", id: "dag" }, dag), steps),
    h("section", {}, h("h2", {}, "Step"), panel)));
  if (!["Stopped", "Failed", "Succeeded"].includes(record.status)) listen();
  if (q.get("step")) select(q.get("step"));
  else panel.replaceChildren(h("p", { class: "muted" }, "Select a step in the graph or the table."));
  return () => { close(); closePanel(); clearTimeout(pending); };
}
