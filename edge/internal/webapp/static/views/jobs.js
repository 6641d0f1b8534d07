import { get, del, missingRoute } from "../api.js";
import { h, mount, notice } from "../dom.js";
import { ago, clock } from "/ui/webui.js";
import { stages, terminal } from "../words.js";

const states = ["queued", "fetching", "fetched", "transcribing", "succeeded", "failed", "cancelled"];

export const jobTitle = (j) => (j.media && j.media.title) || j.url || j.id;

// jobs lists the person's jobs, newest first, with a search box and a state
// filter over what is loaded (more pages load on demand), and their batches.
export async function jobs(_, { go }) {
  const msg = h("div", { id: "jobs-msg" });
  const search = h("input", { id: "search", type: "search", placeholder: "title, link or id" });
  const state = h("select", { id: "state" }, h("option", { value: "" }, "All states"), states.map((s) => h("option", { value: s }, stages[s])));
  const body = h("tbody");
  const more = h("button", { type: "button", id: "more", hidden: true }, "Load older jobs");
  const count = h("p", { class: "muted", id: "count", "aria-live": "polite" });
  let all = [], cursor = "";

  const draw = () => {
    const q = search.value.trim().toLowerCase(), st = state.value;
    const shown = all.filter((j) => (!st || j.status === st) && (!q || [jobTitle(j), j.url, j.id].some((v) => (v || "").toLowerCase().includes(q))));
    body.replaceChildren(...shown.map(row));
    count.textContent = `${shown.length} of ${all.length} loaded jobs shown`;
  };
  const row = (j) => h("tr", { dataset: { job: j.id, status: j.status } },
    h("td", {}, h("a", { href: "/jobs/" + encodeURIComponent(j.id) }, jobTitle(j))),
    h("td", {}, h("span", { class: "badge state-" + j.status }, stages[j.status] || j.status)),
    h("td", {}, j.media && j.media.duration_seconds ? clock(j.media.duration_seconds) : "–"),
    h("td", {}, h("time", { datetime: j.created_at, title: j.created_at }, ago(j.created_at))),
    h("td", { class: "actions" }, terminal(j.status)
      ? h("button", { type: "button", class: "danger", "aria-label": "Delete " + jobTitle(j), onclick: () => remove(j, true) }, "Delete")
      : h("button", { type: "button", "aria-label": "Cancel " + jobTitle(j), onclick: () => remove(j, false) }, "Cancel")));
  const remove = async (j, purge) => {
    const what = purge ? `Delete “${jobTitle(j)}” and its captions for good? This cannot be undone.` : `Cancel “${jobTitle(j)}”?`;
    if (!window.confirm(what)) return;
    try {
      if (purge) {
        await del("/v1/jobs/" + encodeURIComponent(j.id) + "?purge=true");
        all = all.filter((x) => x.id !== j.id);
      } else {
        const nj = await del("/v1/jobs/" + encodeURIComponent(j.id));
        all = all.map((x) => (x.id === j.id ? nj : x));
      }
      msg.replaceChildren(notice("ok", purge ? "Deleted." : "Cancelled."));
      draw();
    } catch (e) {
      msg.replaceChildren(notice("error", e.message));
    }
  };
  const load = async () => {
    const page = await get("/v1/jobs?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    all = all.concat(page.jobs);
    cursor = page.next_cursor || "";
    more.hidden = !cursor;
    draw();
  };
  search.addEventListener("input", draw);
  state.addEventListener("change", draw);
  more.addEventListener("click", () => load().catch((e) => msg.replaceChildren(notice("error", e.message))));

  const batches = h("section", { id: "batches", hidden: true });
  mount("My jobs", h("h1", {}, "My jobs"), msg,
    h("div", { class: "row filters", role: "search" },
      h("label", { for: "search" }, "Search "), search,
      h("label", { for: "state" }, "State "), state,
      h("a", { class: "button primary", href: "/new" }, "New captions")),
    count,
    h("div", { class: "table-wrap" }, h("table", { id: "jobs" },
      h("caption", { class: "visually-hidden" }, "Your jobs, newest first"),
      h("thead", {}, h("tr", {}, ["Title", "State", "Length", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t)))), body)),
    more, batches);
  await load();
  if (!all.length) msg.replaceChildren(notice("info", "No jobs yet. ", h("a", { href: "/new" }, "Make your first captions"), "."));

  // Batches, where this server has them.
  try {
    const b = await get("/v1/batches?limit=20");
    const list = b.batches || [];
    if (list.length) {
      batches.hidden = false;
      batches.replaceChildren(h("h2", {}, "Batches"), h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Batch", "Jobs", "Created", "Captions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, list.map((x) => h("tr", {},
          h("td", {}, x.url || x.id),
          h("td", {}, batchCounts(x)),
          h("td", {}, x.created_at ? ago(x.created_at) : "–"),
          h("td", {}, h("a", { href: `/v1/batches/${encodeURIComponent(x.id)}/captions.zip`, download: "" }, "Download all (zip)"))))))));
    }
  } catch (e) {
    if (!missingRoute(e) && e.status !== 404) batches.replaceChildren(notice("error", "Batches: " + e.message));
  }
  void go;
}

function batchCounts(b) {
  const c = b.counts || {};
  return `${c.succeeded || 0} of ${c.total || 0} done` + (c.failed ? `, ${c.failed} failed` : "") + (c.queued || c.running ? `, ${(c.queued || 0) + (c.running || 0)} to go` : "");
}
