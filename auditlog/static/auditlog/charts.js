/* The volume chart (Chart.js) and the world map (Leaflet, countries from world-atlas), both
   for the current search. Colours per action come from the server, so they match everywhere. */
(function () {
  "use strict";

  function json(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) || {} : {};
  }
  var colors = json("action-colors");
  var labels = json("action-labels");
  var BUCKET_HOURS = 6;

  function colorOf(action) { return colors[action] || "#6a6e73"; }

  function showMessage(container, message) {
    var box = document.createElement("p");
    box.className = "map-message";
    box.textContent = message;
    container.replaceChildren(box);
  }

  /* --- Volume: events per action in 6-hour buckets --- */
  function bucketStart(date) {
    var start = new Date(date.getTime());
    start.setUTCMinutes(0, 0, 0);
    start.setUTCHours(start.getUTCHours() - (start.getUTCHours() % BUCKET_HOURS));
    return start;
  }

  function label(date) {
    return date.toLocaleString(undefined, {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  }

  function dayLabel(date) {
    return date.toLocaleDateString(undefined, {month: "short", day: "numeric"});
  }

  function drawVolume(canvas) {
    var days = parseInt(new URL(canvas.dataset.url, window.location.origin).searchParams.get("history_days") || "7", 10);
    fetch(canvas.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("The volume could not be loaded (" + response.status + ").");
        return response.json();
      })
      .then(function (rows) {
        // One slot per bucket from `days` ago until now, so empty periods show as zero.
        var first = bucketStart(new Date(Date.now() - days * 86400000));
        var slots = [];
        for (var t = first.getTime(); t <= Date.now(); t += BUCKET_HOURS * 3600000) slots.push(t);
        var index = {};
        slots.forEach(function (t, i) { index[t] = i; });
        var byAction = {};
        rows.forEach(function (row) {
          var t = new Date(row.time).getTime();
          if (!(t in index)) return;
          byAction[row.action] = byAction[row.action] || slots.map(function () { return 0; });
          byAction[row.action][index[t]] += row.count;
        });
        var datasets = Object.keys(byAction).sort().map(function (action) {
          return {label: labels[action] || action, data: byAction[action], backgroundColor: colorOf(action), stack: "events"};
        });
        var chart = new window.Chart(canvas, {
          type: "bar",
          data: {labels: slots.map(function (t) { return label(new Date(t)); }), datasets: datasets},
          options: {
            responsive: true,
            maintainAspectRatio: false,
            animation: false,
            scales: {
              x: {
                stacked: true,
                grid: {display: false},
                ticks: {
                  autoSkip: false,
                  maxRotation: 0,
                  // One label per day, at its first bucket; the tooltip has the exact time.
                  callback: function (value, i) { var d = new Date(slots[i]); return d.getUTCHours() < BUCKET_HOURS ? dayLabel(d) : ""; },
                },
              },
              y: {stacked: true, beginAtZero: true, ticks: {precision: 0}},
            },
            plugins: {
              legend: {position: "bottom", maxHeight: 70, labels: {boxWidth: 9, boxHeight: 9, font: {size: 11}}},
              tooltip: {mode: "index", filter: function (item) { return item.raw > 0; }},
            },
          },
        });
        canvas.dataset.bars = String(datasets.reduce(function (sum, set) { return sum + set.data.filter(Boolean).length; }, 0));
        canvas.dataset.ready = "true";
        window.auditlogVolume = chart;
      })
      .catch(function (error) { showMessage(canvas.parentElement, error.message); });
  }

  /* --- Map: where the matching events happened --- */
  function narrowedSearch(container, lat, long) {
    var params = container.dataset.narrow ? new URLSearchParams() : new URLSearchParams(window.location.search);
    var current = (container.dataset.search || params.get("search") || "").trim();
    var place = "context.geo.lat = " + lat + " and context.geo.long = " + long;
    params.set("search", current ? "(" + current + ") and " + place : place);
    params.delete("page");
    return params;
  }

  function countIcon(count) {
    var size = count >= 1000 ? 44 : count >= 100 ? 38 : count >= 10 ? 32 : 26;
    return window.L.divIcon({
      html: '<span>' + count.toLocaleString() + "</span>",
      className: "map-count" + (count >= 1000 ? " large" : ""),
      iconSize: [size, size],
    });
  }

  function drawMap(container) {
    var L = window.L;
    var map = L.map(container, {worldCopyJump: true, minZoom: 1, maxZoom: 12, zoomSnap: 0.5, attributionControl: false})
      .setView([25, 10], 1.5);
    fetch(container.dataset.countries)
      .then(function (response) { return response.json(); })
      .then(function (world) {
        L.geoJSON(window.topojson.feature(world, world.objects.countries), {
          style: {color: "#ffffff", weight: 0.6, fillColor: "#d9d9d9", fillOpacity: 1},
          interactive: false,
        }).addTo(map);
      })
      .catch(function () { /* the points still show without country outlines */ });
    fetch(container.dataset.url, {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("The map could not be loaded (" + response.status + ").");
        return response.json();
      })
      .then(function (data) {
        var clusters = L.markerClusterGroup({
          showCoverageOnHover: false,
          maxClusterRadius: 45,
          iconCreateFunction: function (cluster) {
            var total = cluster.getAllChildMarkers().reduce(function (sum, marker) { return sum + marker.options.count; }, 0);
            return countIcon(total);
          },
        });
        data.points.forEach(function (point) {
          var marker = L.marker([point.lat, point.long], {icon: countIcon(point.count), count: point.count, title: point.count + " events"});
          marker.on("click", function () {
            var target = container.dataset.narrow || window.location.pathname;
            window.location = target + "?" + narrowedSearch(container, point.lat, point.long).toString();
          });
          clusters.addLayer(marker);
        });
        map.addLayer(clusters);
        container.dataset.points = String(data.points.length);
        container.dataset.ready = "true";
      })
      .catch(function (error) { showMessage(container, error.message); });
  }

  if (window.Chart) document.querySelectorAll("canvas[data-volume-chart]").forEach(drawVolume);
  if (window.L && window.L.markerClusterGroup) document.querySelectorAll("[data-event-map]").forEach(drawMap);
  if (!window.Chart || !window.L) {
    document.querySelectorAll("canvas[data-volume-chart], [data-event-map]").forEach(function (element) {
      showMessage(element.parentElement || element, "The chart and map libraries are not installed (run make assets).");
    });
  }
})();
