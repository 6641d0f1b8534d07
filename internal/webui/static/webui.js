// ytcaption's shared page behaviour (package internal/webui), loaded as an ES
// module by the user app and the admin dashboard. Loading it wires the
// declarative components below on every page; other modules import the
// helpers it exports.

// confirmFirst makes a destructive action ask first: a form or a button with
// data-confirm="Revoke this key? …" goes through only when the person says so.
function confirmFirst(root) {
  root.addEventListener("submit", (e) => {
    const form = e.target;
    const text = (e.submitter && e.submitter.dataset.confirm) || form.dataset.confirm;
    if (text && !window.confirm(text)) e.preventDefault();
  }, true);
  root.addEventListener("click", (e) => {
    const b = e.target.closest && e.target.closest("button[data-confirm]:not([type=submit])");
    if (b && b.form === null && !window.confirm(b.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
}

// ago says how long ago t was, in words ("just now", "5 min ago", "3 h ago",
// "2 d ago"), or the date beyond a week.
export function ago(t, now = Date.now()) {
  const d = new Date(t);
  if (isNaN(d)) return "";
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  if (s < 7 * 86400) return Math.round(s / 86400) + " d ago";
  return d.toISOString().slice(0, 10);
}

// clock writes seconds as m:ss or h:mm:ss (tenths with tenths=true).
export function clock(sec, tenths = false) {
  if (!isFinite(sec) || sec < 0) sec = 0;
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60);
  let s = (sec % 60).toFixed(tenths ? 1 : 0);
  if (Number(s) >= 60) s = tenths ? "59.9" : "59";
  const ss = (Number(s) < 10 ? "0" : "") + s;
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

// relativeTimes fills every <time data-relative datetime="..."> with ago(),
// keeping the exact time as its title.
export function relativeTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-relative]")) {
    const dt = el.getAttribute("datetime");
    el.textContent = ago(dt);
    el.title = new Date(dt).toUTCString();
  }
}

// contrast is the WCAG 2.1 contrast ratio of two CSS colours given as
// "rgb(r, g, b)" (what getComputedStyle returns) or "#rrggbb".
export function contrast(a, b) {
  const lum = (c) => {
    const v = c.startsWith("#") ? [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) : c.match(/[\d.]+/g).slice(0, 3).map(Number);
    const [r, g, bl] = v.map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

if (typeof document !== "undefined") {
  confirmFirst(document);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => relativeTimes());
  else relativeTimes();
}
