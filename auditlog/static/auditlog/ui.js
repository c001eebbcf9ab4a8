/* The frame's behaviour, loaded in <head> so the chosen theme applies before the first paint:
   the theme switch (light, dark or the system's, remembered in localStorage), the collapsible
   navigation of narrow screens, and copying a token's key. */
(function () {
  "use strict";

  var root = document.documentElement;
  var STORAGE_KEY = "auditlog-theme";
  var THEMES = ["system", "light", "dark"];
  root.classList.add("js");

  function storedTheme() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return THEMES.indexOf(value) >= 0 ? value : "system";
    } catch (error) {
      return "system";  // storage refused (private mode): follow the system
    }
  }

  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }

  /* The theme in force: "light" or "dark", whatever the choice. */
  function effectiveTheme(choice) {
    if (choice === "light" || choice === "dark") return choice;
    return systemDark() ? "dark" : "light";
  }

  function applyTheme(choice) {
    root.dataset.themeChoice = choice;
    root.dataset.theme = effectiveTheme(choice);
    // Charts draw on a canvas: they read the theme's colours from the CSS variables.
    if (window.Chart && window.Chart.defaults) {
      var style = getComputedStyle(root);
      window.Chart.defaults.color = style.getPropertyValue("--chart-text").trim();
      window.Chart.defaults.borderColor = style.getPropertyValue("--chart-grid").trim();
      Object.values(window.Chart.instances || {}).forEach(function (chart) { chart.update(); });
    }
    document.dispatchEvent(new CustomEvent("auditlog:theme", {detail: {theme: root.dataset.theme}}));
  }

  applyTheme(storedTheme());
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      applyTheme(storedTheme());
    });
  }

  function chooseTheme(choice) {
    try {
      if (choice === "system") window.localStorage.removeItem(STORAGE_KEY);
      else window.localStorage.setItem(STORAGE_KEY, choice);
    } catch (error) { /* not remembered, still applied */ }
    applyTheme(choice);
  }

  /* --- Collapsible navigation (narrow screens) --- */
  function navOpen() { return root.classList.contains("nav-open"); }

  function setNav(open, focusBack) {
    var button = document.querySelector("[data-nav-toggle]");
    var sidebar = document.getElementById("sidebar");
    if (!button || !sidebar) return;
    root.classList.toggle("nav-open", open);
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      var first = sidebar.querySelector("a");
      if (first) first.focus();
    } else if (focusBack) {
      button.focus();
    }
  }

  /* --- Copying a token's key: fetched from the API (permission-checked, audited) --- */
  function copyKey(button) {
    var status = document.querySelector("[data-copy-status]");
    var say = function (message) {
      if (status) status.textContent = message;
      if (window.auditlogToast) window.auditlogToast(message);
    };
    button.disabled = true;
    fetch(button.dataset.copyKey, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 403) throw new Error("You may not view this token's key.");
        if (!response.ok) throw new Error("The key could not be fetched.");
        return response.json();
      })
      .then(function (body) {
        if (!navigator.clipboard) throw new Error("The clipboard is not available in this browser.");
        return navigator.clipboard.writeText(body.key);
      })
      .then(function () { say("Copied the key of " + button.dataset.tokenIdentifier + " to the clipboard."); })
      .catch(function (error) { say("Not copied: " + error.message); })
      .finally(function () { button.disabled = false; });
  }

  /* A box that scrolls (a wide table on a phone, a long JSON block) must be reachable with the
     keyboard to scroll it: it takes the focus itself unless something inside it can. */
  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";
  function focusableScrollers() {
    document.querySelectorAll(".card, pre, .table-scroll").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      var style = getComputedStyle(box);
      scrolls = scrolls && (/(auto|scroll)/.test(style.overflowX + style.overflowY));
      if (box.dataset.scrollFocus) {
        if (!scrolls) { box.removeAttribute("tabindex"); delete box.dataset.scrollFocus; }
      } else if (scrolls && !box.hasAttribute("tabindex") && !box.querySelector(FOCUSABLE)) {
        box.tabIndex = 0;
        box.dataset.scrollFocus = "true";
      }
    });
  }
  var scrollTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(focusableScrollers, 150);
  });
  window.addEventListener("load", focusableScrollers);
  window.auditlogFocusableScrollers = focusableScrollers;

  /* --- The transport form shows only the fields of the chosen mode --- */
  function showModeFields() {
    var mode = document.querySelector("[data-transport-form] [name=mode]");
    if (!mode) return;
    var update = function () {
      document.querySelectorAll("[data-mode-fields]").forEach(function (fieldset) {
        fieldset.hidden = fieldset.dataset.modeFields.split(" ").indexOf(mode.value) < 0;
      });
    };
    mode.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("[data-theme-switch]");
    if (select) {
      select.value = storedTheme();
      select.addEventListener("change", function () { chooseTheme(select.value); });
    }
    var toggle = document.querySelector("[data-nav-toggle]");
    if (toggle) toggle.hidden = false;
    showModeFields();
    applyTheme(storedTheme());  // again, now that the chart library has loaded
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-nav-toggle], [data-copy-key]");
    if (target && target.matches("[data-nav-toggle]")) { setNav(!navOpen(), false); return; }
    if (target && target.matches("[data-copy-key]")) { copyKey(target); return; }
    // A click outside the open navigation closes it.
    if (navOpen() && !event.target.closest("#sidebar")) setNav(false, false);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && navOpen()) setNav(false, true);
  });

  window.auditlogTheme = {choose: chooseTheme, current: function () { return root.dataset.theme; }};
})();
