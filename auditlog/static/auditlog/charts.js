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

  function colorOf(action) { return colors[action] || "#6a6e73"; }

  function showMessage(container, message) {
    var box = document.createElement("p");
    box.className = "map-message";
    box.textContent = message;
    container.replaceChildren(box);
  }

  /* --- Volume: events per action over the whole period of the search --- */
  function label(date, bucketHours) {
    var options = bucketHours < 24
      ? {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC"}
      : {year: "numeric", month: "short", day: "numeric", timeZone: "UTC"};
    return date.toLocaleString(undefined, options);
  }

  function tickLabel(date, bucketHours) {
    if (bucketHours < 24 && date.getUTCHours() !== 0) {  // within a day: the hour (UTC)
      return date.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit", timeZone: "UTC"});
    }
    return date.toLocaleDateString(undefined, {month: "short", day: "numeric", timeZone: "UTC"});
  }

  function dayText(date) {
    return date.toLocaleDateString(undefined, {year: "numeric", month: "short", day: "numeric", timeZone: "UTC"});
  }

  function periodText(data) {
    if (!data.start) return "no matching events";
    var hours = data.bucket_seconds / 3600;
    var size = hours < 24 ? hours + "-hour" : hours === 24 ? "daily" : "weekly";
    return dayText(new Date(data.start)) + " – " + dayText(new Date(data.end)) + ", " + size + " bars";
  }

  /* A legend of our own: every type the tooltip can show is listed (Chart.js's legend cut
     entries off at its height), each with its colour; a click hides or shows the type. */
  function drawLegend(canvas, chart) {
    var list = document.createElement("ul");
    list.className = "chart-legend";
    list.setAttribute("data-chart-legend", "");
    chart.data.datasets.forEach(function (set, index) {
      // A list item holding a toggle button (a list may only hold list items, for axe).
      var item = document.createElement("li");
      item.setAttribute("data-action", set.action);
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-pressed", "true");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = set.backgroundColor;
      button.append(swatch, document.createTextNode(set.label));
      item.appendChild(button);
      button.addEventListener("click", function () {
        var visible = chart.isDatasetVisible(index);
        chart.setDatasetVisibility(index, !visible);
        item.classList.toggle("off", visible);
        button.setAttribute("aria-pressed", String(!visible));
        chart.update();
      });
      list.appendChild(item);
    });
    var box = canvas.parentElement;
    var old = box.parentElement.querySelector("[data-chart-legend]");
    if (old) old.remove();
    box.insertAdjacentElement("afterend", list);
  }

  function drawVolume(canvas) {
    fetch(canvas.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("The volume could not be loaded (" + response.status + ").");
        return response.json();
      })
      .then(function (data) {
        var step = data.bucket_seconds * 1000;
        var bucketHours = data.bucket_seconds / 3600;
        var first = data.start ? new Date(data.start).getTime() : Date.now();
        var slots = [];
        for (var i = 0; i < Math.max(data.buckets, 1); i++) slots.push(first + i * step);
        var byAction = {};
        var totals = {};
        data.rows.forEach(function (row) {
          var index = Math.round((new Date(row.time).getTime() - first) / step);
          if (index < 0 || index >= slots.length) return;
          byAction[row.action] = byAction[row.action] || slots.map(function () { return 0; });
          byAction[row.action][index] += row.count;
          totals[row.action] = (totals[row.action] || 0) + row.count;
        });
        // The biggest types at the bottom of each bar, and first in the legend.
        var actions = Object.keys(byAction).sort(function (a, b) { return totals[b] - totals[a] || (a < b ? -1 : 1); });
        var datasets = actions.map(function (action) {
          return {label: labels[action] || action, action: action, data: byAction[action], backgroundColor: colorOf(action), stack: "events"};
        });
        var chart = new window.Chart(canvas, {
          type: "bar",
          data: {labels: slots.map(function (t) { return label(new Date(t), bucketHours); }), datasets: datasets},
          options: {
            responsive: true,
            maintainAspectRatio: false,
            animation: false,
            scales: {
              x: {
                stacked: true,
                grid: {display: false},
                ticks: {
                  autoSkip: true,
                  maxTicksLimit: 10,
                  maxRotation: 0,
                  callback: function (value, i) { return tickLabel(new Date(slots[i]), bucketHours); },
                },
              },
              y: {stacked: true, beginAtZero: true, ticks: {precision: 0}},
            },
            plugins: {
              legend: {display: false},
              tooltip: {mode: "index", filter: function (item) { return item.raw > 0; }},
            },
          },
        });
        drawLegend(canvas, chart);
        var period = canvas.closest(".card") && canvas.closest(".card").querySelector("[data-chart-period]");
        if (period) period.textContent = periodText(data);
        canvas.dataset.bars = String(datasets.reduce(function (sum, set) { return sum + set.data.filter(Boolean).length; }, 0));
        canvas.dataset.start = data.start || "";
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

  /* world-atlas keeps its shapes in spherical coordinates, without cutting them at the
     antimeridian (d3 does that while projecting; Leaflet does not): a ring that crosses 180°
     (Russia, Fiji) would be drawn straight across the whole map, and Antarctica, which goes
     round the pole, would fill a band. Each ring is made continuous (longitudes past 180°
     allowed), a ring round a pole is closed through that pole, and a shape that reaches past
     180° is drawn once more on the other side. */
  function continuousRing(ring) {
    var out = [];
    var shift = 0;
    for (var i = 0; i < ring.length; i++) {
      var lon = ring[i][0] + shift;
      if (out.length) {
        var previous = out[out.length - 1][0];
        while (lon - previous > 180) { lon -= 360; shift -= 360; }
        while (previous - lon > 180) { lon += 360; shift += 360; }
      }
      out.push([lon, ring[i][1]]);
    }
    var first = out[0], last = out[out.length - 1];
    if (Math.abs(last[0] - first[0]) > 180) {  // round a pole: close the ring through it
      var pole = out.reduce(function (sum, point) { return sum + point[1]; }, 0) < 0 ? -89.9 : 89.9;
      out.push([last[0], pole], [first[0], pole], first);
    }
    return out;
  }

  function flat(polygon) {  // a ring at one latitude (the pole itself) draws nothing useful
    return polygon[0].every(function (point) { return Math.abs(point[1] - polygon[0][0][1]) < 1e-6; });
  }

  function shifted(polygon, by) {
    return polygon.map(function (ring) { return ring.map(function (point) { return [point[0] + by, point[1]]; }); });
  }

  function unwrapped(geometry) {
    if (!geometry) return geometry;
    var polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.type === "MultiPolygon" ? geometry.coordinates : null;
    if (!polygons) return geometry;
    var out = [];
    polygons.forEach(function (polygon) {
      var fixed = polygon.map(continuousRing);
      if (flat(fixed)) return;
      out.push(fixed);
      var lons = fixed[0].map(function (point) { return point[0]; });
      if (Math.max.apply(null, lons) > 180) out.push(shifted(fixed, -360));
      if (Math.min.apply(null, lons) < -180) out.push(shifted(fixed, 360));
    });
    return {type: "MultiPolygon", coordinates: out};
  }

  function countries(world) {
    var collection = window.topojson.feature(world, world.objects.countries);
    collection.features.forEach(function (feature) { feature.geometry = unwrapped(feature.geometry); });
    return collection;
  }

  /* Land and borders at every zoom, from the product's own files: the coarse shapes for the
     world, finer ones (fetched once, when first needed) as the map zooms in, and country names
     from zoom 3, so a zoomed-in map is never a featureless grey. */
  var DETAIL = [{zoom: 0, key: "countries"}, {zoom: 3, key: "countriesDetail"}, {zoom: 5, key: "countriesFine"}];
  var LAND = {color: "#ffffff", weight: 0.8, fillColor: "#e4e1d8", fillOpacity: 1};

  function countryLayers(map, container) {
    var L = window.L;
    var layers = {};
    var shown = null;
    var labels = L.layerGroup();
    function load(level) {
      if (!layers[level.key]) {
        var url = container.dataset[level.key];
        if (!url) return Promise.resolve(null);
        layers[level.key] = fetch(url)
          .then(function (response) { return response.json(); })
          .then(function (world) {
            return L.geoJSON(countries(world), {style: LAND, interactive: false});
          });
      }
      return layers[level.key];
    }
    function levelFor(zoom) {
      var chosen = DETAIL[0];
      DETAIL.forEach(function (level) { if (zoom >= level.zoom && container.dataset[level.key]) chosen = level; });
      return chosen;
    }
    function show() {
      var level = levelFor(map.getZoom());
      load(level).then(function (layer) {
        if (!layer || shown === layer || levelFor(map.getZoom()) !== level) return;
        if (shown) map.removeLayer(shown);
        layer.addTo(map);
        shown = layer;
        container.dataset.detail = level.key;
        labelCountries(layer);
      }).catch(function () { /* the points still show without country outlines */ });
      if (map.getZoom() >= 3) labels.addTo(map); else map.removeLayer(labels);
    }
    function labelCountries(layer) {
      labels.clearLayers();
      layer.eachLayer(function (country) {
        var name = country.feature.properties && country.feature.properties.name;
        if (!name) return;
        var bounds = country.getBounds();
        if (bounds.getEast() - bounds.getWest() > 200) return;  // Russia's two copies, Antarctica
        labels.addLayer(L.marker(bounds.getCenter(), {
          icon: L.divIcon({className: "map-country-label", html: "", iconSize: null}),
          interactive: false, keyboard: false,
        }).bindTooltip(name, {permanent: true, direction: "center", className: "map-country-name"}));
      });
    }
    map.on("zoomend", show);
    show();
  }

  function drawMap(container) {
    var L = window.L;
    var map = L.map(container, {worldCopyJump: true, minZoom: 1, maxZoom: 10, zoomSnap: 0.5, attributionControl: false})
      .setView([25, 10], 1.5);
    window.auditlogMap = map;
    container.auditlogMap = map;
    countryLayers(map, container);
    loadPoints(container, map, true);
  }

  function loadPoints(container, map, first) {
    var L = window.L;
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
        if (container.auditlogClusters) map.removeLayer(container.auditlogClusters);
        container.auditlogClusters = clusters;
        map.addLayer(clusters);
        if (first && data.points.length) {
          // Zoom to the results, with room for a cluster's badge at every edge.
          var bounds = L.latLngBounds(data.points.map(function (point) { return [point.lat, point.long]; }));
          map.fitBounds(bounds, {padding: [36, 36], maxZoom: 6});
        }
        container.dataset.points = String(data.points.length);
        container.dataset.ready = "true";
      })
      .catch(function (error) { showMessage(container, error.message); });
  }

  /* --- Live: new events arrived (live.js); refresh both, at most every few seconds (the
     map keeps the place the user is looking at) --- */
  var REFRESH_MS = 3000;
  var refreshTimer = null;
  var lastRefresh = 0;
  function refresh() {
    refreshTimer = null;
    lastRefresh = Date.now();
    if (window.Chart) {
      document.querySelectorAll("canvas[data-volume-chart]").forEach(function (canvas) {
        var chart = window.Chart.getChart(canvas);
        if (chart) chart.destroy();
        drawVolume(canvas);
      });
    }
    document.querySelectorAll("[data-event-map]").forEach(function (container) {
      if (container.auditlogMap) loadPoints(container, container.auditlogMap, false);
    });
    document.querySelectorAll("canvas[data-volume-chart], [data-event-map]").forEach(function (element) {
      element.dataset.refreshed = String(Number(element.dataset.refreshed || 0) + 1);
    });
  }
  document.addEventListener("auditlog:events-arrived", function () {
    if (refreshTimer) return;
    refreshTimer = window.setTimeout(refresh, Math.max(0, lastRefresh + REFRESH_MS - Date.now()));
  });

  if (window.Chart) document.querySelectorAll("canvas[data-volume-chart]").forEach(drawVolume);
  if (window.L && window.L.markerClusterGroup) document.querySelectorAll("[data-event-map]").forEach(drawMap);
  if (!window.Chart || !window.L) {
    document.querySelectorAll("canvas[data-volume-chart], [data-event-map]").forEach(function (element) {
      showMessage(element.parentElement || element, "The chart and map libraries are not installed (run make assets).");
    });
  }
})();
