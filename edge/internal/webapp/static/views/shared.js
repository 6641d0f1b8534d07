import { get } from "../api.js";
import { h, mount, notice } from "../dom.js";
import * as C from "../cues.js";
import { downloads } from "./parts.js";

// shared: what a share link shows anyone, without a key — the player, the
// captions as they play, and the downloads. Read-only.
export async function shared([token]) {
  const base = `/v1/shared/${encodeURIComponent(token)}`;
  let d;
  try {
    d = await get(base);
  } catch (e) {
    if (e.status === 404) {
      mount("Link not found", h("h1", { id: "share-gone" }, "This link does not work"),
        h("p", {}, "It may have expired or been revoked by the person who shared it. Ask them for a new one."));
      return;
    }
    throw e;
  }
  const cues = d.segments || [];
  const audio = h("audio", { id: "player", controls: true, preload: "metadata", src: base + "/audio", "aria-label": "Audio" });
  const now = h("p", { id: "now", class: "now-caption" }, " ");
  const list = h("ol", { class: "cues read-only", id: "cues" }, cues.map((c, i) => h("li", { class: "cue" },
    h("button", { type: "button", class: "jump link", "aria-label": `Play from ${C.stamp(c.start)}`, onclick: () => { audio.currentTime = cues[i].start; audio.play().catch(() => {}); } }, C.stamp(c.start)),
    " ", c.speaker ? h("span", { class: "badge" }, c.speaker) : null, " ", h("span", { class: "text" }, c.text))));
  audio.addEventListener("timeupdate", () => {
    const i = C.at(cues, audio.currentTime);
    now.textContent = i >= 0 ? cues[i].text : " ";
    for (const li of list.querySelectorAll("li.playing")) li.classList.remove("playing");
    if (i >= 0) list.children[i].classList.add("playing");
  });
  const player = h("section", { class: "card player" }, audio, now);
  audio.addEventListener("error", () => player.replaceChildren(notice("info", "The audio is not available; the captions are below.")));
  const title = (d.job && (d.job.title || d.job.source_name)) || "Shared captions";
  mount(title, h("h1", {}, title), h("p", { class: "muted" }, "Shared with you read-only."), player,
    h("h2", {}, "Captions"), list, downloads(base + "/transcript", ""));
  return () => audio.pause();
}
