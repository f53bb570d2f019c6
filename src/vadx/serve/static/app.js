// vadx web page: upload → detect → timeline → explain a window → the report, in one page.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { video: null, detection: null, scores: null, model: null };

  function token() { return sessionStorage.getItem("vadx-token") || ""; }
  function withToken(url) {
    return token() ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token()) : url;
  }
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (token()) opts.headers.Authorization = "Bearer " + token();
    const response = await fetch(path, opts);
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
    return body;
  }
  function say(element, text, error) {
    element.textContent = text;
    element.classList.toggle("error", !!error);
  }
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function waitFor(job, bar, status, what) {
    const cancel = document.createElement("button");
    cancel.textContent = "Cancel";
    cancel.className = "cancel";
    cancel.addEventListener("click", function () {
      cancel.disabled = true;
      api("api/jobs/" + job.id + "/cancel", { method: "POST" }).catch((err) => say(status, err.message, true));
    });
    status.after(cancel);
    try {
      return await poll(job, bar, status, what);
    } finally {
      cancel.remove();
    }
  }

  async function poll(job, bar, status, what) {
    while (job.state === "queued" || job.state === "running") {
      bar.style.width = Math.round(100 * job.progress) + "%";
      say(status, what + ": " + job.state + (job.stage ? " (" + job.stage + ")" : "") +
        " " + Math.round(100 * job.progress) + " %");
      await sleep(300);
      job = await api("api/jobs/" + job.id);
    }
    bar.style.width = job.state === "done" ? "100%" : "0";
    if (job.state !== "done") throw new Error(what + " " + job.state + (job.error ? ": " + job.error : ""));
    return job;
  }

  // ------------------------------------------------------------------ upload and detect
  function upload(file) {
    return new Promise(function (resolve, reject) {
      const form = new FormData();
      form.append("file", file);
      const request = new XMLHttpRequest();
      request.open("POST", "api/videos");
      if (token()) request.setRequestHeader("Authorization", "Bearer " + token());
      request.upload.onprogress = function (e) {
        if (e.lengthComputable) $("upload-bar").style.width = Math.round(100 * e.loaded / e.total) + "%";
      };
      request.onload = function () {
        let body = {};
        try { body = JSON.parse(request.responseText); } catch (err) { /* not JSON */ }
        if (request.status === 201) resolve(body);
        else reject(new Error(body.error || request.statusText || "upload failed"));
      };
      request.onerror = () => reject(new Error("the upload was interrupted"));
      request.send(form);
    });
  }

  async function detectVideo(video) {
    state.video = video;
    const settings = { on: Number($("on").value), off: Number($("off").value),
      min_frames: Number($("min-frames").value), smooth: Number($("smooth").value) };
    const job = await api("api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind: "detect", video: video.id, model: state.model, detect: settings }) });
    await showDetection(await waitFor(job, $("upload-bar"), $("status"), "detection"));
  }

  async function showDetection(job) {
    state.detection = job;
    state.scores = await api("api/jobs/" + job.id + "/scores");
    const events = job.result.events;
    say($("status"), state.video.name + ": " + job.result.frames + " frames, " +
      events.length + " event(s)");
    $("video-name").textContent = "— " + state.video.name;
    drawTimeline();
    showDomain(job.result.domain);
    const rows = $("events").querySelector("tbody");
    rows.innerHTML = "";
    events.forEach(function (e) {
      const row = document.createElement("tr");
      row.innerHTML = "<td></td><td></td><td></td><td></td><td></td><td><button>Explain</button></td>";
      const cells = row.querySelectorAll("td");
      cells[0].textContent = e.class_name;
      cells[1].textContent = e.start_time.toFixed(2) + " s (frame " + e.start_frame + ")";
      cells[2].textContent = e.end_time.toFixed(2) + " s (frame " + e.end_frame + ")";
      cells[3].textContent = Math.round(100 * e.peak_probability) + " %";
      if (e.out_of_domain === null || e.out_of_domain === undefined) cells[4].textContent = "not checked";
      else {
        cells[4].textContent = Math.round(100 * (1 - e.out_of_domain)) + " % of frames";
        if (e.out_of_domain > 0) row.classList.add("unfamiliar");
      }
      // the event's most anomalous window, chosen by the server's rule (vadx explain --windows flagged)
      row.querySelector("button").addEventListener("click", () => explainSpan(e.window[0], e.window[1], e.class_name));
      rows.appendChild(row);
    });
    $("timeline-section").hidden = false;
  }

  // the domain check's verdict above the timeline: a warning when footage is unlike the
  // model's training data, a note when the model cannot tell
  function showDomain(domain) {
    const banner = $("domain-banner");
    banner.hidden = !(domain && domain.message);
    if (banner.hidden) return;
    banner.className = domain.checked ? "warning" : "note";
    banner.textContent = (domain.checked ? "Outside the model's domain: " : "Domain not checked: ") +
      domain.message + (domain.checked ? " (grey on the timeline)." : ".");
  }


  // ------------------------------------------------------------------ the timeline
  function drawTimeline() {
    const svg = $("timeline"), s = state.scores, n = s.anomaly.length;
    const x = (t) => (1000 * t / Math.max(n - 1, 1)).toFixed(1);
    const y = (v) => (170 - 160 * v).toFixed(1);
    let html = "";
    if (s.domain) {  // runs of frames outside the model's domain, shaded grey
      let first = -1;
      for (let t = 0; t <= n; t++) {
        const outside = t < n && s.domain[t] > 1;
        if (outside && first < 0) first = t;
        if (!outside && first >= 0) {
          html += '<rect class="outside" x="' + x(first) + '" y="5" width="' +
            Math.max(2, x(t - 1) - x(first)) + '" height="165" fill="#888" fill-opacity=".18"/>';
          first = -1;
        }
      }
    }
    state.detection.result.events.forEach(function (e) {
      html += '<rect class="event" x="' + x(e.start_frame) + '" y="5" width="' +
        Math.max(2, x(e.end_frame) - x(e.start_frame)) + '" height="165" fill="#e33" fill-opacity=".15"/>';
    });
    html += '<line x1="0" x2="1000" y1="' + y(s.on) + '" y2="' + y(s.on) + '" stroke="#e33" stroke-dasharray="6 4"/>';
    html += '<line x1="0" x2="1000" y1="' + y(s.off) + '" y2="' + y(s.off) + '" stroke="#999" stroke-dasharray="2 4"/>';
    html += '<polyline id="score-line" fill="none" stroke="#1f2a36" stroke-width="2" points="' +
      s.anomaly.map((v, t) => x(t) + "," + y(v)).join(" ") + '"/>';
    html += '<line id="cursor" x1="0" x2="0" y1="0" y2="180" stroke="#2a7ae2" visibility="hidden"/>';
    svg.innerHTML = html;
  }

  function frameAt(event) {
    const box = $("timeline").getBoundingClientRect();
    const n = state.scores.anomaly.length;
    return Math.max(0, Math.min(n - 1, Math.round((event.clientX - box.left) / box.width * (n - 1))));
  }

  $("timeline").addEventListener("mousemove", function (event) {
    if (!state.scores) return;
    const t = frameAt(event), s = state.scores;
    const cursor = $("cursor");
    cursor.setAttribute("x1", 1000 * t / Math.max(s.anomaly.length - 1, 1));
    cursor.setAttribute("x2", cursor.getAttribute("x1"));
    cursor.setAttribute("visibility", "visible");
    $("readout").textContent = "frame " + t + " · " + s.times[t].toFixed(2) + " s · anomaly " +
      Math.round(100 * s.anomaly[t]) + " % · " + s.classes.map((c, k) => c + " " +
      Math.round(100 * s.probabilities[t][k]) + " %").join(", ") +
      (s.domain ? " · domain score " + s.domain[t].toFixed(2) + (s.domain[t] > 1 ? " (outside)" : "") : "") +
      " — click to explain";
  });
  $("timeline").addEventListener("click", (event) => explainAt(frameAt(event), null));

  // ------------------------------------------------------------------ explanations
  // the window of detection centred on `frame`
  function explainAt(frame, className) {
    const s = state.scores, n = s.anomaly.length;
    const span = (s.window - 1) * s.step + 1;
    const start = Math.max(0, Math.min(n - span, frame - Math.floor(span / 2)));
    return explainSpan(start, Math.min(n - 1, start + span - 1), className);
  }

  async function explainSpan(start, end, className) {
    const methods = Array.from(document.querySelectorAll("#methods input:checked")).map((i) => i.value);
    $("explain-section").hidden = false;
    $("report").hidden = $("download").hidden = $("open").hidden = true;
    $("explain-title").textContent = "— frames " + start + "–" + end;
    try {
      if (!methods.length) throw new Error("choose at least one method");
      const job = await api("api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind: "explain", video: state.video.id, model: state.model, start: start,
          end: end, methods: methods, view: $("view").value, target: className || "predicted",
          detect: state.detection.params.detect }) });
      const done = await waitFor(job, $("explain-bar"), $("explain-status"), "explanation");
      const url = withToken("api/jobs/" + done.id + "/files/report.html");
      say($("explain-status"), "predicted " + done.result.predicted + " (" +
        Math.round(100 * done.result.probability) + " %), explained for " + done.result.target);
      $("report").src = url;
      $("download").href = url;
      $("open").href = url;
      $("report").hidden = $("download").hidden = $("open").hidden = false;
    } catch (err) {
      say($("explain-status"), err.message, true);
    }
  }

  // ------------------------------------------------------------------ start-up
  async function listVideos() {
    const list = $("videos");
    list.innerHTML = "";
    const videos = await api("api/videos");
    list.parentElement.open = videos.length > 0;
    for (const video of videos) {
      const item = document.createElement("li");
      item.textContent = video.name + " (" + video.num_frames + " frames)";
      const open = document.createElement("button");
      open.textContent = "open";
      open.addEventListener("click", async function () {
        const jobs = await api("api/jobs?video=" + video.id);
        const done = jobs.find((j) => j.kind === "detect" && j.state === "done");
        state.video = video;
        try {
          if (done) await showDetection(done); else await detectVideo(video);
        } catch (err) { say($("status"), err.message, true); }
      });
      item.appendChild(open);
      list.appendChild(item);
    }
  }

  async function start() {
    const health = await api("api/health");
    if (health.token_required) {
      $("token-box").hidden = false;
      $("token").value = token();
      $("token").addEventListener("change", function () {
        sessionStorage.setItem("vadx-token", $("token").value);
        start();
      });
      if (!token()) { say($("status"), "this server needs its API token", true); return; }
    }
    const models = await api("api/models");
    $("model").innerHTML = "";
    models.forEach(function (m) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.name + " (" + m.classes.join(", ") + ")";
      $("model").appendChild(option);
    });
    state.model = models[0].name;
    $("model").addEventListener("change", () => { state.model = $("model").value; });
    $("methods").querySelectorAll("label").forEach((l) => l.remove());
    const methods = await api("api/methods");  // names, descriptions and defaults: the server's
    methods.filter((m) => m.kind === "spatial").forEach(function (m) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox"; box.value = m.name; box.checked = m.default;
      label.title = m.description;
      label.append(box, " " + m.display_name);
      $("methods").appendChild(label);
    });
    await listVideos();
  }

  $("upload-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const file = $("file").files[0];
    if (!file) { say($("status"), "choose a video file first", true); return; }
    $("upload").disabled = true;
    try {
      say($("status"), "uploading " + file.name + " …");
      const video = await upload(file);
      await detectVideo(video);
      await listVideos();
    } catch (err) {
      say($("status"), err.message, true);
    } finally {
      $("upload").disabled = false;
    }
  });

  start().catch((err) => say($("status"), err.message, true));
})();
