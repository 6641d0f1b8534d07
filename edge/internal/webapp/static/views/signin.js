import { request, setCSRF, hasSession } from "../api.js";
import { h, mount, notice } from "../dom.js";

// signIn posts the API key once; the server keeps it and gives this browser
// a cookie that scripts cannot read.
export async function signIn(_, { go, safeNext }) {
  const next = safeNext(new URLSearchParams(location.search).get("next"));
  if (hasSession()) return go(next, { replace: true });
  const msg = h("div", { id: "signin-msg" });
  const key = h("input", { id: "key", name: "key", type: "password", autocomplete: "current-password", required: true, spellcheck: "false" });
  const button = h("button", { class: "primary", type: "submit" }, "Sign in");
  const form = h("form", { id: "signin", class: "card narrow" },
    h("label", { class: "field", for: "key" }, h("span", {}, "API key"), key,
      h("span", { class: "hint" }, "The key your administrator gave you. It stays on the server; this browser keeps only a session.")),
    button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    msg.replaceChildren();
    try {
      const s = await request("POST", "/app-session", { body: { key: key.value } });
      setCSRF(s.csrf);
      go(next, { replace: true });
    } catch (err) {
      const text = err.code === "rate_limited" ? "Too many wrong keys from your address. " + err.message
        : err.status === 401 ? "That API key is not valid. Check you copied all of it." : err.message;
      msg.replaceChildren(notice("error", text));
      key.focus();
    } finally {
      button.disabled = false;
    }
  });
  mount("Sign in", h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Paste a link or drop a file, watch it transcribe, fix the captions and download them."),
    msg, form);
  key.focus();
}
