// The app's only way to the server: the public REST API, with the session
// cookie (sent by the browser, never visible here) and, on unsafe methods,
// the session's CSRF token.

let csrf = "";
export function setCSRF(token) { csrf = token || ""; }
export function hasSession() { return csrf !== ""; }
export function csrfToken() { return csrf; }

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// onSignedOut is called when the API says the session has ended.
let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

export async function request(method, path, { body, headers = {}, raw = false } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (!["GET", "HEAD"].includes(method)) h["X-CSRF-Token"] = csrf;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new APIError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  if (raw && r.ok) return r;
  if (r.status === 204) return null;
  const type = r.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    const e = (data && data.error) || {};
    const err = new APIError(r.status, e.code || "http_" + r.status, e.message || r.statusText);
    if (r.status === 401 && path.startsWith("/v1/") && !path.startsWith("/v1/shared/")) onSignedOut(err);
    throw err;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, { body });
export const put = (path, body) => request("PUT", path, { body });
export const del = (path) => request("DELETE", path);

// missingRoute is true for the 404 of a route this server does not have
// (a feature not deployed yet), as opposed to a thing not found.
export function missingRoute(err) {
  return err instanceof APIError && err.status === 404 && /^no such route/.test(err.message);
}

export const formats = ["srt", "vtt", "txt", "json", "tsv", "ass", "ttml", "sbv"];
