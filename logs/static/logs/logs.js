// System > Logs: Follow mode polls the lines endpoint with the page's filters and appends
// what is newer than the last line shown. No inline script: the CSP allows 'self' only.
(function () {
  "use strict";
  var table = document.querySelector("[data-log-table]");
  var toggle = document.querySelector("[data-follow]");
  if (!table || !toggle) return;
  var body = table.querySelector("[data-log-rows]");
  var form = document.querySelector("[data-log-filters]");
  var timer = null;
  var POLL_MS = 2000;

  function lastTimestamp() {
    var rows = body.querySelectorAll("tr[data-timestamp]");
    return rows.length ? rows[rows.length - 1].getAttribute("data-timestamp") : "";
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function rowFor(line) {
    var tr = document.createElement("tr");
    tr.className = "log-" + line.severity;
    tr.setAttribute("data-timestamp", line.timestamp);
    tr.appendChild(cell(line.timestamp, "nowrap"));
    var level = cell("");
    var tag = document.createElement("span");
    tag.className = "tag" + (line.severity === "error" ? " danger" : "");
    tag.textContent = line.level;
    level.appendChild(tag);
    tr.appendChild(level);
    tr.appendChild(cell(line.process));
    tr.appendChild(cell(line.logger));
    var message = cell(String(line.event));
    Object.keys(line.fields).forEach(function (key) {
      var field = document.createElement("span");
      field.className = "log-field";
      var value = line.fields[key];
      var text = typeof value === "string" ? value : JSON.stringify(value);
      field.appendChild(document.createTextNode(key + "="));
      var code = document.createElement("code");
      code.textContent = text;
      if (line.links[key]) {
        var link = document.createElement("a");
        link.href = line.links[key];
        link.appendChild(code);
        field.appendChild(link);
      } else {
        field.appendChild(code);
      }
      message.appendChild(document.createTextNode(" "));
      message.appendChild(field);
    });
    tr.appendChild(message);
    return tr;
  }

  function poll() {
    var params = new URLSearchParams(new FormData(form));
    params.delete("since");
    var after = lastTimestamp();
    if (after) params.set("after", after);
    fetch(table.getAttribute("data-lines-url") + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.ok ? response.json() : { lines: [] }; })
      .then(function (data) {
        if (data.lines.length) {
          var empty = body.querySelector("[data-empty]");
          if (empty) empty.remove();
        }
        data.lines.forEach(function (line) { body.appendChild(rowFor(line)); });
        if (data.lines.length) window.scrollTo(0, document.body.scrollHeight);
      })
      .catch(function () {})
      .finally(function () { if (toggle.checked) timer = setTimeout(poll, POLL_MS); });
  }

  toggle.addEventListener("change", function () {
    clearTimeout(timer);
    if (toggle.checked) poll();
  });
})();
