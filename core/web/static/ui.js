// The CRM's small script: CSRF header for htmx, confirmations, charts, kanban drag and drop.
// Loaded as a file (the Content-Security-Policy forbids inline script); no eval.
(function () {
  "use strict";
  var csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // Buttons with data-confirm ask before their form is sent.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // "Select all" checkboxes of a list.
  document.addEventListener("change", function (event) {
    if (event.target.matches(".select-all")) {
      var table = event.target.closest("table");
      table.querySelectorAll('input[name="ids"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
  });

  function drawCharts(root) {
    if (!window.Chart) { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      canvas.dataset.drawn = "1";
      var data = JSON.parse(canvas.getAttribute("data-chart"));
      new window.Chart(canvas, {
        type: canvas.getAttribute("data-chart-type") || "bar",
        data: {
          labels: data.labels,
          // a series may set its own type (a line of actuals over forecast bars) and y axis
          datasets: data.series.map(function (s) {
            var set = { label: s.label, data: s.data };
            if (s.type) { set.type = s.type; }
            if (s.axis) { set.yAxisID = s.axis; }
            return set;
          })
        },
        options: {
          responsive: true, animation: false, locale: document.documentElement.lang,
          scales: data.percent ? { y: { min: 0, max: 100 } } : undefined
        }
      });
    });
  }
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });

  // Kanban: drag a card onto another column; the move is saved like the card's own form.
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".card[draggable]");
    if (!card) { return; }
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
  });
  document.addEventListener("dragover", function (event) {
    var column = event.target.closest && event.target.closest(".kanban-column");
    if (column && dragged) {
      event.preventDefault();
      column.classList.add("drop-target");
    }
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest(".kanban-column");
    if (column) { column.classList.remove("drop-target"); }
  });
  document.addEventListener("drop", function (event) {
    var column = event.target.closest && event.target.closest(".kanban-column");
    if (!column || !dragged) { return; }
    event.preventDefault();
    column.classList.remove("drop-target");
    var card = dragged;
    dragged = null;
    if (card.closest(".kanban-column") === column) { return; }
    var board = column.closest(".kanban");
    var body = new URLSearchParams();
    body.set("group", column.dataset.group);
    body.set("version", card.dataset.version || "");
    fetch("/ui/" + board.dataset.resource + "/" + card.dataset.id + "/move", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf(), "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
      credentials: "same-origin"
    }).then(function (response) {
      if (response.ok) {
        column.appendChild(card);
        window.location.reload();
      } else {
        response.text().then(function (text) {
          var detail = "";
          try { detail = JSON.parse(text).detail; } catch (e) { detail = ""; }
          window.alert(detail || board.dataset.error || "The card could not be moved; reload the page.");
        });
      }
    });
  });

  // Navigation badges (unread notifications...): fetched after load, every minute, and when a
  // page fires "crm:badges" after changing what they count.
  function refreshBadges() {
    document.querySelectorAll("[data-badge]").forEach(function (badge) {
      fetch(badge.getAttribute("data-badge"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          badge.textContent = String(data.count);
          badge.hidden = !data.count;
        })
        .catch(function () {});
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    refreshBadges();
    window.setInterval(refreshBadges, 60000);
  });
  document.addEventListener("crm:badges", refreshBadges);
  document.addEventListener("htmx:afterRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.closest && source.closest("[data-refresh-badges]")) { refreshBadges(); }
  });
})();
