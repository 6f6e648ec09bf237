// Log in with an API token: the server checks it and keeps it in an HttpOnly cookie.
import { call } from "../api.js";
import { h } from "../dom.js";

export function render(view, refreshSession) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "login-error" });
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const form = h("form", { class: "card login", onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await call("/session", { method: "POST", body: { token: input.value } });
      await refreshSession();
      location.hash = "#/executions";
    } catch (err) { error.textContent = err.message; }
  } },
  h("h1", {}, "Log in"),
  h("p", { class: "muted" }, "Paste a token made with ", h("code", {}, "forgeline tokens create NAME --role ROLE"), "."),
  h("label", { for: "token" }, "Token"), input, error,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "login-submit" }, "Log in")));
  view.append(form);
  requestAnimationFrame(() => input.focus());
}
