// The web app's entry: it asks the server whether this browser is signed in,
// then draws the view the address names, and keeps following links inside
// the app without reloading (history API), so the back button works.

import { get, request, setCSRF, hasSession, whenSignedOut } from "./api.js";
import { mount, h, notice } from "./dom.js";
import { signIn } from "./views/signin.js";
import { newCaptions } from "./views/new.js";
import { jobs } from "./views/jobs.js";
import { job } from "./views/job.js";
import { editor } from "./views/editor.js";
import { shared } from "./views/shared.js";

// Each view is a function (params, ctx) that renders into main and may
// return a cleanup (closing event streams, pausing audio).
const routes = [
  [/^\/s\/([A-Za-z0-9_-]{1,128})$/, shared, { public: true }],
  [/^\/signin$/, signIn, { public: true }],
  [/^\/$/, newCaptions],
  [/^\/new$/, newCaptions],
  [/^\/jobs$/, jobs],
  [/^\/jobs\/([^/]{1,100})$/, job],
  [/^\/jobs\/([^/]{1,100})\/edit$/, editor],
];

let cleanup = null;

export function go(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

// safeNext keeps a post-sign-in destination inside this app: a path on this
// origin, never the API, never another site ("//host", "/\host").
export function safeNext(next) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return "/";
  try {
    const u = new URL(next, location.origin);
    if (u.origin !== location.origin || u.pathname.startsWith("/v1/") || u.pathname === "/signin") return "/";
    return u.pathname + u.search;
  } catch {
    return "/";
  }
}

function signInFirst() {
  go("/signin?next=" + encodeURIComponent(location.pathname + location.search), { replace: true });
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* the old view is gone anyway */ } cleanup = null; }
  const path = location.pathname;
  for (const [re, view, opts] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const pub = opts && opts.public;
    chrome(!pub || hasSession());
    if (!pub && !hasSession()) return signInFirst();
    try {
      cleanup = (await view(m.slice(1).map(decodeURIComponent), { go, safeNext })) || null;
    } catch (e) {
      if (e.status === 401) return;
      mount("Error", h("h1", {}, "Something went wrong"), notice("error", e.message));
    }
    return;
  }
  chrome(hasSession());
  mount("Not found", h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/jobs" }, "Go to my jobs")));
}

// chrome shows the navigation and the sign-out button to signed-in people.
function chrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  for (const a of document.querySelectorAll("#nav a")) {
    const here = location.pathname === a.getAttribute("href") || (a.getAttribute("href") === "/new" && location.pathname === "/");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function start() {
  try {
    const s = await get("/app-session");
    setCSRF(s.signed_in ? s.csrf : "");
  } catch {
    setCSRF("");
  }
  whenSignedOut(() => { setCSRF(""); signInFirst(); });
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[href]");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.hasAttribute("download") || a.target || a.origin !== location.origin) return;
    if (a.pathname.startsWith("/v1/") || a.pathname.startsWith("/app/") || a.pathname.startsWith("/ui/")) return;
    e.preventDefault();
    go(a.pathname + a.search);
  });
  window.addEventListener("popstate", render);
  document.getElementById("signout").addEventListener("click", async () => {
    try { await request("DELETE", "/app-session"); } catch { /* signed out either way */ }
    setCSRF("");
    go("/signin", { replace: true });
  });
  render();
}

start();
