// Executions list: filters (pipeline, status, since), pages by cursor, compare a selection.
import { get } from "../api.js";
import { h, badge, when, duration, table, enc } from "../dom.js";

const STATUSES = ["Queued", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"];

export async function render(view, q) {
  const pipeline = q.get("pipeline") || "", status = q.get("status") || "", since = q.get("since") || "";
  const cursor = q.get("cursor") || "", limit = Number(q.get("limit") || 50);
  const pipelines = await get("/pipelines");
  const filters = h("form", { class: "row", "aria-label": "Filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target), p = new URLSearchParams();
    for (const [k, v] of f) if (v) p.set(k, v);
    location.hash = `#/executions?${p}`;
  } },
  h("label", {}, "Pipeline ", h("select", { name: "pipeline" }, h("option", { value: "" }, "any"),
    pipelines.map((p) => h("option", { value: p.name, selected: p.name === pipeline }, p.name)))),
  h("label", {}, "Status ", h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)))),
  h("label", {}, "Since ", h("input", { type: "date", name: "since", value: since })),
  h("button", { type: "submit" }, "Filter"));
  const page = await get("/executions", { pipeline, status, since: since ? `${since}T00:00:00` : "", cursor, limit });
  const rows = page.items.map((e) => h("tr", { "data-execution": e.id },
    h("td", {}, h("input", { type: "checkbox", name: "pick", value: e.id, "aria-label": `select ${e.id}` })),
    h("td", {}, h("a", { href: `#/executions/${enc(e.id)}` }, e.id)),
    h("td", {}, h("a", { href: `#/pipelines/${enc(e.pipeline_name)}` }, e.pipeline_name), ` v${e.pipeline_version}`),
    h("td", {}, badge(e.status), e.orchestrator_lost ? h("span", { class: "muted" }, ` orchestrator lost ${e.orchestrator_lost}`) : null),
    h("td", {}, when(e.created_at)), h("td", {}, duration(e.started_at, e.ended_at)),
    h("td", {}, e.started_by ? `${e.started_by.kind}${e.started_by.name ? ": " + e.started_by.name : ""}` : "—")));
  const next = new URLSearchParams(q); next.set("cursor", page.next_cursor || "");
  const compare = h("button", { type: "button", class: "secondary", onclick: () => {
    const ids = [...view.querySelectorAll("input[name=pick]:checked")].map((c) => c.value);
    if (ids.length >= 2) location.hash = `#/compare?ids=${ids.map(enc).join(",")}`;
  } }, "Compare selected");
  view.append(h("h1", {}, "Executions"), filters,
    table(["", "Execution", "Pipeline", "Status", "Created", "Duration", "Started by"], rows, { id: "executions" }),
    h("div", { class: "pager" }, compare,
      cursor ? h("a", { href: "#/executions?" + new URLSearchParams([...q].filter(([k]) => k !== "cursor")) }, "First page") : null,
      page.next_cursor ? h("a", { href: `#/executions?${next}`, rel: "next" }, "Next page") : h("span", { class: "muted" }, "Last page")));
}
