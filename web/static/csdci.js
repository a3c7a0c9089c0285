// csdci dashboard: live updates (server-sent events) and the bisection chart.
// Everything received is inserted as text (textContent), never as HTML.
"use strict";
window.__csdciErrors = window.__csdciErrors || [];
window.addEventListener("error", function (e) {
  window.__csdciErrors.push(String(e.message || e.type));
});
window.addEventListener("unhandledrejection", function (e) {
  window.__csdciErrors.push("unhandled rejection: " + String(e.reason));
});
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csdciErrors.push("CSP violation: " + e.violatedDirective + " " + e.blockedURI);
});

(function () {
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function short(s) { return s ? String(s).slice(0, 12) : ""; }

  function subscribe(onChange) {
    if (!window.EventSource) return;
    var src = new EventSource("/api/v1/events");
    src.addEventListener("change", function (ev) {
      try { onChange(JSON.parse(ev.data).pulse); } catch (e) { window.__csdciErrors.push(String(e)); }
    });
    window.addEventListener("beforeunload", function () { src.close(); });
  }

  function drawPosterior(svg, steps) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var pts = steps.filter(function (s) { return s.confidence !== null && s.confidence !== undefined; });
    var axis = document.createElementNS(SVG, "line");
    axis.setAttribute("class", "axis");
    axis.setAttribute("x1", "20"); axis.setAttribute("y1", "110");
    axis.setAttribute("x2", "590"); axis.setAttribute("y2", "110");
    svg.appendChild(axis);
    if (pts.length === 0) return;
    var dx = pts.length > 1 ? 560 / (pts.length - 1) : 0;
    var coords = pts.map(function (s, i) {
      return [25 + i * dx, 110 - 100 * Math.max(0, Math.min(1, s.confidence))];
    });
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", coords.map(function (c) { return c[0].toFixed(1) + "," + c[1].toFixed(1); }).join(" "));
    svg.appendChild(line);
    coords.forEach(function (c, i) {
      var dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", c[0].toFixed(1)); dot.setAttribute("cy", c[1].toFixed(1)); dot.setAttribute("r", "3");
      var t = document.createElementNS(SVG, "title");
      t.textContent = "step " + pts[i].id + ": " + short(pts[i].top) + " " + (100 * pts[i].confidence).toFixed(1) + " %";
      dot.appendChild(t);
      svg.appendChild(dot);
    });
  }

  function stepRow(s) {
    var tr = el("tr", null, "step");
    tr.setAttribute("data-step", String(s.id));
    var cells = [s.id, s.kind, short(s.commit), s.attempt, s.status, s.outcome, s.artifact,
      (s.titles || []).join("; "), s.seconds === null || s.seconds === undefined ? "" : s.seconds.toFixed(1),
      short(s.top), s.confidence === null || s.confidence === undefined ? "" : s.confidence.toFixed(3)];
    var classes = ["", "", "sha", "", "", "", "", "title", "", "sha", ""];
    cells.forEach(function (c, i) { tr.appendChild(el("td", c === null || c === undefined ? "" : c, classes[i])); });
    return tr;
  }

  function bisectionPage(id) {
    var svg = document.getElementById("posterior-chart");
    var tbody = document.querySelector("#steps tbody");
    var status = document.getElementById("bisect-status");
    var busy = false;
    function refresh() {
      if (busy) return;
      busy = true;
      fetch("/api/v1/bisections/" + encodeURIComponent(id)).then(function (r) {
        if (!r.ok) throw new Error("bisection " + id + ": HTTP " + r.status);
        return r.json();
      }).then(function (b) {
        busy = false;
        status.textContent = b.status;
        var have = {};
        tbody.querySelectorAll("tr.step").forEach(function (tr) { have[tr.getAttribute("data-step")] = tr; });
        b.steps.forEach(function (s) {
          var row = stepRow(s);
          var old = have[String(s.id)];
          if (old) {
            tbody.replaceChild(row, old);
          } else {
            row.className += " new";
            tbody.appendChild(row);
          }
        });
        drawPosterior(svg, b.steps);
        var report = document.getElementById("report");
        if (b.report && !report.querySelector("table")) {
          report.appendChild(el("h2", "Report"));
          var t = el("table", null, "kv");
          [["result", b.report.status], ["culprit", (b.report.culprit || "") + " " + (b.report.culprit_subject || "")],
           ["confidence", (100 * b.report.confidence).toFixed(1) + " %"], ["Fixes:", b.report.fixes || ""],
           ["revert check", b.report.revert_check]].forEach(function (kv) {
            var tr = el("tr"); tr.appendChild(el("th", kv[0])); tr.appendChild(el("td", kv[1])); t.appendChild(tr);
          });
          report.appendChild(t);
        }
      }).catch(function (e) { busy = false; window.__csdciErrors.push(String(e)); });
    }
    refresh();
    var last = null;
    subscribe(function (p) {
      var key = p.max_step_id + "/" + p.bisection_updates;
      if (last !== null && key !== last) refresh();
      last = key;
    });
  }

  function jobPage() {
    var button = document.getElementById("rerun");
    if (!button) return;
    var form = button.form;
    var out = document.getElementById("action-result");
    button.addEventListener("click", function () {
      var job = form.getAttribute("data-job");
      var headers = {};
      var token = document.getElementById("token").value;
      if (token) headers["X-Csdci-Token"] = token;
      fetch("/api/v1/jobs/" + encodeURIComponent(job) + "/rerun", { method: "POST", headers: headers })
        .then(function (r) { return r.json().then(function (j) { out.textContent = r.status + ": " + j.message; }); })
        .catch(function (e) { out.textContent = String(e); });
    });
  }

  function overviewPage() {
    var last = null;
    subscribe(function (p) {
      if (last !== null && p.max_run_id > last) {
        var h = document.querySelector("#runs h2");
        if (h && !document.getElementById("new-runs")) {
          var a = el("a", " new runs: reload", "");
          a.id = "new-runs"; a.href = "/";
          h.appendChild(a);
        }
      }
      last = p.max_run_id;
    });
  }

  function start() {
    var page = document.body.getAttribute("data-page");
    var id = document.body.getAttribute("data-id");
    if (page === "bisection") bisectionPage(id);
    else if (page === "job") jobPage();
    else if (page === "overview") overviewPage();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
