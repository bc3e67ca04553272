// Live updates for the agentcmd dashboard, without a build step.
// A page that can change marks its live region with data-poll (the URL of
// its JSON twin) and data-version (a fingerprint of what it shows). We poll
// the twin; when its "version" differs, we fetch this page's HTML again and
// swap the live region. Reading never needs this script; it only saves a
// reload. Polling pauses while the tab is hidden.
(function () {
  "use strict";
  var INTERVAL_MS = 1500;
  var live = document.getElementById("live");
  if (!live || !live.dataset.poll) { return; }
  var status = document.getElementById("live-status");
  var busy = false;

  // A <details> the reader opened (or closed) stays so across updates: keyed by its step and summary.
  function detailsKey(d) {
    var owner = d.closest("[data-step]");
    var summary = d.querySelector("summary");
    return (owner ? owner.getAttribute("data-step") : "") + "|" + (summary ? summary.textContent : "");
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("live");
    if (!fresh) { return; }
    var state = {};
    live.querySelectorAll("details").forEach(function (d) { state[detailsKey(d)] = d.open; });
    fresh.querySelectorAll("details").forEach(function (d) {
      var key = detailsKey(d);
      if (Object.prototype.hasOwnProperty.call(state, key)) { d.open = state[key]; }
    });
    live.innerHTML = fresh.innerHTML;
    live.dataset.version = fresh.dataset.version || "";
    if (!fresh.dataset.poll) { delete live.dataset.poll; }  // the run has ended: stop polling
    if (status) { status.textContent = "Updated at " + new Date().toLocaleTimeString() + "."; }
  }

  function tick() {
    if (busy || document.hidden || !live.dataset.poll) { return; }
    busy = true;
    fetch(live.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.version || body.version === live.dataset.version) { return null; }
        return fetch(window.location.href, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) { if (html) { swap(html); } });
      })
      .catch(function () { if (status) { status.textContent = "Live updates paused: the engine did not answer."; } })
      .then(function () { busy = false; });
  }

  var timer = window.setInterval(function () {
    if (!live.dataset.poll) { window.clearInterval(timer); return; }
    tick();
  }, INTERVAL_MS);
})();
