/* The event log's Live switch: an EventSource on the events stream with the page's own search
   and filters. New events go to the top of the table; paused, they are counted ("12 new") and
   shown on resume. The browser reconnects by itself with Last-Event-ID, so nothing is missed
   or shown twice. The chart and map are told ("auditlog:events-arrived") and refresh. */
(function () {
  "use strict";

  var bar = document.querySelector("[data-live]");
  if (!bar || !window.EventSource) return;
  var toggle = bar.querySelector("[data-live-toggle]");
  var pauseButton = bar.querySelector("[data-live-pause]");
  var status = bar.querySelector("[data-live-status]");
  var table = document.querySelector("[data-event-table] tbody");
  var PLACEHOLDER = "00000000-0000-0000-0000-000000000000";

  function json(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) || {} : {};
  }
  var colors = json("action-colors");
  var labels = json("action-labels");

  var source = null;
  var paused = false;
  var waiting = [];

  function setStatus(text, on) {
    status.textContent = "";
    status.classList.toggle("on", Boolean(on));
    if (paused && waiting.length) {
      var count = document.createElement("span");
      count.className = "new-count";
      count.dataset.liveCount = String(waiting.length);
      count.textContent = waiting.length + " new";
      status.append(count, " ");
    }
    status.append(text);
  }

  function cell(parent, text, sub) {
    var td = document.createElement("td");
    td.append(text);
    if (sub) {
      var div = document.createElement("div");
      div.className = "sub";
      div.textContent = sub;
      td.append(div);
    }
    parent.append(td);
    return td;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function when(iso) {
    var d = new Date(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function row(event) {
    var tr = document.createElement("tr");
    tr.className = "event-row arrived";
    tr.dataset.event = event.pk;
    tr.dataset.live = "true";
    var toggleCell = cell(tr, "");
    toggleCell.className = "toggle-col";
    var expand = document.createElement("button");
    expand.type = "button";
    expand.className = "expand";
    expand.setAttribute("aria-expanded", "false");
    expand.setAttribute("aria-label", "Show details of this event");
    expand.dataset.expand = bar.dataset.infoUrl.replace(PLACEHOLDER, event.pk);
    expand.textContent = "▸";
    toggleCell.append(expand);

    var dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = colors[event.action] || "#6a6e73";
    var label = document.createElement("span");
    label.className = "action-label";
    label.textContent = labels[event.action] || event.action;
    var actionCell = cell(tr, dot, event.app);
    actionCell.insertBefore(label, actionCell.children[1]);

    var context = event.context || {};
    var user = event.user || {};
    cell(tr, user.username || context.username || "-");
    var time = document.createElement("time");
    time.dateTime = event.created;
    time.textContent = "just now";
    cell(tr, time, when(event.created));
    var geo = context.geo || {};
    cell(tr, event.client_ip || "-", [geo.city, geo.country].filter(Boolean).join(", "));
    if (table.closest("table").querySelectorAll("thead th").length > 6) {
      cell(tr, (event.brand || {}).name || "-");
    }
    var actions = cell(tr, "");
    actions.className = "actions";
    var link = document.createElement("a");
    link.href = bar.dataset.detailUrl.replace(PLACEHOLDER, event.pk);
    link.title = "Show details";
    link.textContent = "Details ↗";
    actions.append(link);
    return tr;
  }

  function show(events) {
    if (!events.length) return;
    var empty = table.querySelector(".empty-row");
    if (empty) empty.closest("tr").remove();
    events.forEach(function (event) {
      if (table.querySelector('tr[data-event="' + event.pk + '"]')) return;
      table.insertBefore(row(event), table.firstChild);
    });
    document.dispatchEvent(new CustomEvent("auditlog:events-arrived", {detail: {count: events.length}}));
  }

  function start() {
    source = new EventSource(bar.dataset.streamUrl, {withCredentials: true});
    setStatus("Connecting…");
    source.onopen = function () { setStatus(paused ? "Paused" : "Live", !paused); };
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) setStatus("Disconnected: switch Live off and on to retry");
      else setStatus("Reconnecting…");
    };
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (paused) {
        waiting.push(event);
        setStatus("Paused", false);
      } else {
        show([event]);
      }
    };
    bar.dataset.liveState = "on";
    pauseButton.hidden = false;
  }

  function stop() {
    if (source) source.close();
    source = null;
    paused = false;
    waiting = [];
    pauseButton.hidden = true;
    pauseButton.textContent = "Pause";
    bar.dataset.liveState = "off";
    setStatus("");
  }

  toggle.addEventListener("change", function () { toggle.checked ? start() : stop(); });
  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      show(waiting);
      waiting = [];
    }
    setStatus(paused ? "Paused" : "Live", !paused);
  });
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();
