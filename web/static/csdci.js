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

  // The server draws the posterior heatmap; a live page fetches itself
  // again for it (parsed inert, swapped in).
  function swapHeatmap(id) {
    fetch("/bisections/" + encodeURIComponent(id)).then(function (r) {
      if (!r.ok) throw new Error("bisection " + id + ": HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("posterior-heat");
      var now = document.getElementById("posterior-heat");
      if (fresh && now) now.parentNode.replaceChild(document.importNode(fresh, true), now);
    }).catch(function (e) { window.__csdciErrors.push(String(e)); });
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
        swapHeatmap(id);
        var cancel = document.getElementById("cancel");
        if (cancel && !b.cancellable) cancel.disabled = true;
        var errorRow = document.getElementById("bisect-error-row");
        if (errorRow && b.error) {
          document.getElementById("bisect-error").textContent = b.error;
          errorRow.hidden = false;
        }
        var report = document.getElementById("report");
        if (b.report && !report.querySelector("table")) {
          report.appendChild(el("h2", "Report"));
          var t = el("table", null, "kv");
          [["result", b.report.status], ["culprit", (b.report.culprit || "") + " " + (b.report.culprit_subject || "")],
           ["confidence", (100 * b.report.confidence).toFixed(1) + " %"], ["Fixes:", b.report.fixes || ""],
           ["revert check", b.report.revert_check]].concat((b.fix_validations || []).map(function (f) {
            return ["fix " + short(f.commit), (f.verdict === "fixed" ? "FIXED" : "NOT FIXED") + ": " + f.fails + " failures in " + f.runs + " runs"];
          })).forEach(function (kv) {
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

  // An action: a same-origin POST of JSON with the token typed into the
  // page; its answer (and a link to what it started) shown as text.
  function postAction(url, body, out) {
    var headers = { "Content-Type": "application/json" };
    var tokenInput = document.getElementById("token");
    var token = tokenInput ? tokenInput.value : "";
    if (token) headers["X-Csdci-Token"] = token;
    out.textContent = "";
    out.setAttribute("data-status", "");
    return fetch(url, { method: "POST", headers: headers, body: body === null ? "" : JSON.stringify(body) })
      .then(function (r) {
        return r.json().then(function (j) {
          while (out.firstChild) out.removeChild(out.firstChild);
          out.appendChild(document.createTextNode(r.status + ": " + j.message));
          if (j.url) {
            out.appendChild(document.createTextNode(" "));
            var a = el("a", j.url);
            a.id = "action-link";
            a.href = j.url;
            out.appendChild(a);
          }
          out.setAttribute("data-status", String(r.status));
        });
      })
      .catch(function (e) { out.textContent = String(e); out.setAttribute("data-status", "error"); });
  }

  function specOf(form) {
    var spec = {};
    form.querySelectorAll("fieldset.spec input").forEach(function (i) { spec[i.name] = i.value.trim(); });
    return spec;
  }

  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (i) {
      if (!i.name || i.closest("fieldset.spec")) return;
      body[i.name] = i.type === "checkbox" ? i.checked : i.value.trim();
    });
    body.spec = specOf(form);
    return body;
  }

  function actionsPage() {
    var out = document.getElementById("action-result");
    document.querySelectorAll("form.action").forEach(function (form) {
      var button = form.querySelector("button.start");
      if (!button) return;
      button.addEventListener("click", function () {
        postAction(form.getAttribute("data-url"), formBody(form), out);
      });
    });
  }

  function cancelButton(buttonId, url) {
    var button = document.getElementById(buttonId);
    if (!button) return;
    button.addEventListener("click", function () {
      postAction(url || button.form.getAttribute("data-url"), null, document.getElementById("action-result"));
    });
  }

  function jobPage() {
    var cancel = document.getElementById("cancel-night");
    if (cancel) {
      cancelButton("cancel-night", "/api/v1/jobs/" + encodeURIComponent(cancel.form.getAttribute("data-job")) + "/cancel");
    }
    var button = document.getElementById("rerun");
    if (!button) return;
    var form = button.form;
    var out = document.getElementById("action-result");
    button.addEventListener("click", function () {
      var job = form.getAttribute("data-job");
      postAction("/api/v1/jobs/" + encodeURIComponent(job) + "/rerun", null, out);
    });
  }

  // The overview's tables, fetched again and swapped in on every change
  // (the server's escaped HTML, parsed inert: scripts in it never run).
  var OVERVIEW_PARTS = ["jobs", "regressions", "runs", "bisections", "series"];

  function overviewPage() {
    var last = null, busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch("/", { headers: { "Accept": "text/html" } }).then(function (r) {
        if (!r.ok) throw new Error("overview: HTTP " + r.status);
        return r.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        OVERVIEW_PARTS.forEach(function (id) {
          var now = document.getElementById(id), fresh = doc.getElementById(id);
          if (now && fresh) now.parentNode.replaceChild(document.importNode(fresh, true), now);
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
        busy = false;
        if (again) { again = false; refresh(); }
      }).catch(function (e) { busy = false; window.__csdciErrors.push(String(e)); });
    }
    subscribe(function (p) {
      var key = JSON.stringify(p);
      if (last !== null && key !== last) refresh();
      last = key;
    });
  }

  function lineSpan(l) {
    var s = el("span", null, "line fresh" + (l.finding === null || l.finding === undefined ? "" : " hit"));
    s.id = "L" + l.n;
    if (l.finding !== null && l.finding !== undefined) s.setAttribute("data-finding", String(l.finding));
    var a = el("a", l.n, "ln");
    a.href = "#L" + l.n;
    s.appendChild(a);
    s.appendChild(document.createTextNode(l.text + "\n"));
    return s;
  }

  function liveProgress(b) {
    var sec = document.getElementById("live-bisection");
    if (!sec) {
      sec = el("section");
      sec.id = "live-bisection";
      var h = el("h2");
      var a = el("a", "Bisection #" + b.id);
      a.href = "/bisections/" + encodeURIComponent(b.id);
      h.appendChild(a);
      h.appendChild(document.createTextNode(" "));
      var st = el("span"); st.id = "live-bisect-status"; h.appendChild(st);
      h.appendChild(document.createTextNode(", "));
      var n = el("span"); n.id = "live-step-count"; h.appendChild(n);
      h.appendChild(document.createTextNode(" steps"));
      sec.appendChild(h);
      var t = el("table", null, "steps"); t.id = "live-steps";
      var tr = el("tr");
      ["step", "kind", "commit", "attempt", "status", "outcome", "artifact", "titles", "seconds", "leading", "posterior"]
        .forEach(function (c) { tr.appendChild(el("th", c)); });
      var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead); t.appendChild(el("tbody"));
      sec.appendChild(t);
      var pre = document.getElementById("live-console");
      pre.parentNode.insertBefore(sec, pre.previousElementSibling);
    }
    sec.setAttribute("data-bisection", String(b.id));
    document.getElementById("live-bisect-status").textContent = b.status;
    document.getElementById("live-step-count").textContent = String(b.step_count);
    var tbody = sec.querySelector("tbody");
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    b.steps.forEach(function (s) { tbody.appendChild(stepRow(s)); });
  }

  function liveMark(m) {
    var line = document.getElementById("L" + m.line);
    if (line) {
      line.classList.add("hit");
      line.setAttribute("data-finding", String(m.ordinal));
    }
    var list = document.getElementById("live-findings");
    if (list.querySelector('li[data-line="' + Number(m.line) + '"]')) return;
    var li = el("li");
    li.setAttribute("data-line", String(m.line));
    var a = el("a", "line " + m.line);
    a.href = "#L" + m.line;
    li.appendChild(a);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", m.kind, "kind"));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", m.title, "title"));
    list.appendChild(li);
  }

  // Lines a live console keeps (the oldest go).
  var LIVE_KEEP = 5000;

  function livePage(id) {
    var pre = document.getElementById("live-console");
    var status = document.getElementById("live-status");
    var count = document.getElementById("live-lines");
    pre.scrollTop = pre.scrollHeight;
    if (!window.EventSource) return;
    var url = "/api/v1/runs/" + encodeURIComponent(id) + "/live/events?offset=" +
      encodeURIComponent(pre.getAttribute("data-offset"));
    var src = new EventSource(url);
    function handle(ev) {
      var c;
      try { c = JSON.parse(ev.data); } catch (e) { window.__csdciErrors.push(String(e)); return; }
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 40;
      c.lines.forEach(function (l) { pre.appendChild(lineSpan(l)); });
      c.marks.forEach(liveMark);
      while (pre.childElementCount > LIVE_KEEP) pre.removeChild(pre.firstElementChild);
      if (c.lines.length) count.textContent = String(c.lines[c.lines.length - 1].n);
      status.textContent = c.status;
      status.className = "st-" + c.status;
      if (c.bisection) liveProgress(c.bisection);
      if (stick) pre.scrollTop = pre.scrollHeight;
    }
    src.addEventListener("console", handle);
    src.addEventListener("end", function (ev) { handle(ev); src.close(); });
    window.addEventListener("beforeunload", function () { src.close(); });
  }

  function start() {
    var page = document.body.getAttribute("data-page");
    var id = document.body.getAttribute("data-id");
    if (page === "bisection") { bisectionPage(id); cancelButton("cancel"); }
    else if (page === "actions") actionsPage();
    else if (page === "job") jobPage();
    else if (page === "overview") overviewPage();
    else if (page === "live") livePage(id);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
