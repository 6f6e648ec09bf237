// The one way the pages reach the server: the public REST API under /api/v1 (cookie session, CSRF header).
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

export async function call(path, { method = "GET", body, params, raw = false, headers = {} } = {}) {
  const url = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
  }
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") init.headers["X-Forgeline-CSRF"] = "1";
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(url, init);
  if (raw && response.ok) return response;
  const text = await response.text();
  const data = text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : null;
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/session")) location.hash = "#/login";
    throw new ApiError(response.status, (data && data.error) || (data && data.detail && JSON.stringify(data.detail)) || response.statusText, data);
  }
  return data;
}

export const get = (path, params) => call(path, { params });
export const post = (path, body) => call(path, { method: "POST", body: body ?? {} });

export function stream(path, handlers) {
  // Server-Sent Events from the API (the session cookie goes along); returns a function that closes it.
  const source = new EventSource(API + path);
  for (const [event, handler] of Object.entries(handlers)) source.addEventListener(event, handler);
  return () => source.close();
}
