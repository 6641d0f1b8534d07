// h builds elements node by node, never parsing markup, so text from the API
// is never HTML:
// h("a", {href: "/x", class: "y"}, "text", child, [more]).
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" || k === "checked" || k === "selected") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

// mount replaces main's content and moves focus there, as a page load would,
// so keyboard and screen reader users start at the new view.
export function mount(title, ...kids) {
  const main = document.getElementById("main");
  main.replaceChildren(...kids.flat().filter(Boolean));
  document.title = title + " · ytcaption";
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: true });
  }
  return main;
}

// notice is a message box; errors interrupt screen readers (role=alert).
export function notice(kind, ...text) {
  return h("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, ...text);
}
