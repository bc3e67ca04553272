// Live updates for both agentcmd web UIs, without a build step or a framework.
//
// A page that can change marks its live region #live with data-version (a
// fingerprint of what it shows), data-live (the URL of its server-sent
// events) and data-poll (its JSON twin, for browsers without EventSource).
// On a "version" event whose value differs from data-version we fetch this
// page's HTML again and swap the live region (open <details> stay open); on
// "end" nothing will change any more and the stream is closed.
//
// A run page's #transcript[data-stream] (the run's own event stream) gets
// each "agent" event appended as a readable entry, the same markup the server
// renders on load (ui/_macros.html transcript_entry); "run" events keep the
// running step's clock right. The reader scrolling up stops the auto-scroll.
//
// Reading never needs this script (the HTML is complete on load); it only
// saves a reload. Event text is only ever set with textContent.
(function () {
  "use strict";
  var INTERVAL_MS = 1500;
  var STICK_PX = 40;
  var BATCH_MS = 50;
  var MAX_ENTRIES = 5000;
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  var busy = false;
  var again = false;

  function say(text) { if (status) { status.textContent = text; } }

  function parse(data) {
    try { return JSON.parse(data); } catch (e) { return null; }
  }

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
    // The transcript grows from its own stream: keep the element (entries, scroll position) across swaps.
    var kept = live.querySelector("#transcript");
    if (kept) { kept.parentNode.removeChild(kept); }
    live.innerHTML = fresh.innerHTML;
    var slot = live.querySelector("#transcript");
    if (kept && slot) { slot.parentNode.replaceChild(kept, slot); }
    live.dataset.version = fresh.dataset.version || "";
    if (!fresh.dataset.poll) { delete live.dataset.poll; }  // the run has ended: stop polling
    if (!fresh.dataset.live) { delete live.dataset.live; }
    startClocks();
    say("Updated at " + new Date().toLocaleTimeString() + ".");
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) { swap(html); } })
      .catch(function () { say("Live updates paused: the server did not answer."); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  // --- the live region: server-sent version events, else polling the JSON twin -------------------------

  function poll() {
    if (!live || !live.dataset.poll) { return; }
    var timer = window.setInterval(function () {
      if (!live.dataset.poll) { window.clearInterval(timer); return; }
      if (busy || document.hidden) { return; }
      fetch(live.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && body.version && body.version !== live.dataset.version) { refresh(); }
        })
        .catch(function () { say("Live updates paused: the server did not answer."); });
    }, INTERVAL_MS);
  }

  // One EventSource per URL: a run page's live region and transcript share the run's stream.
  var sources = {};
  function stream(url) {
    if (sources[url]) { return sources[url]; }
    var source = new EventSource(url);
    sources[url] = source;
    source.addEventListener("end", function (ev) {
      source.close();
      var body = parse(ev.data);
      // A version stream's end carries the final version; a run stream's end only the status: look again.
      if (live && (!body || !body.version || body.version !== live.dataset.version)) { refresh(); }
    });
    return source;
  }

  function onVersion(ev) {
    var body = parse(ev.data);
    if (body && body.version && body.version !== live.dataset.version) { refresh(); }
  }

  function watchVersions() {
    var source = stream(live.dataset.live);
    source.addEventListener("open", function () { say("Live: this page updates itself."); });
    source.addEventListener("version", onVersion);
    source.addEventListener("run", onVersion);  // a run's stream: its "run" events carry the run page's version
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {  // refused (logged out, gone): poll the twin instead
        say("Live updates: the stream was refused; checking every few seconds instead.");
        poll();
      } else {
        say("Live updates interrupted; reconnecting…");
      }
    });
  }

  // --- the running step's clock ----------------------------------------------------------------------

  function fmtDuration(ms) {
    if (ms < 1000) { return ms + " ms"; }
    var s = ms / 1000;
    if (s < 60) { return s.toFixed(1) + " s"; }
    var m = Math.floor(s / 60), sec = Math.floor(s) % 60;
    if (m < 60) { return m + " m " + (sec < 10 ? "0" : "") + sec + " s"; }
    var h = Math.floor(m / 60); m = m % 60;
    return h + " h " + (m < 10 ? "0" : "") + m + " m";
  }

  // Each .elapsed[data-elapsed] counts on from the server's figure, by this browser's clock (no skew).
  function startClocks() {
    document.querySelectorAll(".elapsed[data-elapsed]").forEach(function (el) {
      if (!el.dataset.base) { el.dataset.base = String(Date.now() - Number(el.dataset.elapsed)); }
    });
  }

  function tickClocks() {
    document.querySelectorAll(".elapsed[data-base]").forEach(function (el) {
      el.textContent = fmtDuration(Math.max(0, Date.now() - Number(el.dataset.base)));
    });
  }

  function onRun(run) {
    (run.steps || []).forEach(function (step) {
      if (step.status !== "Running" || typeof step.elapsed_ms !== "number") { return; }
      document.querySelectorAll(".elapsed[data-step-name]").forEach(function (el) {
        if (el.getAttribute("data-step-name") === step.step_id || el.getAttribute("data-step-name") === step.name) {
          el.dataset.base = String(Date.now() - step.elapsed_ms);
        }
      });
    });
  }

  // --- the transcript --------------------------------------------------------------------------------

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function statusBadge(value, fallback) {
    var word = value || fallback;
    return el("span", "tx-status tx-status-" + (value || "ok"), word);
  }

  function resultDetail(call, result) {
    var summary = call.querySelector("summary");
    var old = summary.querySelector(".tx-status");
    var badge = statusBadge(result.status, "done");
    if (old) { summary.replaceChild(badge, old); } else { summary.appendChild(badge); }
    var detail = call.querySelector(".tx-detail");
    if (!detail) { detail = el("div", "tx-detail"); call.appendChild(detail); }
    detail.textContent = "";
    if (result.text) { detail.appendChild(el("pre", "", result.text)); } else { detail.appendChild(el("p", "hint", "No output.")); }
  }

  // One event as the entry the server would render (null for what the transcript leaves out).
  function transcriptEntry(ev) {
    var node;
    switch (ev.kind) {
      case "text":
        node = el("div", "tx tx-text");
        node.appendChild(el("span", "tx-who", ev.agent || "agent"));
        node.appendChild(el("div", "tx-body", ev.text || ""));
        break;
      case "tool_call":
        node = el("details", "tx tx-tool");
        node.setAttribute("data-tool-id", ev.tool_id || "");
        var summary = el("summary");
        summary.appendChild(el("span", "tx-tool-name", ev.tool || "tool"));
        summary.appendChild(document.createTextNode(" "));
        summary.appendChild(el("code", "tx-summary", ev.summary || ""));
        summary.appendChild(document.createTextNode(" "));
        summary.appendChild(el("span", "tx-status tx-status-pending", "running"));
        node.appendChild(summary);
        var detail = el("div", "tx-detail");
        detail.appendChild(el("p", "hint", "No result yet."));
        node.appendChild(detail);
        break;
      case "tool_result":
        node = el("div", "tx tx-tool-result");
        node.appendChild(el("span", "tx-tool-name", ev.tool || "tool"));
        node.appendChild(document.createTextNode(" result "));
        node.appendChild(statusBadge(ev.status, "done"));
        if (ev.text) { node.appendChild(el("pre", "", ev.text)); }
        break;
      case "error":
        node = el("div", "tx tx-error");
        node.appendChild(el("strong", "", "Error"));
        node.appendChild(document.createTextNode(" "));
        node.appendChild(el("span", "tx-body", ev.text || ""));
        break;
      case "result":
        node = el("details", "tx tx-final tx-final-" + (ev.status || "ok"));
        var head = el("summary", "", "Result ");
        head.appendChild(statusBadge(ev.status, "ok"));
        node.appendChild(head);
        node.appendChild(el("div", "tx-body", ev.text || ""));
        break;
      case "output":
        node = el("div", "tx tx-output tx-output-" + (ev.stream === "stderr" ? "stderr" : "stdout"));
        node.appendChild(el("code", "", ev.text || ""));
        break;
      case "dropped":
        node = el("p", "tx tx-dropped", ev.text || "earlier events dropped");
        break;
      case "notice":
        node = el("p", "tx tx-notice", ev.text || "");
        break;
      case "session":
        node = el("p", "tx tx-notice", ("session " + (ev.session_id || "")).trim());
        break;
      default:
        return null;  // usage reports and kinds this page does not know
    }
    node.setAttribute("data-seq", String(ev.seq));
    return node;
  }

  function watchTranscript(box) {
    var lastSeq = 0;
    box.querySelectorAll("[data-seq]").forEach(function (n) { lastSeq = Math.max(lastSeq, Number(n.getAttribute("data-seq")) || 0); });
    var heads = box.querySelectorAll(".tx-step");
    var lastStep = heads.length ? heads[heads.length - 1].getAttribute("data-step-id") : null;
    var calls = {};
    box.querySelectorAll("details.tx-tool[data-tool-id]").forEach(function (d) { calls[d.getAttribute("data-tool-id")] = d; });

    function append(ev) {
      if (typeof ev.seq === "number" && ev.seq <= lastSeq) { return; }  // already shown (a reconnect)
      if (typeof ev.seq === "number") { lastSeq = ev.seq; }
      if (ev.kind === "tool_result" && ev.tool_id && calls[ev.tool_id]) {
        resultDetail(calls[ev.tool_id], ev);
      } else {
        var node = transcriptEntry(ev);
        if (!node) { return; }
        var empty = box.querySelector(".tx-empty");
        if (empty) { empty.parentNode.removeChild(empty); }
        var step = ev.step_id || "";
        if (step !== lastStep) {
          var h = el("h3", "tx-step", step || "(run)");
          h.setAttribute("data-step-id", step);
          box.appendChild(h);
          lastStep = step;
        }
        box.appendChild(node);
        if (ev.kind === "tool_call" && ev.tool_id) { calls[ev.tool_id] = node; }
      }
    }

    // Events are put on the page in batches: at 200 events a second, one layout per batch, not per event.
    var pending = [];
    function flush() {
      var batch = pending;
      pending = [];
      var stick = box.scrollHeight - box.scrollTop - box.clientHeight <= STICK_PX;
      batch.forEach(append);
      var entries = box.querySelectorAll(".tx");
      if (entries.length > MAX_ENTRIES) {  // a long run: the oldest entries leave this view (raw events keep them)
        for (var i = 0; i < entries.length - MAX_ENTRIES; i++) { entries[i].parentNode.removeChild(entries[i]); }
        if (!box.querySelector(".tx-trimmed")) {
          box.insertBefore(el("p", "tx-trimmed tx-notice", "Older entries were removed from this view; the raw events have them."),
                           box.firstChild);
        }
      }
      if (stick) { box.scrollTop = box.scrollHeight; }
    }

    var source = stream(box.dataset.stream);
    source.addEventListener("agent", function (ev) {
      var body = parse(ev.data);
      if (!body) { return; }
      if (!pending.length) { window.setTimeout(flush, BATCH_MS); }
      pending.push(body);
    });
    source.addEventListener("run", function (ev) { var body = parse(ev.data); if (body) { onRun(body); } });
    source.addEventListener("end", function () { delete box.dataset.stream; });
    box.scrollTop = box.scrollHeight;
  }

  startClocks();
  window.setInterval(tickClocks, 1000);
  if (live && live.dataset.live && window.EventSource) { watchVersions(); } else { poll(); }
  var transcript = document.getElementById("transcript");
  if (transcript && transcript.dataset.stream && window.EventSource) { watchTranscript(transcript); }
})();
