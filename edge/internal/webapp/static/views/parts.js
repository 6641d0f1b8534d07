import { formats } from "../api.js";
import { h } from "../dom.js";

const names = { srt: "SubRip", vtt: "WebVTT", txt: "Plain text", json: "JSON", tsv: "TSV", ass: "ASS", ttml: "TTML", sbv: "YouTube SBV" };

// downloads links every caption format of a transcript; query adds e.g.
// "&revision=2".
export function downloads(base, query) {
  return h("section", { class: "card", id: "downloads" }, h("h2", {}, "Download"),
    h("ul", { class: "formats" }, formats.map((f) => h("li", {},
      h("a", { class: "button", href: `${base}?format=${f}${query}`, download: "", dataset: { format: f }, "aria-label": `Download ${names[f]} (.${f})` }, `.${f}`),
      " ", h("span", { class: "muted" }, names[f])))));
}
