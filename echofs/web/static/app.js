// EchoFS web UI: plain JavaScript, no build step, served by the master.
//
// Everything the server sends (file names, ids, reasons) is user-controlled
// text, so the DOM is built with textContent only, never innerHTML.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "echofs.token";
  const POLL_MS = 2000;
  const PAGE_SIZE = 100;
  // Per-file mode look-ups on the consistency page are one request each.
  const MODE_FILES = 50;

  const state = {
    auth: null, // "open" | "jwt"
    user: null, // {username, role}
    token: localStorage.getItem(TOKEN_KEY),
    page: null,
    pollTimer: null,
    cursor: null,
    files: new Map(), // id -> file, as last listed
    expanded: new Set(), // file ids whose versions are shown
  };

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "value") node.value = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.firstChild.remove();
  }

  function formatBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
  }

  function formatWhen(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function modeBadge(mode) {
    return el("span", { class: `badge mode-${mode || "unknown"}` }, mode || "–");
  }

  let bannerTimer = null;
  function showError(message) {
    const banner = $("banner");
    banner.textContent = message;
    banner.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { banner.hidden = true; }, 8000);
  }

  // -- talking to the master ----------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function authHeaders() {
    return state.token ? { Authorization: `Bearer ${state.token}` } : {};
  }

  async function errorOf(response) {
    let code = `http_${response.status}`;
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error) {
        code = body.error.code;
        message = body.error.message;
      }
    } catch (_) { /* not JSON: keep the status line */ }
    return new ApiError(response.status, code, message);
  }

  async function api(method, path, { json, query } = {}) {
    const url = new URL(API + path, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const headers = authHeaders();
    const init = { method, headers };
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    const response = await fetch(url, init);
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401 && state.auth === "jwt") loggedOut();
      throw error;
    }
    return response.json();
  }

  function filePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  // -- who is this --------------------------------------------------------------------

  async function identify() {
    const response = await fetch(`${API}/auth/me`, { headers: authHeaders() });
    if (response.ok) {
      const body = await response.json();
      state.auth = body.auth || "jwt";
      state.user = body.user;
      return true;
    }
    if (response.status === 404) {
      // A master without the accounts API: single-user, like open mode.
      state.auth = "open";
      state.user = { username: "local", role: "admin" };
      return true;
    }
    if (response.status === 401) {
      // No token, or one that expired or belongs to a reset node.
      state.auth = "jwt";
      state.user = null;
      state.token = null;
      localStorage.removeItem(TOKEN_KEY);
      return false;
    }
    throw await errorOf(response);
  }

  function isAdmin() {
    return !!state.user && state.user.role === "admin";
  }

  function loggedOut() {
    state.token = null;
    state.user = null;
    localStorage.removeItem(TOKEN_KEY);
    renderChrome();
    showPage("login");
  }

  async function authenticate(kind) {
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    $("login-error").textContent = "";
    try {
      const response = await fetch(`${API}/auth/${kind}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
      if (!response.ok) throw await errorOf(response);
      const body = await response.json();
      state.token = body.token;
      localStorage.setItem(TOKEN_KEY, body.token);
      $("login-password").value = "";
      await identify();
      renderChrome();
      route();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  }

  // -- pages and routing ----------------------------------------------------------------

  const PAGES = ["login", "files", "workers", "consistency", "forbidden"];

  function showPage(name) {
    stopPolling();
    state.page = name;
    $("loading").hidden = true;
    for (const page of PAGES) $(`page-${page}`).hidden = page !== name;
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("active", link.dataset.page === name);
    }
    document.body.dataset.page = name;
  }

  function renderChrome() {
    const signedIn = !!state.user;
    $("nav").hidden = !signedIn;
    for (const link of document.querySelectorAll(".admin-only")) link.hidden = !isAdmin();
    $("whoami").textContent = !signedIn ? "" : state.auth === "open"
      ? "single-user mode" : `${state.user.username} (${state.user.role})`;
    $("logout").hidden = !(signedIn && state.auth === "jwt");
    const everyone = state.auth === "jwt" && isAdmin();
    $("all-users-label").hidden = !everyone;
    for (const cell of document.querySelectorAll(".owner-col")) {
      cell.hidden = !(state.auth === "open" || $("all-users").checked);
    }
  }

  function route() {
    if (!state.user) {
      showPage("login");
      return;
    }
    const name = (window.location.hash.replace(/^#\/?/, "") || "files").split("?")[0];
    if (name === "workers" || name === "consistency") {
      if (!isAdmin()) {
        showPage("forbidden");
        return;
      }
      showPage(name);
      startPolling(name === "workers" ? refreshWorkers : refreshConsistency);
      return;
    }
    showPage("files");
    refreshFiles();
  }

  function startPolling(refresh) {
    const tick = async () => {
      if (!document.hidden) {
        try {
          await refresh();
        } catch (error) {
          showError(error.message);
        }
      }
      state.pollTimer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  // -- files ----------------------------------------------------------------------------

  function listQuery(cursor) {
    return {
      prefix: $("prefix").value.trim(),
      limit: PAGE_SIZE,
      cursor,
      all: state.auth === "jwt" && isAdmin() && $("all-users").checked ? "true" : undefined,
    };
  }

  async function refreshFiles() {
    try {
      const body = await api("GET", "/files", { query: listQuery(null) });
      state.files = new Map();
      clear($("files-body"));
      appendFiles(body);
    } catch (error) {
      showError(`Cannot list files: ${error.message}`);
    }
  }

  async function loadMore() {
    try {
      appendFiles(await api("GET", "/files", { query: listQuery(state.cursor) }));
    } catch (error) {
      showError(`Cannot list files: ${error.message}`);
    }
  }

  function appendFiles(body) {
    const showOwner = state.auth === "open" || $("all-users").checked;
    for (const file of body.files) {
      state.files.set(file.file_id, file);
      $("files-body").append(fileRow(file, showOwner));
      if (state.expanded.has(file.file_id)) toggleVersions(file, true);
    }
    state.cursor = body.next_cursor;
    $("more").hidden = !body.next_cursor;
    $("files-empty").hidden = state.files.size > 0;
    $("files-count").textContent = `${state.files.size} file${state.files.size === 1 ? "" : "s"}`
      + (body.next_cursor ? " (more available)" : "");
    renderChrome();
  }

  function fileRow(file, showOwner) {
    return el("tr", { class: "file-row", dataset: { fileId: file.file_id, path: file.path } },
      el("td", { class: "name", title: file.path }, file.path),
      el("td", { class: "num size" }, formatBytes(file.size)),
      el("td", { class: "mode" }, modeBadge(file.mode)),
      el("td", { class: "num" },
        el("button", { type: "button", class: "link versions-toggle",
                       title: "Show versions", onclick: () => toggleVersions(file) },
          `v${file.version}`)),
      el("td", { class: "when" }, formatWhen(file.updated_at)),
      el("td", { class: "owner-col", hidden: !showOwner }, file.owner),
      el("td", { class: "row-actions" },
        el("button", { type: "button", class: "download", onclick: () => download(file) },
          "Download"),
        el("button", { type: "button", class: "danger delete", onclick: () => remove(file) },
          "Delete")));
  }

  async function toggleVersions(file, forceOpen) {
    const row = $("files-body").querySelector(`tr[data-file-id="${file.file_id}"]`);
    if (!row) return;
    const next = row.nextElementSibling;
    if (next && next.classList.contains("versions-row")) {
      next.remove();
      if (!forceOpen) {
        state.expanded.delete(file.file_id);
        return;
      }
    }
    state.expanded.add(file.file_id);
    try {
      const body = await api("GET", `/files/${file.file_id}/versions`);
      const list = el("table", { class: "versions" },
        el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", { class: "num" }, "Size"),
          el("th", {}, "Mode"), el("th", {}, "Created"), el("th", {}, "BLAKE3"), el("th", {}))),
        el("tbody", {}, body.versions.map((v) => el("tr", { dataset: { version: v.version } },
          el("td", {}, `v${v.version}${v.current ? " (current)" : ""}`),
          el("td", { class: "num" }, formatBytes(v.size)),
          el("td", {}, modeBadge(v.mode)),
          el("td", {}, formatWhen(v.created_at)),
          el("td", { class: "digest", title: v.blake3 }, v.blake3.slice(0, 16) + "…"),
          el("td", {}, el("button", { type: "button", class: "link",
                                      onclick: () => download(file, v.version) },
            "Download"))))));
      const columns = row.children.length;
      row.after(el("tr", { class: "versions-row", dataset: { fileId: file.file_id } },
        el("td", { colspan: columns }, list)));
    } catch (error) {
      showError(`Cannot list versions: ${error.message}`);
    }
  }

  async function download(file, version) {
    const name = file.path.split("/").pop();
    const query = version ? `?version=${version}` : "";
    const url = `${API}/files/${file.file_id}/download${query}`;
    if (!state.token) {
      // No token to send: let the browser stream the file to disk itself.
      el("a", { href: url, download: name }).click();
      return;
    }
    // A link cannot carry the Authorization header, so fetch the bytes.
    try {
      const response = await fetch(url, { headers: authHeaders() });
      if (!response.ok) throw await errorOf(response);
      const blob = await response.blob();
      const objectUrl = URL.createObjectURL(blob);
      el("a", { href: objectUrl, download: name }).click();
      setTimeout(() => URL.revokeObjectURL(objectUrl), 60000);
    } catch (error) {
      showError(`Download of ${file.path} failed: ${error.message}`);
    }
  }

  async function remove(file) {
    if (!window.confirm(`Delete ${file.path} and all its versions?`)) return;
    try {
      await api("DELETE", `/files/${file.file_id}`);
      state.expanded.delete(file.file_id);
      await refreshFiles();
    } catch (error) {
      showError(`Delete of ${file.path} failed: ${error.message}`);
    }
  }

  // -- uploads ----------------------------------------------------------------------------

  function uploadTarget(file) {
    const folder = $("upload-folder").value.trim().replace(/^\/+|\/+$/g, "");
    return folder ? `${folder}/${file.name}` : file.name;
  }

  function uploadFiles(fileList) {
    for (const file of Array.from(fileList)) uploadOne(file);
  }

  function uploadOne(file) {
    const target = uploadTarget(file);
    const bar = el("progress", { max: 100, value: 0 });
    const status = el("span", { class: "status small muted" }, "starting…");
    const item = el("li", { class: "upload", dataset: { path: target, state: "running" } },
      el("span", { class: "name" }, target), bar, status);
    $("uploads").prepend(item);
    const started = performance.now();
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `${API}/files/content/${filePath(target)}`);
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      bar.value = Math.floor((event.loaded / event.total) * 100);
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? event.loaded / seconds : 0;
      status.textContent = `${formatBytes(event.loaded)} of ${formatBytes(event.total)}`
        + (rate ? ` · ${formatBytes(rate)}/s` : "");
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* keep null */ }
      if (xhr.status === 201 && body) {
        bar.value = 100;
        item.dataset.state = "done";
        status.textContent = `done · v${body.version} · ${body.mode}`;
        setTimeout(() => item.remove(), 6000);
        refreshFiles();
      } else {
        item.dataset.state = "failed";
        status.textContent = body && body.error ? body.error.message : `HTTP ${xhr.status}`;
        status.classList.add("error");
        if (xhr.status === 401 && state.auth === "jwt") loggedOut();
      }
    });
    xhr.addEventListener("error", () => {
      item.dataset.state = "failed";
      status.textContent = "network error";
      status.classList.add("error");
    });
    xhr.send(file);
  }

  function setUpDropzone() {
    const zone = $("dropzone");
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, () => zone.classList.remove("over"));
    }
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        uploadFiles(event.dataTransfer.files);
      }
    });
    // A file dropped outside the zone must not navigate away from the UI.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
    $("file-input").addEventListener("change", (event) => {
      uploadFiles(event.target.files);
      event.target.value = "";
    });
  }

  // -- workers ------------------------------------------------------------------------------

  async function refreshWorkers() {
    const body = await api("GET", "/workers/health");
    const tbody = $("workers-body");
    clear(tbody);
    for (const w of body.workers) {
      tbody.append(el("tr", { dataset: { workerId: w.id, state: w.state } },
        el("td", {}, w.id),
        el("td", {}, el("span", { class: `badge state-${w.state}` }, w.state)),
        el("td", { class: "num" }, formatBytes(w.capacity_bytes)),
        el("td", { class: "num" }, formatBytes(w.free_bytes)),
        el("td", { class: "num" }, formatBytes(w.bytes_stored)),
        el("td", { class: "num" }, w.chunk_count ?? "–"),
        el("td", { class: "num rtt" }, w.rtt_ms === null ? "–" : `${w.rtt_ms.toFixed(1)} ms`),
        el("td", { class: "num" }, `${(w.seconds_since_heartbeat ?? 0).toFixed(1)} s ago`),
        el("td", { class: "num" }, `${w.calls ?? 0} / ${w.failures ?? 0}`),
        el("td", { class: "small muted" }, w.store || "–")));
    }
    $("workers-summary").textContent = `${body.alive} of ${body.total} alive`;
    $("workers-updated").textContent = `Last update ${new Date().toLocaleTimeString()}.`;
  }

  // -- consistency ----------------------------------------------------------------------------

  async function refreshConsistency() {
    const filesQuery = { limit: MODE_FILES, all: state.auth === "jwt" ? "true" : undefined };
    const [status, critical, transitions, listing] = await Promise.all([
      api("GET", "/consistency/status"),
      api("GET", "/consistency/critical-keys"),
      api("GET", "/consistency/transitions", { query: { limit: 50 } }),
      api("GET", "/files", { query: filesQuery }),
    ]);
    const modes = await Promise.all(listing.files.map(
      (f) => api("GET", "/consistency/mode", { query: { object_id: f.file_id } })
        .catch(() => null)));
    if (state.page !== "consistency") return;

    $("override-current").textContent = status.override || "none";
    $("override-current").dataset.override = status.override || "";
    const counts = Object.entries(status.modes || {}).map(([m, n]) => `${m}: ${n}`).join(" · ");
    $("mode-counts").textContent = `${counts || "no decisions yet"} — `
      + `${status.files_tracked ?? 0} file(s) tracked`;
    const signals = Object.entries(status.signals || {})
      .map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(" · ");
    $("controller-signals").textContent = signals;

    const criticalSet = new Set(critical.keys);
    const keyList = $("critical-list");
    clear(keyList);
    for (const key of critical.keys) {
      const known = state.files.get(key) || listing.files.find((f) => f.file_id === key);
      keyList.append(el("li", { dataset: { key } },
        el("code", {}, key), known ? el("span", { class: "muted small" }, ` ${known.path}`) : null,
        el("button", { type: "button", class: "link", onclick: () => removeCritical(key) },
          "remove")));
    }
    if (!critical.keys.length) keyList.append(el("li", { class: "muted" }, "none"));

    const focused = document.activeElement;
    const modesBody = $("modes-body");
    if (!(focused && modesBody.contains(focused))) {
      clear(modesBody);
      listing.files.forEach((file, i) => {
        const info = modes[i] || {};
        modesBody.append(el("tr", { dataset: { fileId: file.file_id, mode: info.mode || "" } },
          el("td", {}, file.path),
          el("td", {}, el("code", { title: file.file_id }, file.file_id.slice(0, 12) + "…")),
          el("td", { class: "live-mode" }, modeBadge(info.mode)),
          el("td", {}, info.reason || "–"),
          el("td", { class: "num" }, info.score === null || info.score === undefined
            ? "–" : info.score.toFixed(2)),
          el("td", {}, hintSelect(file)),
          el("td", {}, el("input", {
            type: "checkbox", checked: criticalSet.has(file.file_id),
            "aria-label": `critical ${file.path}`,
            onchange: (event) => (event.target.checked
              ? addCritical(file.file_id) : removeCritical(file.file_id)),
          }))));
      });
    }

    const names = new Map(listing.files.map((f) => [f.file_id, f.path]));
    const tbody = $("transitions-body");
    clear(tbody);
    for (const t of transitions.transitions) {
      tbody.append(el("tr", { dataset: { to: t.to } },
        el("td", {}, formatWhen(t.at)),
        el("td", { title: t.object_id }, names.get(t.object_id) || t.object_id),
        el("td", {}, modeBadge(t.from)),
        el("td", {}, modeBadge(t.to)),
        el("td", {}, t.reason),
        el("td", { class: "num" }, t.score === null ? "–" : t.score.toFixed(2))));
    }
    $("transitions-empty").hidden = transitions.transitions.length > 0;
    $("consistency-updated").textContent = `Last update ${new Date().toLocaleTimeString()}.`;
  }

  function hintSelect(file) {
    const select = el("select", { "aria-label": `hint ${file.path}` },
      el("option", { value: "" }, "—"),
      ["auto", "strong", "available"].map((h) => el("option", { value: h }, h)));
    select.addEventListener("change", async () => {
      if (!select.value) return;
      try {
        await api("POST", "/consistency/hint", { json: { object_id: file.file_id,
                                                         hint: select.value } });
        select.blur();
        await refreshConsistency();
      } catch (error) {
        showError(`Hint failed: ${error.message}`);
      }
    });
    return select;
  }

  async function consistencyAction(what, action) {
    try {
      await action();
      if (document.activeElement) document.activeElement.blur();
      await refreshConsistency();
    } catch (error) {
      showError(`${what} failed: ${error.message}`);
    }
  }

  function addCritical(key) {
    return consistencyAction("Adding a critical key",
      () => api("POST", "/consistency/critical-keys", { json: { keys: [key] } }));
  }

  function removeCritical(key) {
    return consistencyAction("Removing a critical key",
      () => api("DELETE", "/consistency/critical-keys", { json: { keys: [key] } }));
  }

  // -- start ----------------------------------------------------------------------------------

  function wire() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      authenticate("login");
    });
    $("register-submit").addEventListener("click", () => {
      if ($("login-form").reportValidity()) authenticate("register");
    });
    $("logout").addEventListener("click", loggedOut);
    $("refresh").addEventListener("click", refreshFiles);
    $("more").addEventListener("click", loadMore);
    $("all-users").addEventListener("change", refreshFiles);
    let filterTimer = null;
    $("prefix").addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(refreshFiles, 250);
    });
    $("override-set").addEventListener("click", () => consistencyAction("Override",
      () => api("POST", "/consistency/override", { json: { mode: $("override-mode").value } })));
    $("override-clear").addEventListener("click", () => consistencyAction("Clearing override",
      () => api("DELETE", "/consistency/override")));
    $("critical-add").addEventListener("click", () => {
      const key = $("critical-input").value.trim();
      if (!key) return;
      $("critical-input").value = "";
      addCritical(key);
    });
    setUpDropzone();
    window.addEventListener("hashchange", route);
  }

  async function start() {
    wire();
    try {
      await identify();
    } catch (error) {
      showError(`Cannot reach the server: ${error.message}`);
    }
    renderChrome();
    route();
  }

  start();
})();
