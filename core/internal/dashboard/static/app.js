// Copies a shown-once key with one click; without script the field is
// read-only and selectable, and the button stays hidden.
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    var field = document.getElementById(b.dataset.copy), said = document.getElementById("copied");
    if (!field || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(function () { said.textContent = "Copied."; },
        function () { field.select(); said.textContent = "Press Ctrl+C to copy."; });
    });
  });
})();

// A page that shows moving work (jobs, batches, the fleet) draws itself
// again every data-refresh seconds — but not while someone is at a
// control or the tab is hidden, so a keyboard user's place and a half-typed
// filter are never lost (WCAG 2.2.1).
(function () {
  var secs = Number(document.body.dataset.refresh);
  if (!secs) return;
  function tick() {
    var a = document.activeElement;
    if (document.visibilityState === "visible" && (!a || a === document.body)) location.reload();
    else setTimeout(tick, secs * 1000);
  }
  setTimeout(tick, secs * 1000);
})();
