import { get, post, del, missingRoute } from "../api.js";
import { h, notice } from "../dom.js";
import { ago } from "/ui/webui.js";

const lifetimes = [[86400, "1 day"], [7 * 86400, "7 days"], [30 * 86400, "30 days"], [90 * 86400, "90 days"]];

// shares: read-only links to a job's captions that need no key — made,
// copied and revoked here. Hidden where the server has no share links.
export async function shares(base) {
  let list;
  try {
    list = (await get(base + "/shares")).shares || [];
  } catch (e) {
    if (missingRoute(e)) return null;
    return h("section", { class: "card" }, h("h2", {}, "Share"), notice("error", e.message));
  }
  const msg = h("div", { id: "share-msg" });
  const ul = h("ul", { id: "shares", class: "shares" });
  const expires = h("select", { id: "share-expires" }, lifetimes.map(([s, t]) => h("option", { value: s, selected: s === 7 * 86400 }, t)));
  const make = h("button", { type: "button", id: "share-create" }, "Create a share link");

  const draw = () => {
    const live = list.filter((s) => !s.revoked_at && new Date(s.expires_at) > new Date());
    ul.replaceChildren(...live.map((s) => h("li", { dataset: { share: s.id } },
      `Link made ${ago(s.created_at)}, ${s.revision === null || s.revision === undefined ? "shows the latest revision" : "shows revision " + s.revision}, expires ${new Date(s.expires_at).toISOString().slice(0, 10)} `,
      h("button", { type: "button", class: "danger revoke", "aria-label": `Revoke the link made ${ago(s.created_at)}`, onclick: () => revoke(s) }, "Revoke"))));
    if (!live.length) ul.append(h("li", { class: "muted" }, "No live share links."));
  };
  const revoke = async (s) => {
    if (!window.confirm("Revoke this link? Anyone who has it will no longer see the captions.")) return;
    try {
      await del(`${base}/shares/${encodeURIComponent(s.id)}`);
      s.revoked_at = new Date().toISOString();
      msg.replaceChildren(notice("ok", "Revoked: the link no longer works."));
      draw();
    } catch (e) {
      msg.replaceChildren(notice("error", e.message));
    }
  };
  make.addEventListener("click", async () => {
    try {
      const s = await post(base + "/shares", { expires_in_seconds: Number(expires.value) });
      const url = new URL(s.url, location.origin).href;
      const field = h("input", { id: "share-url", readonly: true, value: url, "aria-label": "Share link" });
      const copy = h("button", { type: "button", id: "share-copy" }, "Copy");
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(url);
          copy.textContent = "Copied";
        } catch {
          field.select(); // the clipboard needs a secure context: let the person copy it
          copy.textContent = "Press Ctrl+C to copy";
        }
      });
      msg.replaceChildren(notice("ok", "Anyone with this link can watch and download the captions, no key needed:"), h("div", { class: "row" }, field, copy));
      list.unshift({ id: s.id, expires_at: s.expires_at, created_at: new Date().toISOString(), revision: s.revision });
      draw();
    } catch (e) {
      msg.replaceChildren(notice("error", e.message));
    }
  });
  draw();
  return h("section", { class: "card", id: "share" }, h("h2", {}, "Share"),
    h("div", { class: "row" }, h("label", { for: "share-expires" }, "Link works for "), expires, make), msg, ul);
}
