/* The web admin's behaviour: notification drawer, expandable event rows, search completion,
   small conveniences. No framework; the REST API is called with the session and CSRF token. */
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  var toastTimer = null;
  function toast(message) {
    var element = document.querySelector("[data-toast]");
    if (!element) return;
    element.textContent = message;
    element.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { element.hidden = true; }, 4000);
  }
  window.auditlogToast = toast;

  /* --- Notification drawer --- */
  var drawer = document.querySelector("[data-drawer]");

  function setUnread(count) {
    document.querySelectorAll("[data-unread-count]").forEach(function (badge) {
      badge.textContent = count;
      badge.classList.toggle("hidden", count === 0);
    });
    var label = drawer && drawer.querySelector("[data-drawer-count]");
    if (label) label.textContent = count + " unread";
    var clear = drawer && drawer.querySelector("[data-clear-all]");
    if (clear) clear.disabled = count === 0;
  }

  function loadDrawer() {
    var body = drawer.querySelector("[data-drawer-body]");
    return fetch(drawer.dataset.drawerUrl, {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        body.innerHTML = html;
        setUnread(body.querySelectorAll("[data-notification]").length ? parseInt(body.querySelector("[data-drawer-count]").textContent, 10) : 0);
      })
      .catch(function () { body.innerHTML = '<p class="alert alert-error">Failed to fetch notifications.</p>'; });
  }

  /* The bell follows new notifications (an export ready, a rule's match) without a reload:
     a small poll of the unread count while the page is visible. */
  var UNREAD_POLL_MS = 4000;
  var lastUnread = null;
  function pollUnread() {
    if (!drawer || !drawer.dataset.unreadUrl || document.hidden) return;
    fetch(drawer.dataset.unreadUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (page) {
        if (!page || !page.pagination) return;
        var count = page.pagination.count;
        if (lastUnread !== null && count !== lastUnread && !drawer.hidden) loadDrawer();
        else setUnread(count);
        lastUnread = count;
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }
  if (drawer && drawer.dataset.unreadUrl) {
    window.setInterval(pollUnread, UNREAD_POLL_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) pollUnread(); });
  }

  /* The drawer takes the focus when it opens and gives it back to the bell when it closes,
     so it can be used with the keyboard alone. */
  function bell() { return document.querySelector("[data-drawer-toggle]"); }
  function openDrawer() {
    drawer.hidden = false;
    bell().setAttribute("aria-expanded", "true");
    loadDrawer().then(function () {
      var first = drawer.querySelector("button:not([disabled]), a[href]");
      if (first && !drawer.hidden) first.focus();
    });
  }
  function closeDrawer() {
    var inside = drawer.contains(document.activeElement);
    drawer.hidden = true;
    bell().setAttribute("aria-expanded", "false");
    if (inside) bell().focus();
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-drawer-toggle], [data-drawer-close], [data-mark-read], [data-clear-all], [data-expand], [data-copy], [data-test-transport], button[data-export], [data-delete-export], [data-toggle-next], tr[data-href]");
    if (!target) return;
    if (target.matches("[data-drawer-toggle]")) { drawer.hidden ? openDrawer() : closeDrawer(); return; }
    if (target.matches("[data-drawer-close]")) { closeDrawer(); return; }
    if (target.matches("[data-mark-read]")) { markRead(target.dataset.markRead); return; }
    if (target.matches("[data-clear-all]")) { clearAll(); return; }
    if (target.matches("[data-expand]")) { toggleRow(target); return; }
    if (target.matches("[data-copy]")) { copy(target); return; }
    if (target.matches("[data-test-transport]")) { testTransport(target); return; }
    if (target.matches("button[data-export]")) { requestExport(target); return; }
    if (target.matches("[data-delete-export]")) { deleteExport(target); return; }
    if (target.matches("[data-toggle-next]")) { toggleNext(target); return; }
    if (target.matches("tr[data-href]") && !event.target.closest("a, button")) { window.location = target.dataset.href; }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && drawer && !drawer.hidden) closeDrawer();
  });

  function markRead(pk) {
    api("PATCH", "/api/v3/events/notifications/" + pk + "/", {seen: true}).then(function (response) {
      if (!response.ok) { toast("Could not mark the notification as read."); return; }
      var item = drawer.querySelector('[data-notification="' + pk + '"]');
      if (item) item.remove();
      var remaining = drawer.querySelectorAll("[data-notification]").length;
      setUnread(remaining);
      if (!remaining) loadDrawer();
    });
  }

  function clearAll() {
    api("POST", "/api/v3/events/notifications/mark_all_seen/").then(function (response) {
      if (!response.ok) { toast("Could not clear the notifications."); return; }
      var list = drawer.querySelector("[data-notifications]");
      if (list) list.innerHTML = "";
      setUnread(0);
      closeDrawer();
      toast("Successfully cleared notifications");
    });
  }

  /* --- Expandable rows --- */
  function toggleRow(button) {
    var row = button.closest("tr");
    var next = row.nextElementSibling;
    var open = button.getAttribute("aria-expanded") === "true";
    if (open) {
      if (next && next.classList.contains("detail-row")) next.remove();
      button.setAttribute("aria-expanded", "false");
      return;
    }
    button.setAttribute("aria-expanded", "true");
    var detail = document.createElement("tr");
    detail.className = "detail-row";
    detail.innerHTML = '<td colspan="' + row.children.length + '"><span class="muted">Loading…</span></td>';
    row.after(detail);
    fetch(button.dataset.expand, {credentials: "same-origin"})
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.text(); })
      .then(function (html) { detail.firstElementChild.innerHTML = html; })
      .catch(function () { detail.firstElementChild.innerHTML = '<span class="error">Could not load this event.</span>'; });
  }

  /* --- Sending a test notification through a transport --- */
  function testTransport(button) {
    var result = document.querySelector("[data-test-result]");
    button.disabled = true;
    api("POST", button.dataset.testTransport)
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        var lines = answer.body.messages || [answer.body.detail || "No answer."];
        result.textContent = (answer.ok ? "Test sent: " : "Test failed: ") + lines.join(" — ");
        result.className = "alert " + (answer.ok ? "alert-success" : "alert-error");
      })
      .catch(function () {
        result.textContent = "Test failed: the server did not answer.";
        result.className = "alert alert-error";
      })
      .finally(function () { button.disabled = false; result.classList.remove("hidden"); });
  }

  /* --- Data exports --- */
  function requestExport(button) {
    var select = document.querySelector("[data-export-format]");
    var url = button.dataset.export + "&format=" + encodeURIComponent(select ? select.value : "csv");
    button.disabled = true;
    api("POST", url)
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        if (answer.ok) {
          toast("Export requested: it is processed in the background. You will get a notification with a download link when it is ready.");
        } else {
          toast("The export was refused: " + (answer.body.detail || JSON.stringify(answer.body)));
        }
      })
      .catch(function () { toast("The export could not be requested."); })
      .finally(function () { button.disabled = false; });
  }

  function deleteExport(button) {
    if (!window.confirm(button.dataset.confirmText)) return;
    api("DELETE", button.dataset.deleteExport).then(function (response) {
      if (!response.ok) { toast("The export could not be deleted."); return; }
      var row = button.closest("tr");
      var detail = row.nextElementSibling;
      if (detail && detail.classList.contains("detail-row")) detail.remove();
      row.remove();
      toast("Export deleted.");
    });
  }

  function toggleNext(button) {
    var next = button.closest("tr").nextElementSibling;
    if (!next) return;
    next.hidden = !next.hidden;
    button.setAttribute("aria-expanded", String(!next.hidden));
  }

  /* --- Small conveniences --- */
  function copy(button) {
    var field = document.querySelector(button.dataset.copy);
    if (!field) return;
    field.select();
    var done = function () { toast("Copied to the clipboard"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  }

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  /* --- DjangoQL completion on the search field (its script loads after this one) --- */
  document.addEventListener("DOMContentLoaded", initSearch);
  function initSearch() {
  var textarea = document.querySelector("textarea[data-djangoql]");
  var introspection = document.getElementById("djangoql-introspection");
  if (textarea && introspection && window.DjangoQL) {
    window.auditlogSearch = window.DjangoQL.init({
      introspections: JSON.parse(introspection.textContent),
      selector: "textarea[data-djangoql]",
      autoResize: true,
      onSubmit: function () { textarea.form.submit(); },
    });
  } else if (textarea) {
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); textarea.form.submit(); }
    });
  }
  }
})();
