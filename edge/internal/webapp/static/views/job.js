import { get, del, APIError } from "../api.js";
import { h, mount, notice } from "../dom.js";
import { clock } from "/ui/webui.js";
import { stages, terminal, explain } from "../words.js";
import { jobTitle } from "./jobs.js";
import { downloads } from "./parts.js";

// notFound is the same page for a job that does not exist and another
// person's: the API answers 404 for both.
export function notFound() {
  mount("Not found", h("h1", { id: "not-found" }, "Job not found"),
    h("p", {}, "There is no job at this address, or it is not yours."), h("p", {}, h("a", { href: "/jobs" }, "Go to my jobs")));
}

export async function loadJob(id) {
  try {
    return await get("/v1/jobs/" + encodeURIComponent(id));
  } catch (e) {
    if (e instanceof APIError && e.status === 404) return null;
    throw e;
  }
}

// job shows a job working: its stage and progress, and its transcript
// growing as the transcriber sends segments (the job's event stream), with
// a cancel button; a failure in plain words with what to do next.
export async function job([id]) {
  const j = await loadJob(id);
  if (!j) return notFound();
  const badge = h("span", { class: "badge", id: "status" });
  const stage = h("p", { id: "stage", "aria-live": "polite" });
  const bar = h("progress", { id: "progress", max: 1, value: 0, "aria-label": "Progress" });
  const list = h("ol", { id: "segments", class: "segments", "aria-live": "polite", "aria-relevant": "additions" });
  const outcome = h("div", { id: "outcome" });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel" }, "Cancel");
  const title = h("h1", {}, jobTitle(j));

  const show = (j) => {
    title.textContent = jobTitle(j);
    badge.className = "badge state-" + j.status;
    badge.textContent = stages[j.status] || j.status;
    stage.textContent = j.status === "transcribing" ? `Transcribing: ${Math.round((j.progress || 0) * 100)} %` : stages[j.status] || j.status;
    bar.value = j.status === "succeeded" ? 1 : j.progress || 0;
    bar.hidden = terminal(j.status);
    cancel.hidden = terminal(j.status);
    if (j.status === "failed") {
      const [what, todo] = explain(j.error && j.error.code, j.error && j.error.message);
      outcome.replaceChildren(notice("error", h("strong", {}, what), " ", todo,
        j.error && j.error.code ? h("span", { class: "muted" }, ` (code: ${j.error.code})`) : null),
        h("p", {}, h("a", { class: "button", href: "/new" }, "Try again")));
    } else if (j.status === "cancelled") {
      outcome.replaceChildren(notice("info", "This job was cancelled."), h("p", {}, h("a", { class: "button", href: "/new" }, "Start again")));
    } else if (j.status === "succeeded") {
      outcome.replaceChildren(notice("ok", "Your captions are ready."),
        h("p", {}, h("a", { class: "button primary", id: "open-editor", href: `/jobs/${encodeURIComponent(j.id)}/edit` }, "Open the editor")),
        downloads(`/v1/jobs/${encodeURIComponent(j.id)}/transcript`, ""));
    }
  };
  cancel.addEventListener("click", async () => {
    if (!window.confirm("Cancel this job? The work done so far is lost.")) return;
    try {
      show(await del("/v1/jobs/" + encodeURIComponent(id)));
    } catch (e) {
      outcome.replaceChildren(notice("error", e.message));
    }
  });

  mount(jobTitle(j), title,
    h("div", { class: "card" }, h("p", { class: "row" }, badge, h("span", { class: "muted" }, j.url || "")), stage, bar, cancel),
    outcome,
    h("h2", {}, "Transcript"), list);
  show(j);

  // The event stream: "job" events carry status and progress, "segment"
  // events the transcript as it is written. It ends with the job; the
  // browser would reconnect by itself, so it is closed then.
  const es = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
  es.addEventListener("segment", (e) => {
    const s = JSON.parse(e.data);
    list.append(h("li", { dataset: { seq: s.seq } }, h("span", { class: "muted" }, clock(s.start_ms / 1000) + " "), s.text));
  });
  es.addEventListener("job", (e) => {
    const nj = JSON.parse(e.data);
    show(nj);
    if (terminal(nj.status)) es.close();
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) stage.textContent += " (live updates stopped: reload the page)";
  };
  return () => es.close();
}
