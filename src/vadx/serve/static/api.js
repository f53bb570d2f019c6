// What the pages share: the API token (kept for the browser tab) and requests that carry it.
"use strict";
window.vadx = (function () {
  function token() { return sessionStorage.getItem("vadx-token") || ""; }
  function withToken(url) {
    return token() ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token()) : url;
  }
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (token()) opts.headers.Authorization = "Bearer " + token();
    if (opts.body && typeof opts.body !== "string" && !(opts.body instanceof FormData)) {
      opts.body = JSON.stringify(opts.body);
      opts.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, opts);
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) throw new Error(body && body.error ? body.error : response.statusText);
    return body;
  }
  // the token box of a page: shown when the server asks for a token; ``changed`` runs when the
  // user gives one. Returns whether the page can go on (no token needed, or one is given).
  function tokenBox(health, changed) {
    if (!health.token_required) return true;
    const box = document.getElementById("token-box"), input = document.getElementById("token");
    box.hidden = false;
    input.value = token();
    input.addEventListener("change", function () {
      sessionStorage.setItem("vadx-token", input.value);
      changed();
    });
    return !!token();
  }
  return { token, withToken, api, tokenBox };
})();
