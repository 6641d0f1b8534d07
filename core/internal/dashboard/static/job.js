// Shows a job's transcript as the gpu-node streams it, and its status and
// progress, by polling the dashboard's segments endpoint once a second.
(function () {
  var el = document.getElementById("job");
  if (!el) return;
  var id = el.dataset.job, after = -1, list = document.getElementById("segments");
  function ms(t) { var s = Math.floor(t / 1000); return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2); }
  function poll() {
    fetch("/admin/jobs/" + id + "/segments?after=" + after, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        d.segments.forEach(function (s) {
          var li = document.createElement("li");
          li.textContent = "[" + ms(s.start_ms || 0) + "] " + s.text;
          li.dataset.seq = s.seq;
          list.appendChild(li);
          after = s.seq;
        });
        var ended = ["succeeded", "failed", "cancelled"].indexOf(d.status) >= 0;
        // The page was drawn while the job ran: draw it again for its end
        // (no "live", the downloads, Retry where it helps).
        if (ended && el.dataset.live === "true") { location.reload(); return; }
        document.getElementById("status").textContent = d.status;
        document.getElementById("progress").textContent = Math.round(d.progress * 100) + " %";
        if (["succeeded", "failed", "cancelled"].indexOf(d.status) < 0 || d.segments.length) setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();
