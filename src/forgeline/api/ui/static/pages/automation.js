// Schedules, triggers and alarms (next fire, last event, last delivery; pause/resume for admins).
import { get, post } from "../api.js";
import { h, when, table, show, enc } from "../dom.js";
import { can } from "../session.js";

const pipelineOf = (r) => r.pipeline ? `${r.pipeline.pipeline_name}${r.pipeline.pipeline_version ? " v" + r.pipeline.pipeline_version : ""}` : "—";
const execution = (id) => id ? h("a", { href: `#/executions/${enc(id)}` }, id) : "—";
const state = (r) => (r.paused ? "paused" : "active");

const COLUMNS = {
  schedules: [["Name", (r) => r.name], ["Pipeline", pipelineOf], ["Cron", (r) => `${r.cron} (${r.timezone})`],
    ["Next fire", (r) => when(r.next_fire_at)], ["Last fire", (r) => `${when(r.last_fire_at)}${r.last_outcome ? " · " + r.last_outcome : ""}`],
    ["Last execution", (r) => execution(r.last_execution_id)], ["State", state]],
  triggers: [["Name", (r) => r.name], ["Pipeline", pipelineOf], ["Watches", (r) => `${r.watch} ${r.pattern}`],
    ["Last event", (r) => when(r.last_event_at)], ["Files seen", (r) => r.objects_seen],
    ["Last execution", (r) => execution(r.last_execution_id)], ["State", state]],
  alarms: [["Name", (r) => r.name], ["On", (r) => r.events.join(", ")], ["To", (r) => r.targets.join(", ")],
    ["Scope", (r) => [r.pipeline_name && `pipeline ${r.pipeline_name}`, r.group_name && `group ${r.group_name}`, r.condition].filter(Boolean).join(", ") || "all"],
    ["Last delivery", (r) => r.lastDelivery ? `${r.lastDelivery.status} ${when(r.lastDelivery.delivered_at || r.lastDelivery.created_at)}` : "—"], ["State", state]],
};

export async function render(view, kind) {
  const rows = await get(`/${kind}`);
  const items = Array.isArray(rows) ? rows : rows.items || [];
  const deliveries = kind === "alarms" ? await get("/alarms/history", { limit: 200 }) : [];
  for (const r of items) r.lastDelivery = deliveries.find((d) => d.alarm_name === r.name);  // newest first
  const msg = h("p", { class: "error", role: "alert" });
  const toggle = (r) => h("button", { type: "button", class: "secondary", "data-action": r.paused ? "resume" : "pause", onclick: async () => {
    try { await post(`/${kind}/${enc(r.name)}/${r.paused ? "resume" : "pause"}`); location.hash = `#/${kind}?t=${Date.now()}`; }
    catch (err) { msg.textContent = err.message; }
  } }, r.paused ? "Resume" : "Pause");
  const columns = COLUMNS[kind], actions = can("admin");
  view.append(h("h1", {}, kind[0].toUpperCase() + kind.slice(1)), msg,
    table([...columns.map(([t]) => t), ...(actions ? [""] : [])], items.map((r) => h("tr", { "data-name": r.name, "data-state": state(r) },
      columns.map(([, f]) => { const v = f(r); return h("td", {}, v instanceof Node ? v : show(v)); }), actions ? h("td", {}, toggle(r)) : null)), { id: `${kind}-table` }));
  if (kind === "alarms") view.append(h("h2", {}, "Recent deliveries"), table(["When", "Alarm", "Event", "Target", "Status", "Attempts", "Error"],
    deliveries.slice(0, 30).map((d) => h("tr", {}, h("td", {}, when(d.delivered_at || d.created_at)), h("td", {}, d.alarm_name),
      h("td", {}, `${show(d.event_kind)} ${d.event_subject || ""}`), h("td", {}, d.target), h("td", {}, d.status), h("td", {}, d.attempts), h("td", { class: "error" }, d.last_error || "")))));
}
