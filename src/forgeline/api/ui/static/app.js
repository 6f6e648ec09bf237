// The single-page app: hash routes (#/executions/ID ...), the session (who, which role), page lifecycles.
import { call, get } from "./api.js";
import { h, errorBox } from "./dom.js";
import { session } from "./session.js";
import * as login from "./pages/login.js";
import * as executions from "./pages/executions.js";
import * as execution from "./pages/execution.js";
import * as pipelines from "./pages/pipelines.js";
import * as registry from "./pages/registry.js";
import * as automation from "./pages/automation.js";
import * as compare from "./pages/compare.js";
import * as endpoints from "./pages/endpoints.js";


const ROUTES = [
  [/^login$/, (view) => login.render(view, refreshSession)],
  [/^executions$/, (view, m, q) => executions.render(view, q)],
  [/^executions\/([^/]+)$/, (view, m, q) => execution.render(view, m[1], q)],
  [/^compare$/, (view, m, q) => compare.render(view, q)],
  [/^pipelines$/, (view) => pipelines.renderList(view)],
  [/^pipelines\/([^/]+)$/, (view, m, q) => pipelines.renderPage(view, decodeURIComponent(m[1]), q)],
  [/^pipelines\/([^/]+)\/start$/, (view, m) => pipelines.renderStart(view, decodeURIComponent(m[1]))],
  [/^registry$/, (view) => registry.renderGroups(view)],
  [/^registry\/([^/]+)$/, (view, m, q) => registry.renderGroup(view, decodeURIComponent(m[1]), q)],
  [/^(schedules|triggers|alarms)$/, (view, m) => automation.render(view, m[1])],
  [/^endpoints$/, (view) => endpoints.render(view)],
];

let cleanup = null;
let generation = 0;

async function refreshSession() {
  try {
    Object.assign(session, await get("/session"));
  } catch { Object.assign(session, { name: null, role: null }); }
  const who = document.getElementById("who");
  who.replaceChildren();
  if (session.name) {
    who.append(h("span", { "data-role": session.role }, `${session.name} (${session.role})`));
    if (session.auth) who.append(h("button", { class: "secondary", type: "button", onclick: logout }, "Log out"));
  }
}

async function logout() {
  await call("/session", { method: "DELETE" });
  await refreshSession();
  location.hash = "#/login";
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const [path, query] = (location.hash.replace(/^#\/?/, "") || "executions").split("?");
  const q = new URLSearchParams(query || "");
  const view = document.getElementById("view");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", path.startsWith(a.getAttribute("href").slice(2)));
  }
  if (path !== "login" && !session.name) {
    await refreshSession();
    if (!session.name) { location.hash = "#/login"; return; }
  }
  const mine = ++generation, container = h("div", { class: "page", "data-page": path.split("/")[0], "data-route": query ? `${path}?${query}` : path });
  const found = ROUTES.map(([pattern, page]) => [path.match(pattern), page]).find(([m]) => m);
  let done = null;
  if (!found) container.append(h("p", { class: "error" }, `No page ${path}.`));
  else {
    try { done = (await found[1](container, found[0], q)) || null; } catch (err) { container.append(errorBox(err)); }
  }
  if (mine !== generation) { if (done) done(); return; }  // a later navigation won: drop this page
  cleanup = done;
  view.replaceChildren(container);
}

window.addEventListener("hashchange", route);
refreshSession().then(route);
