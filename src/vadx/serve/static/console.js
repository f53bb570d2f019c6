// vadx console: every camera live, their events as they happen, one review workflow.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const PICTURE_EVERY_MS = 1000;  // how often the grid asks for each camera's last frame
  const SOURCE = "source:";  // the camera filter's values that pick a source, not a camera
  // alarms: per camera, the ids of its events that last now (a classifier's, the normal's)
  const state = { cameras: [], events: new Map(), order: [], current: null, alarms: new Map() };

  const { withToken, api, tokenBox } = window.vadx;
  function say(text, error) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!error);
  }
  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
  const when = (seconds) => new Date(seconds * 1000).toLocaleString();
  function covers(event) {  // what the kept clip shows around the event (the stream's seconds)
    if (event.footage_start_time == null || event.footage_end_time == null) return "";
    const side = (seconds, outside, inside) =>
      `${Math.abs(seconds).toFixed(1)} s ${seconds >= 0 ? outside : inside}`;
    return `clip: ${side(event.start_time - event.footage_start_time, "before", "into it")} to ` +
      side(event.footage_end_time - event.end_time, "after", "before its end");
  }

  // ------------------------------------------------------------------ cameras
  function tile(camera) {
    let box = document.querySelector(`.tile[data-name="${CSS.escape(camera.name)}"]`);
    if (!box) {
      box = document.createElement("div");
      box.className = "tile";
      box.dataset.name = camera.name;
      box.innerHTML = '<img alt=""><div class="strip"></div><div class="caption"><b></b><span class="numbers"></span><span class="state"></span></div><div class="scores"></div><div class="error"></div>';
      box.querySelector("b").textContent = camera.name;
      box.addEventListener("click", () => { $("f-camera").value = camera.name; loadEvents(); });
      $("grid").appendChild(box);
    }
    const s = camera.status;
    box.querySelector(".state").textContent = s.state;
    box.querySelector(".state").className = "state " + s.state;
    box.querySelector(".numbers").textContent =
      `${s.fps.toFixed(1)} fps · ${s.dropped} dropped · ${s.events} event(s)`;
    scores(box.querySelector(".scores"), s.scores || {});
    box.querySelector(".error").textContent = s.error && s.state !== "running" ? s.error : "";
    box.classList.toggle("alarm", (state.alarms.get(camera.name) || new Set()).size > 0);
    if (s.frames > 0 && !box.querySelector("img").src) picture(box, camera.name);
    strip(box, camera.name);
  }
  function scores(bar, latest) {  // each signal's latest score: the classifier's, the normal's
    bar.replaceChildren();
    for (const [signal, words] of [["classifier", "anomaly"], ["normality", "unusual"]]) {
      if (latest[signal] == null) continue;
      const span = document.createElement("span");
      span.className = "score " + signal;
      span.dataset.signal = signal;
      span.title = signal === "normality" ? "p(unusual) for this camera's normal, last frame"
        : "1 − p(normal) of the classifier's last window";
      span.textContent = `${words} ${Math.round(latest[signal] * 100)}%`;
      const level = document.createElement("i");
      level.style.width = `${Math.round(latest[signal] * 100)}%`;
      span.appendChild(level);
      bar.appendChild(span);
    }
  }
  const said = (event) => event.signal === "normality" ? "unusual for this camera" : event.class_name;
  function picture(box, name) {
    box.querySelector("img").src = withToken(`api/cameras/${encodeURIComponent(name)}/frame.jpg?t=${Date.now()}`);
  }
  function refreshPictures() {  // each running camera's last frame, every second the page is seen
    if (document.visibilityState === "visible") {
      for (const camera of state.cameras) {
        if (!camera.status || camera.status.frames === 0 || camera.status.state !== "running") continue;
        const box = document.querySelector(`.tile[data-name="${CSS.escape(camera.name)}"]`);
        if (box && box.querySelector("img").complete) picture(box, camera.name);  // none pending
      }
    }
    setTimeout(refreshPictures, PICTURE_EVERY_MS);
  }
  function strip(box, name) {  // the camera's last hour: a cell per minute, red with an event
    const cells = 60, now = Date.now() / 1000, bar = box.querySelector(".strip");
    bar.replaceChildren();
    const on = new Array(cells).fill(false);
    for (const event of state.events.values()) {
      if (event.camera !== name) continue;
      for (let k = 0; k < cells; k++) {
        const start = now - (cells - k) * 60, end = start + 60;
        if (event.started_at < end && event.ended_at >= start) on[k] = true;
      }
    }
    for (const value of on) {
      const span = document.createElement("span");
      if (value) span.className = "on";
      bar.appendChild(span);
    }
  }
  async function loadCameras() {
    state.cameras = await api("api/cameras");
    const select = $("f-camera"), chosen = select.value;
    select.replaceChildren(new Option("all", ""), new Option("all cameras", SOURCE + "camera"),
      new Option("uploads", SOURCE + "upload"));
    for (const camera of state.cameras) select.appendChild(new Option(camera.name, camera.name));
    select.value = chosen;
    for (const camera of state.cameras) tile(camera);
  }

  // ------------------------------------------------------------------- events
  function filters() {
    const query = new URLSearchParams({ limit: "200" });
    const camera = $("f-camera").value;  // a camera's name, or a source: its cameras or uploads
    if (camera.startsWith(SOURCE)) query.set("source", camera.slice(SOURCE.length));
    else if (camera) { query.set("camera", camera); query.set("source", "camera"); }
    if ($("f-class").value) query.set("class", $("f-class").value);
    if ($("f-reviewed").value) query.set("reviewed", $("f-reviewed").value);
    if ($("f-since").value) query.set("since", String(new Date($("f-since").value).getTime() / 1000));
    if ($("f-until").value) query.set("until", String(new Date($("f-until").value).getTime() / 1000));
    return query;
  }
  function shown(event) {  // whether an event that arrives live passes the filters
    const f = filters();
    return (!f.get("camera") || f.get("camera") === event.camera)
      && (!f.get("source") || f.get("source") === event.source)
      && (!f.get("class") || f.get("class") === event.class_name)
      && (!f.get("reviewed") || String(event.reviewed) === f.get("reviewed"))
      && (!f.get("since") || event.started_at >= Number(f.get("since")))
      && (!f.get("until") || event.started_at < Number(f.get("until")));
  }
  async function loadEvents() {
    const events = await api("api/events?" + filters().toString());
    state.events = new Map(events.map((e) => [e.id, e]));
    state.order = events.map((e) => e.id);
    render();
  }
  function row(event) {
    const tr = document.createElement("tr");
    tr.dataset.id = event.id;
    const thumb = document.createElement("td");
    if (event.footage) {
      const img = document.createElement("img");
      img.alt = `event ${event.id}`;
      img.src = withToken(`api/events/${event.id}/files/thumb.png`);
      thumb.appendChild(img);
    }
    const unfamiliar = event.out_of_domain !== null && event.out_of_domain > 0.5;
    const where = cell(event.camera);
    if (event.source === "upload") { where.classList.add("upload"); where.title = "an uploaded video"; }
    const what = cell(said(event));
    what.classList.add(event.signal || "classifier");
    what.title = event.signal === "normality" ? "raised by the camera's normal (vadx learn-normal)"
      : "raised by the classifier";
    tr.append(thumb, where, what,
      cell(`${Math.round(event.peak_probability * 100)}%`),
      cell(event.out_of_domain === null ? "—" : unfamiliar ? "unfamiliar" : "familiar"),
      cell(when(event.started_at)), cell(event.state === "active" ? "now" : "ended"));
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = event.reviewed;
    box.title = "reviewed";
    box.addEventListener("click", (e) => { e.stopPropagation(); review(event.id, box.checked); });
    const td = document.createElement("td");
    td.appendChild(box);
    if (event.judged_normal) {  // reviewed, and judged normal for its camera
      const judged = document.createElement("span");
      judged.className = "judged";
      judged.textContent = "normal";
      judged.title = "judged normal for this camera: vadx update-normal --console teaches it";
      td.appendChild(judged);
    }
    tr.appendChild(td);
    tr.classList.toggle("active", event.state === "active");
    tr.classList.toggle("unfamiliar", unfamiliar);
    tr.classList.toggle("current", event.id === state.current);
    tr.addEventListener("click", () => select(event.id));
    return tr;
  }
  function render() {
    const body = $("events").querySelector("tbody");
    body.replaceChildren(...state.order.map((id) => row(state.events.get(id))));
    const classes = new Set([...state.events.values()].map((e) => e.class_name));
    const select = $("f-class"), chosen = select.value;
    select.replaceChildren(new Option("all", ""), ...[...classes].sort().map((c) => new Option(c, c)));
    if (chosen && !classes.has(chosen)) select.appendChild(new Option(chosen, chosen));
    select.value = chosen;
    exportLinks();
    for (const camera of state.cameras) {
      const box = document.querySelector(`.tile[data-name="${CSS.escape(camera.name)}"]`);
      if (box) strip(box, camera.name);
    }
  }
  function exportLinks() {
    const events = state.order.map((id) => state.events.get(id));
    const columns = ["id", "camera", "signal", "class_name", "state", "start_frame", "end_frame", "started_at",
      "ended_at", "peak_probability", "mean_probability", "out_of_domain", "reviewed", "judged_normal", "reason"];
    const quote = (v) => (v === null || v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
    const csv = [columns.join(","), ...events.map((e) => columns.map((c) => quote(e[c])).join(","))].join("\n");
    $("export-csv").href = URL.createObjectURL(new Blob([csv + "\n"], { type: "text/csv" }));
    $("export-json").href = URL.createObjectURL(new Blob([JSON.stringify(events, null, 1)], { type: "application/json" }));
  }
  function select(id) {
    state.current = id;
    const event = state.events.get(id);
    for (const tr of $("events").querySelectorAll("tbody tr")) {
      tr.classList.toggle("current", Number(tr.dataset.id) === id);
    }
    const current = $("events").querySelector("tbody tr.current");
    if (current) current.scrollIntoView({ block: "nearest" });
    $("playback").hidden = false;
    $("clip-caption").textContent =
      `${event.camera} · ${said(event)} · ${Math.round(event.peak_probability * 100)}% · ${when(event.started_at)}`;
    if (event.trust) $("clip-caption").textContent += ` · explanation ${event.trust}`;
    if (event.explanation_error) $("clip-caption").textContent += ` · ${event.explanation_error}`;
    if (covers(event)) $("clip-caption").textContent += ` · ${covers(event)}`;
    $("show-explanation").title = event.trust ? `trust verdict: ${event.trust} (docs/trust.md)`
      : event.explanation_error || "";
    $("show-explanation").disabled = !event.explanation;
    $("show-explanation").hidden = event.signal === "normality";  // its maps explain it
    $("show-map").hidden = event.signal !== "normality";
    $("show-map").disabled = !event.maps;
    $("show-window").disabled = !event.footage;
    $("judge-normal").hidden = event.source === "upload";  // a camera's event only
    $("judge-normal").classList.toggle("on", !!event.judged_normal);
    play(event, event.explanation ? "explanation" : event.maps ? "map" : "window");
  }
  function play(event, view) {  // the explanation (the map over the window), the normal's maps, or the clip
    const explained = view === "explanation" && event.explanation;
    const mapped = view === "map" && event.maps;
    const file = explained ? "explanation.mp4" : mapped ? "map.mp4" : event.footage ? "clip.mp4" : null;
    $("show-explanation").classList.toggle("on", !!explained);
    $("show-map").classList.toggle("on", !!mapped);
    $("show-window").classList.toggle("on", !explained && !mapped && !!event.footage);
    $("map-note").hidden = !mapped;
    $("strip").hidden = !event.explanation;
    if (event.explanation) $("strip").src = withToken(`api/events/${event.id}/files/explanation.png`);
    if (!file) {
      $("clip").removeAttribute("src");
      $("clip-caption").textContent += " · its clip is being written";
      return;
    }
    // the window's clip is replaced by the seconds around the event: a new name for each
    const version = explained ? "" : `?v=${event.footage_start_frame}-${event.footage_end_frame}`;  // map.mp4 follows the clip
    $("clip").src = withToken(`api/events/${event.id}/files/${file}${version}`);
    $("clip").play().catch(() => {});
  }
  async function review(id, reviewed, judged) {  // judged: normal for its camera (undefined: as it was)
    try {
      const body = judged === undefined ? { reviewed } : { reviewed, judged_normal: judged };
      const event = await api(`api/events/${id}/review`, { method: "POST", body });
      state.events.set(id, event);
      render();
      if (id === state.current) $("judge-normal").classList.toggle("on", !!event.judged_normal);
    } catch (err) { say(String(err.message || err), true); }
  }
  function judgeNormal() {  // not an incident: the camera's normal learns it (vadx update-normal --console)
    const event = state.events.get(state.current);
    if (event && event.source !== "upload") review(event.id, true, !event.judged_normal);
  }
  function arrived(message) {
    const event = message.event, known = state.events.has(event.id);
    if (!state.alarms.has(event.camera)) state.alarms.set(event.camera, new Set());
    const lasting = state.alarms.get(event.camera);
    if (event.state === "active") lasting.add(event.id); else lasting.delete(event.id);
    if (!known && !shown(event)) return;
    state.events.set(event.id, event);
    if (!known) state.order.unshift(event.id);
    render();
    if (!known) {
      const tr = $("events").querySelector(`tbody tr[data-id="${event.id}"]`);
      if (tr) tr.classList.add("fresh");
    }
    if (event.id === state.current && message.type === "update") select(event.id);
  }

  // ---------------------------------------------------------------- recording
  function recording(status) {  // a full disk stops the recording: said until it resumes
    const line = $("recording");
    line.hidden = !status || status.state !== "stopped";
    if (line.hidden) return;
    const since = status.since ? ` since ${new Date(status.since * 1000).toLocaleTimeString()}` : "";
    line.textContent = `Recording stopped${since}: ${status.reason}. The cameras are still watched; `
      + `${status.waiting} write(s) of events and clips wait in memory and are stored when writing works again`
      + (status.lost ? `; ${status.lost} lost` : "") + ".";
  }

  // --------------------------------------------------------------------- live
  function live() {
    const source = new EventSource(withToken("api/live"));
    source.onopen = () => { $("live-state").textContent = "live"; $("live-state").classList.add("on"); };
    source.onerror = () => { $("live-state").textContent = "reconnecting…"; $("live-state").classList.remove("on"); };
    for (const kind of ["new", "update", "end"]) {
      source.addEventListener(kind, (e) => arrived(JSON.parse(e.data)));
    }
    source.addEventListener("status", (e) => {
      const message = JSON.parse(e.data), statuses = message.cameras;
      recording(message.recording);
      for (const s of statuses) {
        const camera = state.cameras.find((c) => c.name === s.name);
        if (camera) { camera.status = s; tile(camera); }
      }
      if (statuses.length !== state.cameras.length) loadCameras();
    });
  }

  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, select, textarea")) return;
    const position = state.order.indexOf(state.current);
    if (e.key === "j" || e.key === "k") {
      const next = position + (e.key === "j" ? 1 : -1);
      if (state.order.length) select(state.order[Math.max(0, Math.min(state.order.length - 1, next))]);
    } else if (e.key === "r" && state.current !== null) {
      review(state.current, !state.events.get(state.current).reviewed);
    } else if (e.key === "n" && state.current !== null) {
      judgeNormal();
    } else if (e.key === " " && state.current !== null) {
      e.preventDefault();
      const video = $("clip");
      if (video.paused) video.play().catch(() => {}); else video.pause();
    }
  });
  $("show-explanation").addEventListener("click", () => play(state.events.get(state.current), "explanation"));
  $("judge-normal").addEventListener("click", judgeNormal);
  $("show-window").addEventListener("click", () => play(state.events.get(state.current), "window"));
  $("show-map").addEventListener("click", () => play(state.events.get(state.current), "map"));
  for (const id of ["f-camera", "f-class", "f-reviewed", "f-since", "f-until"]) {
    $(id).addEventListener("change", () => loadEvents().catch((err) => say(String(err.message || err), true)));
  }

  async function start() {
    const health = await api("api/health");
    if (!tokenBox(health, () => location.reload())) { say("this server needs its API token", true); return; }
    try {
      await loadCameras();
    } catch (err) {
      say("this server watches no cameras: start it with vadx serve MODEL --cameras cameras.yaml", true);
      return;
    }
    recording(await api("api/recording"));
    await loadEvents();
    live();
    refreshPictures();
  }
  start().catch((err) => say(String(err.message || err), true));
})();
