import { get, post, APIError, csrfToken } from "../api.js";
import { h, mount, notice } from "../dom.js";
import { explain } from "../words.js";
import { upload } from "../tus.js";

const languages = [["auto", "Detect the language"], ["en", "English"], ["de", "German"], ["fr", "French"], ["es", "Spanish"],
  ["it", "Italian"], ["pt", "Portuguese"], ["nl", "Dutch"], ["pl", "Polish"], ["ja", "Japanese"], ["zh", "Chinese"]];
const sources = [["auto", "Use a person's captions when the video has them, else transcribe"], ["asr", "Always transcribe the audio"],
  ["captions", "Use the video's captions, even automatic ones"]];

function select(id, label, options, value) {
  return h("label", { class: "field", for: id }, h("span", {}, label),
    h("select", { id, name: id }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t))));
}

function errorNotice(e) {
  const [what, todo] = explain(e.code, e.message);
  return notice("error", h("strong", {}, what), " ", todo);
}

// newCaptions: paste a link (see the captions it already has first) or
// drop a file, pick the options, start.
export async function newCaptions(_, { go }) {
  const msg = h("div", { id: "new-msg" });
  const url = h("input", { id: "url", name: "url", type: "url", inputmode: "url", placeholder: "Paste a link", autocomplete: "off" });
  const tracks = h("div", { id: "tracks", "aria-live": "polite" });
  const options = h("fieldset", {}, h("legend", {}, "Options"),
    select("language", "Language", languages, "auto"),
    select("source", "Source", sources, "auto"),
    h("label", { class: "check", for: "speakers" }, h("input", { type: "checkbox", id: "speakers", name: "speakers" }), " Tell speakers apart"),
    h("label", { class: "field", for: "vocabulary" }, h("span", {}, "Words to expect"),
      h("input", { id: "vocabulary", name: "vocabulary", placeholder: "names, jargon — separated by commas" })));
  const startURL = h("button", { class: "primary", type: "submit", id: "start-url" }, "Make captions from the link");
  const file = h("input", { id: "file", name: "file", type: "file", accept: "audio/*,video/*" });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const drop = h("div", { class: "drop", id: "drop" },
    h("label", { class: "field", for: "file" }, h("span", {}, "Choose or drop a file"),
      h("span", { class: "hint" }, "Audio or video, any size: the upload resumes if the connection drops."), file), bar);
  const startFile = h("button", { class: "primary", type: "button", id: "start-file", disabled: true }, "Upload and make captions");

  const opts = () => {
    const o = { language: document.getElementById("language").value, source: document.getElementById("source").value };
    if (document.getElementById("speakers").checked) o.speakers = true;
    const v = document.getElementById("vocabulary").value.split(",").map((s) => s.trim()).filter(Boolean);
    if (v.length) o.vocabulary = v;
    return o;
  };
  const create = async (body) => {
    msg.replaceChildren();
    try {
      const j = await post("/v1/jobs", body);
      go("/jobs/" + encodeURIComponent(j.id));
    } catch (e) {
      msg.replaceChildren(errorNotice(e));
    }
  };

  // The captions a video already has, asked for as soon as a link is
  // pasted: they may make a transcription (and its GPU time) unnecessary.
  let asked = "";
  const lookup = async () => {
    const u = url.value.trim();
    if (!u || u === asked || !/^https?:\/\//.test(u)) return;
    asked = u;
    tracks.replaceChildren(h("p", { class: "muted" }, "Looking for captions this video already has…"));
    try {
      const l = await get("/v1/media/captions?url=" + encodeURIComponent(u));
      if (asked !== u) return;
      if (!l.tracks.length) {
        tracks.replaceChildren(h("p", { class: "muted", id: "no-tracks" }, (l.title ? `“${l.title}” has` : "It has") + " no captions of its own: it will be transcribed."));
        return;
      }
      tracks.replaceChildren(h("div", { class: "card", id: "track-list" },
        h("h2", {}, "Captions it already has"),
        l.title ? h("p", {}, l.title) : null,
        h("ul", {}, l.tracks.map((t) => h("li", {}, `${t.name || t.language} (${t.language})`, t.automatic ? " — automatic" : " — made by a person", t.original ? ", original language" : ""))),
        h("p", { class: "muted" }, "Set Source to use them instead of transcribing: no GPU time, ready at once.")));
    } catch (e) {
      if (asked !== u) return;
      tracks.replaceChildren(h("p", { class: "muted" }, "Could not list its captions (" + (e.message || e.code) + "). You can still make captions."));
    }
  };
  url.addEventListener("change", lookup);
  url.addEventListener("paste", () => setTimeout(lookup, 0));

  const urlForm = h("form", { id: "new-url" },
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "From a link"),
        h("label", { class: "field", for: "url" }, h("span", {}, "Video or audio link"), url,
          h("span", { class: "hint" }, "YouTube and other sites, or a direct link to a media file.")),
        tracks),
      h("section", { class: "card" }, h("h2", {}, "Or from a file"), drop)),
    options,
    h("div", { class: "row" }, startURL, startFile));
  urlForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!url.value.trim()) {
      msg.replaceChildren(notice("error", "Paste a link first."));
      url.focus();
      return;
    }
    create({ url: url.value.trim(), ...opts() });
  });

  file.addEventListener("change", () => { startFile.disabled = !file.files.length; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) {
      file.files = e.dataTransfer.files;
      startFile.disabled = false;
    }
  });
  startFile.addEventListener("click", async () => {
    const f = file.files[0];
    if (!f) return;
    startFile.disabled = true;
    bar.hidden = false;
    msg.replaceChildren(notice("info", `Uploading ${f.name}…`));
    try {
      const id = await upload(f, { csrf: csrfToken(), onProgress: (done, total) => { bar.value = done / total; } });
      await create({ upload_id: id, ...opts() });
    } catch (e) {
      msg.replaceChildren(errorNotice(e instanceof APIError ? e : { code: e.code, message: e.message }));
      startFile.disabled = false;
    }
  });

  mount("New captions", h("h1", {}, "New captions"), msg, urlForm);
}
