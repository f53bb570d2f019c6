// vadx web page: upload → detect → timeline → explain a window → the report, in one page.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { video: null, detection: null, scores: null, model: null, kinds: {} };

  const { token, withToken, api, tokenBox } = window.vadx;
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
    // a camera's normal (vadx learn-normal) explains by construction: its anomaly map is drawn
    // over the video it plays; a classifier's windows are explained on request
    const normality = (state.kinds[job.params.model] === "normality") && job.files.includes("unusual.mp4");
    $("player").src = withToken(normality ? "api/jobs/" + job.id + "/files/unusual.mp4"
      : "api/videos/" + state.video.id + "/play");
    $("explain-here").hidden = normality;
    $("map-note").hidden = !normality;
    drawTimeline();
    drawTimeAxis();
    showDomain(job.result.domain);
    const rows = $("events").querySelector("tbody");
    rows.innerHTML = "";
    events.forEach(function (e, k) {
      const row = document.createElement("tr");
      row.innerHTML = "<td><img alt=''></td><td></td><td></td><td></td><td></td><td></td>" +
        "<td class='verdict'>-</td>" +
        "<td><input type='checkbox' class='reviewed' aria-label='reviewed'></td><td><button>Explain</button></td>";
      const cells = row.querySelectorAll("td");
      cells[0].firstChild.src = withToken("api/videos/" + state.video.id + "/frames/" + peakFrame(e));
      cells[1].textContent = e.class_name;
      cells[2].textContent = clock(e.start_time) + " (frame " + e.start_frame + ")";
      cells[3].textContent = clock(e.end_time) + " (frame " + e.end_frame + ")";
      cells[4].textContent = Math.round(100 * e.peak_probability) + " %";
      if (e.out_of_domain === null || e.out_of_domain === undefined) cells[5].textContent = "not checked";
      else {
        cells[5].textContent = Math.round(100 * (1 - e.out_of_domain)) + " % of frames";
        if (e.out_of_domain > 0) row.classList.add("unfamiliar");
      }
      // reviewed or not: kept with the job on the server, for everyone who opens it
      const reviewed = row.querySelector(".reviewed");
      reviewed.checked = String(k) in (job.reviews || {});
      reviewed.addEventListener("change", async function () {
        try {
          state.detection = await api("api/jobs/" + job.id + "/events/" + k + "/review", {
            method: "PUT", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ reviewed: reviewed.checked }) });
        } catch (err) { reviewed.checked = !reviewed.checked; say($("status"), err.message, true); }
      });
      // the event's most anomalous window, chosen by the server's rule (vadx explain --windows flagged)
      if (normality) row.querySelector("button").remove();  // its map plays in the video
      else row.querySelector("button").addEventListener("click", () => explainSpan(e.window[0], e.window[1], e.class_name));
      row.addEventListener("click", function (click) {  // jump to the event
        if (click.target.closest("button, input")) return;
        seek(e.start_frame);
      });
      rows.appendChild(row);
    });
    exportEvents(job);
    $("timeline-section").hidden = false;
    // verdicts of the events' windows explained earlier with the trust check
    const jobs = await api("api/jobs?video=" + state.video.id);
    jobs.filter((j) => j.kind === "explain" && j.state === "done" && j.result && j.result.trust &&
      j.params.model === job.params.model).forEach((j) => showVerdicts(j.params.start, j.params.end, j.result.trust));
  }

  // an explained event's worst verdict in its row (the report says why, map by map)
  const VERDICTS = ["trustworthy", "weak", "contradictory"];
  function showVerdicts(start, end, trust) {
    const found = Object.values(trust);
    if (!state.detection || !found.length) return;
    const worst = found.reduce((a, b) => (VERDICTS.indexOf(b) > VERDICTS.indexOf(a) ? b : a));
    document.querySelectorAll("#events tbody tr").forEach(function (row, k) {
      const e = state.detection.result.events[k];
      if (!e || e.window[0] !== start || e.window[1] !== end) return;
      const cell = row.querySelector("td.verdict");
      cell.textContent = worst;
      cell.className = "verdict " + worst;
      cell.title = Object.keys(trust).map((m) => m + ": " + trust[m]).join("\n");
    });
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

  function describe(t) {
    const s = state.scores;
    return "frame " + t + " · " + clock(s.times[t] - s.times[0]) + " · anomaly " +
      Math.round(100 * s.anomaly[t]) + " % · " + s.classes.map((c, k) => c + " " +
      Math.round(100 * s.probabilities[t][k]) + " %").join(", ") +
      (s.domain ? " · domain score " + s.domain[t].toFixed(2) + (s.domain[t] > 1 ? " (outside)" : "") : "");
  }
  function moveCursor(t) {
    const cursor = $("cursor");
    cursor.setAttribute("x1", 1000 * t / Math.max(state.scores.anomaly.length - 1, 1));
    cursor.setAttribute("x2", cursor.getAttribute("x1"));
    cursor.setAttribute("visibility", "visible");
  }
  // the frame on screen in the player, and the player sent to a frame
  function currentFrame() {
    const s = state.scores, at = s.times[0] + $("player").currentTime;
    let best = 0;
    for (let t = 0; t < s.times.length; t++) if (Math.abs(s.times[t] - at) < Math.abs(s.times[best] - at)) best = t;
    return best;
  }
  function seek(t) {
    const s = state.scores;
    t = Math.max(0, Math.min(s.times.length - 1, t));
    $("player").currentTime = s.times[t] - s.times[0] + 1e-3;
    moveCursor(t);
    $("readout").textContent = describe(t);
    document.querySelectorAll("#events tbody tr").forEach(function (row, k) {
      const e = state.detection.result.events[k];
      row.classList.toggle("current", e.start_frame <= t && t <= e.end_frame);
    });
  }
  $("timeline").addEventListener("mousemove", function (event) {
    if (state.scores) $("readout").textContent = describe(frameAt(event)) + " — click to go there";
  });
  $("timeline").addEventListener("click", (event) => seek(frameAt(event)));
  $("player").addEventListener("timeupdate", function () {
    if (!state.scores) return;
    const t = currentFrame();
    moveCursor(t);
    document.body.dataset.frame = t;
  });
  $("explain-here").addEventListener("click", () => explainAt(currentFrame(), null));
  document.addEventListener("keydown", function (event) {
    if (!state.scores || event.target.closest("input, select, textarea, button")) return;
    const player = $("player"), events = state.detection.result.events, t = currentFrame();
    if (event.key === " ") { if (player.paused) player.play(); else player.pause(); }
    else if (event.key === "ArrowRight") seek(t + 1);
    else if (event.key === "ArrowLeft") seek(t - 1);
    else if (event.key === "k" || event.key === "K") {
      const next = events.find((e) => e.start_frame > t);
      if (next) seek(next.start_frame);
    } else if (event.key === "j" || event.key === "J") {
      const earlier = events.filter((e) => e.start_frame < t);
      if (earlier.length) seek(earlier[earlier.length - 1].start_frame);
    } else return;
    event.preventDefault();
  });

  // m:ss (tenths under a minute): how the page writes times
  function clock(seconds) {
    const tenths = Math.max(0, seconds) < 60;
    const total = tenths ? Math.round(Math.max(0, seconds) * 10) / 10 : Math.round(seconds);
    const m = Math.floor(total / 60), rest = total - 60 * m;
    return m + ":" + (rest < 10 ? "0" : "") + (tenths ? rest.toFixed(1) : String(rest));
  }
  // the time axis under the timeline, in m:ss, at a round step
  function drawTimeAxis() {
    const s = state.scores, t0 = s.times[0], span = s.times[s.times.length - 1] - t0;
    const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((x) => span / x <= 10) || 7200;
    const axis = $("time-axis");
    axis.innerHTML = "";
    for (let at = 0; at <= span + 1e-9; at += step) {
      const tick = document.createElement("span");
      tick.style.left = (100 * at / Math.max(span, 1e-9)) + "%";
      tick.textContent = clock(at);
      axis.appendChild(tick);
    }
  }
  function peakFrame(event) {
    const s = state.scores.anomaly;
    let best = event.start_frame;
    for (let t = event.start_frame; t <= event.end_frame; t++) if (s[t] > s[best]) best = t;
    return best;
  }
  function exportEvents(job) {
    const columns = ["class_name", "start_frame", "end_frame", "start_time", "end_time",
      "peak_probability", "mean_probability", "out_of_domain", "window"];
    const lines = [columns.join(",")].concat(job.result.events.map((e) => columns.map(function (c) {
      const v = e[c];
      return v === null || v === undefined ? "" : Array.isArray(v) ? v.join("-") : String(v);
    }).join(",")));
    const csv = $("export-csv");
    if (csv.href.startsWith("blob:")) URL.revokeObjectURL(csv.href);
    csv.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
    csv.download = state.video.name.replace(/\.[^.]*$/, "") + "-events.csv";
    $("export-json").href = withToken("api/jobs/" + job.id + "/files/events.json");
    $("export-json").download = state.video.name.replace(/\.[^.]*$/, "") + "-events.json";
  }

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
          trust: $("trust").checked, detect: state.detection.params.detect }) });
      const done = await waitFor(job, $("explain-bar"), $("explain-status"), "explanation");
      const url = withToken("api/jobs/" + done.id + "/files/report.html");
      say($("explain-status"), "predicted " + done.result.predicted + " (" +
        Math.round(100 * done.result.probability) + " %), explained for " + done.result.target);
      if (done.result.trust) showVerdicts(start, end, done.result.trust);
      $("report").src = url;  // sized to its content once loaded: one scroll, the page's
      $("download").href = url;
      $("open").href = url;
      $("report").hidden = $("download").hidden = $("open").hidden = false;
      await showOverlay(url);
    } catch (err) {
      say($("explain-status"), err.message, true);
    }
  }

  // ------------------------------------------------------------------ the overlay on the video
  // While the player is inside the explained window, the explanation's map of the nearest
  // explained frame is drawn over the video, by the report's own viewer.
  async function showOverlay(reportUrl) {
    const html = await (await fetch(reportUrl)).text();
    const found = /<script type="application\/json" id="player-data">([\s\S]*?)<\/script>/.exec(html);
    if (!found) return;
    const data = JSON.parse(found[1]);
    state.overlay = { data: data, viewer: vadxViewer(data) };
    const select = $("overlay-method");
    select.innerHTML = "";
    Object.keys(data.methods).forEach(function (m) {
      const option = document.createElement("option");
      option.value = m; option.textContent = data.methods[m].label;
      select.appendChild(option);
    });
    $("overlay-controls").hidden = false;
    const canvas = $("overlay");
    [canvas.height, canvas.width] = state.overlay.viewer.size;
    drawOverlay();
  }
  function placeOverlay() {  // over the picture inside the player (letter-boxed by the element)
    const video = $("player"), canvas = $("overlay");
    if (!video.videoWidth) return;
    const scale = Math.min(video.clientWidth / video.videoWidth, video.clientHeight / video.videoHeight);
    const w = video.videoWidth * scale, h = video.videoHeight * scale;
    Object.assign(canvas.style, { width: w + "px", height: h + "px",
      left: (video.clientWidth - w) / 2 + "px", top: (video.clientHeight - h) / 2 + "px" });
  }
  function drawOverlay() {
    const canvas = $("overlay"), o = state.overlay;
    if (!o || !state.scores) return;
    const numbers = o.data.numbers, t = currentFrame();
    const inside = $("overlay-on").checked && numbers[0] <= t && t <= numbers[numbers.length - 1];
    canvas.hidden = !inside;
    document.body.dataset.overlay = inside ? "on" : "off";
    if (!inside) return;
    let k = 0;
    numbers.forEach(function (n, i) { if (Math.abs(n - t) < Math.abs(numbers[k] - t)) k = i; });
    placeOverlay();
    const method = $("overlay-method").value || Object.keys(o.data.methods)[0];
    o.viewer.paint(canvas.getContext("2d"), method, k, "heatmap", o.data.opacity, true).then(function () {
      document.body.dataset.overlayFrame = numbers[k];
    });
  }
  ["timeupdate", "seeked", "loadedmetadata"].forEach((e) => $("player").addEventListener(e, drawOverlay));
  $("overlay-on").addEventListener("change", drawOverlay);
  $("overlay-method").addEventListener("change", drawOverlay);
  window.addEventListener("resize", drawOverlay);

  // the report in its frame at its full height (same origin: its document is readable)
  $("report").addEventListener("load", function () {
    const frame = $("report"), doc = frame.contentDocument;
    if (!doc || !doc.body) return;
    const fit = () => { frame.style.height = doc.documentElement.scrollHeight + "px"; };
    fit();
    new ResizeObserver(fit).observe(doc.body);
  });

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
    if (!tokenBox(health, start)) { say($("status"), "this server needs its API token", true); return; }
    const openapi = await api("openapi.json");
    // the live cameras' console, when this server watches cameras (vadx serve --cameras)
    if (openapi.paths["/api/cameras"]) $("cameras-link").hidden = false;
    // detection's defaults, as the API documents them (those of vadx detect)
    const defaults = openapi.components.schemas.DetectSettings.properties;
    [["on", "on"], ["off", "off"], ["min-frames", "min_frames"], ["smooth", "smooth"]].forEach(
      ([id, field]) => { $(id).value = defaults[field].default; });
    const models = await api("api/models");
    $("model").innerHTML = "";
    models.forEach(function (m) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.name + (m.kind === "normality" ? " (a camera's normal: what is unusual there)"
        : " (" + m.classes.join(", ") + ")");
      state.kinds[m.name] = m.kind;
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
