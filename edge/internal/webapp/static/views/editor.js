import { get, put, missingRoute, APIError } from "../api.js";
import { h, mount, notice } from "../dom.js";
import { ago } from "/ui/webui.js";
import * as C from "../cues.js";
import { loadJob, notFound } from "./job.js";
import { jobTitle } from "./jobs.js";
import { downloads } from "./parts.js";
import { shares } from "./share.js";

const enc = encodeURIComponent;

// editor: the stored audio with the captions shown as they play; each cue's
// text and times editable (click a time to jump there; the arrow keys nudge
// times), split and merge, speakers renamed. Saving makes a new revision on
// the server; revision 0, the machine's, is always there to go back to.
export async function editor([id]) {
  const j = await loadJob(id);
  if (!j) return notFound();
  const base = `/v1/jobs/${enc(id)}`;
  const msg = h("div", { id: "editor-msg" });
  if (j.status !== "succeeded") {
    mount("Editor", h("h1", {}, jobTitle(j)), notice("info", "The captions can be edited once the job has finished. ",
      h("a", { href: base.replace("/v1", "") }, "Watch it work")));
    return;
  }

  // Revisions, where this server keeps them.
  let revisions = null;
  try {
    revisions = (await get(base + "/revisions")).revisions;
  } catch (e) {
    if (!missingRoute(e)) throw e;
  }
  const latest = () => (revisions && revisions.length ? Math.max(...revisions.map((r) => r.revision)) : 0);
  const state = { rev: latest(), base: latest(), cues: [], names: { ...(j.speaker_names || {}) }, dirty: false };

  const picker = h("select", { id: "revision" });
  const drawPicker = () => {
    picker.replaceChildren(...(revisions || []).slice().sort((a, b) => b.revision - a.revision).map((r) =>
      h("option", { value: r.revision, selected: r.revision === state.rev },
        r.revision === 0 ? "Revision 0 — the original" : `Revision ${r.revision} — saved ${ago(r.created_at)}`)));
  };
  const save = h("button", { type: "button", class: "primary", id: "save" }, "Save");
  const audio = h("audio", { id: "player", controls: true, preload: "metadata", src: base + "/audio", "aria-label": "Audio" });
  const now = h("p", { id: "now", class: "now-caption", "aria-live": "off" }, " ");
  const list = h("ol", { id: "cues", class: "cues" });
  const speakers = h("fieldset", { id: "speakers", hidden: true });
  const dl = h("div", { id: "dl" });
  const player = h("section", { class: "card player" }, audio, now);

  audio.addEventListener("error", () => {
    player.replaceChildren(notice("info", "The audio of this job cannot be played here (it may no longer be kept); the captions can still be edited."));
  });
  audio.addEventListener("timeupdate", () => {
    const i = C.at(state.cues, audio.currentTime);
    now.textContent = i >= 0 ? state.cues[i].text : " ";
    for (const li of list.querySelectorAll("li.playing")) li.classList.remove("playing");
    if (i >= 0 && list.children[i]) list.children[i].classList.add("playing");
  });

  const load = async (rev) => {
    const q = revisions ? `&revision=${rev}` : "";
    const t = await get(`${base}/transcript?format=json${q}`);
    state.rev = rev;
    state.cues = (t.segments || []).map((s) => ({ start: s.start, end: s.end, text: s.text.trim(), speaker: s.speaker || "" }));
    state.dirty = false;
    drawPicker();
    drawCues();
    drawSpeakers();
    dl.replaceChildren(downloads(base + "/transcript", revisions ? `&revision=${rev}` : ""));
  };

  const drawSpeakers = () => {
    const labels = [...new Set(state.cues.map((c) => c.speaker).filter(Boolean))].sort();
    speakers.hidden = !labels.length;
    speakers.replaceChildren(h("legend", {}, "Speakers"), ...labels.map((l, i) => h("label", { class: "field", for: "speaker-" + i },
      h("span", {}, `Name for ${l}`),
      h("input", { id: "speaker-" + i, value: state.names[l] || "", placeholder: l,
        oninput: (e) => { state.names[l] = e.target.value; state.dirty = true; renameBadges(l); } }))));
  };
  // renameBadges shows a speaker's new name on their cues as it is typed.
  const renameBadges = (label) => {
    for (const b of list.querySelectorAll(".badge")) if (b.dataset.speaker === label) b.textContent = state.names[label] || label;
  };

  const warn = (i) => {
    const ul = list.children[i] && list.children[i].querySelector(".warnings");
    if (!ul) return;
    ul.replaceChildren(...C.warnings(state.cues[i], state.cues[i + 1]).map((w) => h("li", {}, w)));
  };
  const setTime = (i, edge, v) => {
    state.cues[i] = { ...state.cues[i], [edge]: Math.max(0, Math.round(v * 1000) / 1000) };
    state.dirty = true;
    const li = list.children[i];
    li.querySelector(`input.${edge}`).value = state.cues[i][edge].toFixed(2);
    li.querySelector("button.jump").textContent = C.stamp(state.cues[i].start);
    warn(i);
    if (i > 0) warn(i - 1);
  };

  const drawCues = () => {
    list.replaceChildren(...state.cues.map((c, i) => {
      const n = i + 1;
      const text = h("textarea", { class: "text", rows: 2, "aria-label": `Text of cue ${n}`, value: c.text });
      text.addEventListener("input", () => { state.cues[i] = { ...state.cues[i], text: text.value }; state.dirty = true; warn(i); });
      // Alt+←/→ move the start, Alt+Shift+←/→ the end, by C.NUDGE seconds.
      text.addEventListener("keydown", (e) => {
        if (!e.altKey || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
        e.preventDefault();
        const edge = e.shiftKey ? "end" : "start";
        setTime(i, edge, state.cues[i][edge] + (e.key === "ArrowLeft" ? -C.NUDGE : C.NUDGE));
      });
      const time = (edge, label) => h("label", { class: "time" }, label + " ",
        h("input", { type: "number", class: edge, step: C.NUDGE, min: 0, value: c[edge].toFixed(2), "aria-label": `${label} of cue ${n}, seconds`,
          onchange: (e) => setTime(i, edge, Number(e.target.value)) }));
      return h("li", { class: "cue", dataset: { index: i } },
        h("div", { class: "row" },
          h("button", { type: "button", class: "jump link", "aria-label": `Play cue ${n}`, onclick: () => { audio.currentTime = state.cues[i].start; audio.play().catch(() => {}); } }, C.stamp(c.start)),
          c.speaker ? h("span", { class: "badge", dataset: { speaker: c.speaker } }, state.names[c.speaker] || c.speaker) : null,
          time("start", "Start"), time("end", "End"),
          h("button", { type: "button", class: "split", "aria-label": `Split cue ${n}`, onclick: () => { state.cues = C.split(state.cues, i); state.dirty = true; drawCues(); list.children[i].querySelector("textarea").focus(); } }, "Split"),
          i + 1 < state.cues.length ? h("button", { type: "button", class: "merge", "aria-label": `Merge cue ${n} with the next`, onclick: () => { state.cues = C.merge(state.cues, i); state.dirty = true; drawCues(); list.children[i].querySelector("textarea").focus(); } }, "Merge with next") : null),
        text,
        h("ul", { class: "warnings warn", "aria-live": "polite" }));
    }));
    state.cues.forEach((_, i) => warn(i));
  };

  picker.addEventListener("change", async () => {
    if (state.dirty && !window.confirm("Drop your unsaved changes and show another revision?")) { drawPicker(); return; }
    try { await load(Number(picker.value)); } catch (e) { msg.replaceChildren(notice("error", e.message)); }
  });

  save.addEventListener("click", async () => {
    msg.replaceChildren();
    save.disabled = true;
    try {
      const names = Object.fromEntries(Object.entries(state.names).filter(([k, v]) => v !== ((j.speaker_names || {})[k] || "")));
      const body = { base_revision: state.base, segments: state.cues.map((c) => ({ start: c.start, end: c.end, text: c.text, ...(c.speaker ? { speaker: c.speaker } : {}) })) };
      if (Object.keys(names).length) body.speakers = names;
      const r = await put(base + "/transcript", body);
      revisions.push({ revision: r.revision, created_at: r.created_at, segment_count: r.segment_count });
      state.base = state.rev = r.revision;
      state.dirty = false;
      j.speaker_names = { ...state.names };
      drawPicker();
      dl.replaceChildren(downloads(base + "/transcript", `&revision=${r.revision}`));
      msg.replaceChildren(notice("ok", h("span", { id: "saved" }, `Saved as revision ${r.revision}.`), " The original stays as revision 0."));
    } catch (e) {
      if (e instanceof APIError && e.code === "revision_conflict") {
        const reload = h("button", { type: "button", id: "load-latest", onclick: async () => {
          revisions = (await get(base + "/revisions")).revisions;
          state.base = latest();
          await load(state.base);
          msg.replaceChildren(notice("info", `Showing revision ${state.base}, the latest.`));
        } }, "Load the latest revision");
        msg.replaceChildren(notice("error", h("strong", { id: "conflict" }, "Not saved: someone saved a newer revision while you were editing. "),
          e.message, " Copy any text you want to keep, then load the latest revision and make your changes there. "), reload);
      } else {
        msg.replaceChildren(notice("error", "Not saved: " + e.message));
      }
    } finally {
      save.disabled = false;
    }
  });

  const tools = h("div", { class: "row toolbar" },
    revisions ? h("label", { for: "revision" }, "Revision ") : null, revisions ? picker : null,
    revisions ? save : h("span", { class: "muted" }, "Saving edits is not available on this server yet."),
    h("a", { href: `/jobs/${enc(id)}` }, "Job details"));
  mount("Edit " + jobTitle(j), h("h1", {}, jobTitle(j)), msg, tools, player,
    h("details", { class: "help" }, h("summary", {}, "Keyboard"),
      h("p", {}, "In a cue's text, Alt+← and Alt+→ move its start by a tenth of a second; Alt+Shift+← and Alt+Shift+→ its end. In a time field, ↑ and ↓ do the same. Press a cue's time to play from there.")),
    speakers,
    h("h2", {}, "Captions"),
    h("p", { class: "muted" }, `Warnings follow the caption guidelines: lines of ${C.MAX_LINE_CHARS} characters at most, reading speed up to ${C.MAX_CPS} characters a second. They are advice: nothing is changed for you.`),
    list, dl, await shares(base, state));
  await load(state.rev);
  return () => audio.pause();
}
