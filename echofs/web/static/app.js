// EchoFS web UI: plain JavaScript, no build step, served by the master.
//
// Everything the server sends (file names, ids, reasons) is user-controlled
// text, so the DOM is built with textContent only, never innerHTML.
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "echofs.token";
  const POLL_MS = 2000;
  // Listing walks pages of the API's largest size, at most this many per load.
  const LIST_PAGE = 1000;
  const LIST_PAGES_PER_LOAD = 10;
  const SORT_KEY = "echofs.sort";
  const DELETE_PARALLEL = 4;
  // Free space on one disk drifts between workers' reports by what was
  // written meanwhile; more than this share of the disk means separate disks.
  const SAME_DISK_SLACK = 0.01;
  // Per-file mode look-ups on the consistency page are one request each.
  const MODE_FILES = 50;

  const state = {
    auth: null, // "open" | "jwt"
    user: null, // {username, role}
    token: localStorage.getItem(TOKEN_KEY),
    page: null,
    pollTimer: null,
    folder: "", // the folder shown: "" (top level) or a path ending in "/"
    listing: [], // every file below the folder (and filter) fetched so far
    cursor: null, // where the listing continues, when it stopped at the page bound
    listGeneration: 0,
    storageGeneration: 0,
    sort: null, // {key: "name" | "size" | "modified", dir: "asc" | "desc"}
    files: new Map(), // id -> file, for the files shown at this level
    selected: new Set(), // file ids ticked for a bulk delete
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

  // The server revokes the token (every session of the account); the page
  // forgets it whether or not the server could be reached.
  async function signOut() {
    try {
      await fetch(`${API}/auth/logout`, { method: "POST", headers: authHeaders() });
    } catch (error) {
      // Offline: the token stays valid until it expires; nothing else to do here.
    }
    loggedOut();
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

  const PAGES = ["login", "files", "workers", "consistency", "keys", "forbidden"];

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
    const hash = window.location.hash.replace(/^#\/?/, "");
    const name = hash.split(/[/?]/)[0] || "files";
    if (name === "workers" || name === "consistency") {
      if (!isAdmin()) {
        showPage("forbidden");
        return;
      }
      showPage(name);
      startPolling(name === "workers" ? refreshWorkers : refreshConsistency);
      return;
    }
    if (name === "keys") {
      showPage("keys");
      refreshKeys().catch((error) => showError(error.message));
      return;
    }
    const folder = name === "files" ? folderFromHash(hash.slice("files".length)) : "";
    if (folder !== state.folder) {
      // A new folder: the filter, sub-folder and selection belonged to the old one.
      state.folder = folder;
      state.selected.clear();
      $("prefix").value = "";
      $("upload-folder").value = "";
      $("bulk-result").hidden = true;
      // Until the new listing arrives, show nothing rather than the old folder's files.
      state.listing = [];
      state.cursor = null;
      clear($("files-body"));
      $("files-empty").hidden = true;
      $("files-count").textContent = "Loading…";
    }
    showPage("files");
    renderCrumbs();
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
  //
  // Folders are the '/'-separated parts of file paths; the API lists by path
  // prefix without grouping, so a folder's view is built here from every
  // file below it (fetched page by page, up to LIST_PAGES_PER_LOAD pages).

  function folderHash(folder) {
    return `#/files/${filePath(folder)}`;
  }

  function folderFromHash(rest) {
    const decoded = rest.split("/").map((part) => {
      try {
        return decodeURIComponent(part);
      } catch (_) {
        return part; // a hand-typed stray '%': take the text as it is
      }
    }).filter(Boolean).join("/");
    return decoded ? `${decoded}/` : "";
  }

  function filterText() {
    return $("prefix").value.trim();
  }

  function allUsers() {
    return state.auth === "jwt" && isAdmin() && $("all-users").checked ? "true" : undefined;
  }

  async function listBelow(prefix, cursor) {
    const files = [];
    let next = cursor;
    for (let page = 0; page < LIST_PAGES_PER_LOAD; page += 1) {
      const body = await api("GET", "/files", {
        query: { prefix, limit: LIST_PAGE, cursor: next, all: allUsers() },
      });
      files.push(...body.files);
      next = body.next_cursor;
      if (!next) break;
    }
    return { files, cursor: next };
  }

  async function refreshFiles() {
    const generation = ++state.listGeneration;
    try {
      const { files, cursor } = await listBelow(state.folder + filterText(), null);
      // A newer refresh (typing, an upload finishing) started meanwhile: its answer wins.
      if (generation !== state.listGeneration) return;
      state.listing = files;
      state.cursor = cursor;
      renderFiles();
    } catch (error) {
      showError(`Cannot list files: ${error.message}`);
    }
    refreshStorage();
  }

  async function loadMore() {
    const generation = state.listGeneration;
    try {
      const { files, cursor } = await listBelow(state.folder + filterText(), state.cursor);
      if (generation !== state.listGeneration) return;
      state.listing.push(...files);
      state.cursor = cursor;
      renderFiles();
    } catch (error) {
      showError(`Cannot list files: ${error.message}`);
    }
  }

  function groupByFolder(listing, folder) {
    const folders = new Map();
    const files = [];
    for (const file of listing) {
      const rest = file.path.slice(folder.length);
      const slash = rest.indexOf("/");
      if (slash < 0) {
        files.push(file);
        continue;
      }
      const name = rest.slice(0, slash);
      let entry = folders.get(name);
      if (!entry) {
        entry = { name, path: `${folder}${name}/`, count: 0, size: 0, updated_at: null };
        folders.set(name, entry);
      }
      entry.count += 1;
      entry.size += file.size;
      if (!entry.updated_at || Date.parse(file.updated_at) > Date.parse(entry.updated_at)) {
        entry.updated_at = file.updated_at;
      }
    }
    return { folders: [...folders.values()], files };
  }

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const SORTS = {
    name: () => 0, // the name tie-break below is the whole order
    size: (a, b) => a.size - b.size,
    modified: (a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at),
  };

  function loadSort() {
    try {
      const saved = JSON.parse(localStorage.getItem(SORT_KEY));
      if (saved && saved.key in SORTS && (saved.dir === "asc" || saved.dir === "desc")) {
        return saved;
      }
    } catch (_) { /* unreadable: start from the default */ }
    return { key: "name", dir: "asc" };
  }

  function sortEntries(entries, nameOf) {
    const by = SORTS[state.sort.key];
    const sign = state.sort.dir === "asc" ? 1 : -1;
    return [...entries].sort((a, b) => sign * (by(a, b)
      || collator.compare(nameOf(a), nameOf(b))
      || (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0)));
  }

  function setSort(key) {
    const dir = state.sort.key === key && state.sort.dir === "asc" ? "desc" : "asc";
    state.sort = { key, dir };
    localStorage.setItem(SORT_KEY, JSON.stringify(state.sort));
    renderFiles();
  }

  function renderSortMarks() {
    for (const th of document.querySelectorAll("#files-table th.sortable")) {
      const on = th.dataset.sort === state.sort.key;
      th.setAttribute("aria-sort",
        !on ? "none" : state.sort.dir === "asc" ? "ascending" : "descending");
    }
  }

  function renderCrumbs() {
    const list = $("crumbs");
    clear(list);
    const parts = state.folder ? state.folder.slice(0, -1).split("/") : [];
    const trail = [{ label: "All files", folder: "" }, ...parts.map((part, i) => ({
      label: part, folder: `${parts.slice(0, i + 1).join("/")}/` }))];
    trail.forEach((crumb, i) => {
      const here = i === trail.length - 1;
      list.append(el("li", {}, here
        ? el("span", { "aria-current": "page" }, crumb.label)
        : el("a", { href: folderHash(crumb.folder) }, crumb.label)));
    });
    $("upload-where").textContent = state.folder || "the top level";
  }

  // Long names get break opportunities after their separators, so a narrow
  // screen wraps "q4_report-final.pdf" at its parts rather than letter by letter.
  function breakable(text) {
    return text.split(/(?<=[/_.-])/).flatMap((part, i) => (i ? [el("wbr"), part] : [part]));
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function renderFiles() {
    const filter = filterText();
    // A filter shows every match below this folder, flat: that is what a search is for.
    const { folders, files } = filter
      ? { folders: [], files: state.listing } : groupByFolder(state.listing, state.folder);
    state.files = new Map(files.map((f) => [f.file_id, f]));
    for (const id of state.selected) if (!state.files.has(id)) state.selected.delete(id);
    const showOwner = state.auth === "open" || $("all-users").checked;
    const relative = (file) => file.path.slice(state.folder.length);
    const body = $("files-body");
    clear(body);
    for (const folder of sortEntries(folders, (f) => f.name)) {
      body.append(folderRow(folder, showOwner));
    }
    for (const file of sortEntries(files, relative)) {
      body.append(fileRow(file, relative(file), showOwner));
    }
    for (const id of state.expanded) {
      const file = state.files.get(id);
      if (file) toggleVersions(file, true);
    }
    const empty = $("files-empty");
    empty.hidden = folders.length + files.length > 0;
    empty.textContent = filter ? `No file names here start with “${filter}”.`
      : state.folder ? "Nothing in this folder any more." : "No files yet. Drop one above.";
    const counts = [];
    if (files.length || !folders.length) counts.push(plural(files.length, "file"));
    if (folders.length) counts.push(plural(folders.length, "folder"));
    $("files-count").textContent = counts.join(" · ") + (state.cursor ? " (more available)" : "");
    $("more").hidden = !state.cursor;
    $("files-truncated").hidden = !state.cursor;
    $("files-truncated").textContent = `Showing the first ${state.listing.length} files below `
      + "this folder; folders and sorting cover those. Load more to see the rest.";
    renderSortMarks();
    updateSelection();
    renderChrome();
  }

  function folderRow(folder, showOwner) {
    return el("tr", { class: "folder-row", dataset: { folder: folder.path } },
      el("td", { class: "pick" }),
      el("td", { class: "name" },
        el("a", { href: folderHash(folder.path), class: "folder-link" },
          el("span", { class: "folder-icon", "aria-hidden": "true" }),
          breakable(`${folder.name}/`))),
      el("td", { class: "num size" }, formatBytes(folder.size)),
      el("td", { class: "count muted small", colspan: 2 }, plural(folder.count, "file")),
      el("td", { class: "when" }, formatWhen(folder.updated_at)),
      el("td", { class: "owner-col", hidden: !showOwner }),
      el("td", { class: "row-actions" }));
  }

  function fileRow(file, name, showOwner) {
    return el("tr", { class: "file-row", dataset: { fileId: file.file_id, path: file.path } },
      el("td", { class: "pick" },
        el("input", { type: "checkbox", class: "select", "aria-label": `Select ${file.path}`,
                      checked: state.selected.has(file.file_id),
                      onchange: (event) => select(file.file_id, event.target.checked) })),
      el("td", { class: "name", title: file.path }, breakable(name)),
      el("td", { class: "num size" }, formatBytes(file.size)),
      el("td", { class: "mode" }, modeBadge(file.mode)),
      el("td", { class: "num version" },
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

  function select(id, on) {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    updateSelection();
  }

  function selectAll(on) {
    for (const id of state.files.keys()) select(id, on);
    for (const box of $("files-body").querySelectorAll("tr.file-row input.select")) {
      box.checked = on;
    }
  }

  function updateSelection() {
    const n = state.selected.size;
    const button = $("delete-selected");
    button.disabled = n === 0;
    button.textContent = n ? `Delete selected (${n})` : "Delete selected";
    const all = $("select-all");
    all.checked = n > 0 && n === state.files.size;
    all.indeterminate = n > 0 && n < state.files.size;
    all.disabled = state.files.size === 0;
  }

  async function deleteSelected() {
    const targets = [...state.selected].map((id) => state.files.get(id)).filter(Boolean);
    if (!targets.length) return;
    const shown = targets.slice(0, 10).map((f) => f.path);
    if (targets.length > shown.length) shown.push(`… and ${targets.length - shown.length} more`);
    if (!window.confirm(`Delete ${plural(targets.length, "file")} and all their versions?\n\n`
                        + shown.join("\n"))) return;
    const button = $("delete-selected");
    button.disabled = true; // one bulk delete at a time
    button.textContent = `Deleting ${plural(targets.length, "file")}…`;
    const queue = [...targets];
    const failures = [];
    // A few deletes at a time: a long selection goes quickly without
    // queueing hundreds of requests on the master at once.
    const deleter = async () => {
      for (let file = queue.shift(); file; file = queue.shift()) {
        try {
          await api("DELETE", `/files/${file.file_id}`);
          state.selected.delete(file.file_id);
          state.expanded.delete(file.file_id);
        } catch (error) {
          failures.push({ file, error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_PARALLEL, queue.length) }, deleter));
    const deleted = targets.length - failures.length;
    $("bulk-summary").textContent = `Deleted ${deleted} of ${plural(targets.length, "file")}.`
      + (failures.length ? ` ${failures.length} could not be deleted:` : "");
    const list = $("bulk-errors");
    clear(list);
    for (const { file, error } of failures) {
      list.append(el("li", { dataset: { path: file.path } },
        el("strong", {}, file.path), `: ${error.message}`));
    }
    const result = $("bulk-result");
    result.hidden = false;
    result.classList.toggle("failed", failures.length > 0);
    await refreshFiles();
    updateSelection(); // also when the refresh failed and left the old rows
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
      state.selected.delete(file.file_id);
      await refreshFiles();
    } catch (error) {
      showError(`Delete of ${file.path} failed: ${error.message}`);
    }
  }

  // -- storage summary --------------------------------------------------------------------

  async function fetchHealth() {
    const response = await fetch(`${API}/health`, { headers: authHeaders() });
    // 503 means too few workers to take a write; the body still describes the node.
    if (response.status !== 200 && response.status !== 503) throw await errorOf(response);
    return response.json();
  }

  // The embedded node's workers are directories on one disk, so each reports
  // the same capacity and (give or take the writes between their reports)
  // the same free space: counting it once per worker would invent disks.
  function sharedDisk(workers) {
    const sized = workers.filter((w) => w.capacity_bytes !== null && w.free_bytes !== null);
    if (sized.length < 2 || sized.length !== workers.length) return null;
    const capacity = sized[0].capacity_bytes;
    if (!sized.every((w) => w.capacity_bytes === capacity)) return null;
    const free = sized.map((w) => w.free_bytes);
    if (Math.max(...free) - Math.min(...free) > capacity * SAME_DISK_SLACK) return null;
    return { capacity, free: Math.min(...free) };
  }

  function showSharedDisk(workers, table, line) {
    const shared = sharedDisk(workers);
    table.classList.toggle("shared-disk", !!shared);
    line.hidden = !shared;
    if (shared) {
      line.textContent = `All ${workers.length} workers store on one disk: `
        + `${formatBytes(shared.capacity)} capacity, ${formatBytes(shared.free)} free (shared).`;
    }
  }

  function fact(term, ...value) {
    return [el("dt", {}, term), el("dd", {}, ...value)];
  }

  async function refreshStorage() {
    const generation = ++state.storageGeneration;
    try {
      const whole = state.folder === "" && !filterText()
        ? { files: state.listing, cursor: state.cursor } : await listBelow("", null);
      const [health, workers] = await Promise.all([
        fetchHealth(),
        isAdmin() ? api("GET", "/workers/health") : null,
      ]);
      if (generation !== state.storageGeneration) return;
      const count = `${whole.files.length}${whole.cursor ? "+" : ""}`;
      const bytes = formatBytes(whole.files.reduce((sum, f) => sum + f.size, 0));
      const alive = `${health.workers.alive} of ${health.workers.total}`;
      const queue = health.replication_queue || {};
      $("storage-line").textContent = `${count} files · ${bytes} · `
        + `${health.replication_factor} replicas · ${alive} workers alive`;
      const facts = $("storage-facts");
      clear(facts);
      facts.append(
        ...fact("Files", `${count}${allUsers() || state.auth === "open" ? "" : " of yours"}`),
        ...fact("Size", `${bytes} (current versions, before replication)`),
        ...fact("Replicas", `${health.replication_factor} copies of every chunk; `
          + `a write is acknowledged once ${health.write_quorum} have it`),
        ...fact("Copies owed", `${queue.depth ?? 0} waiting for a worker`),
        ...fact("Workers", `${alive} alive`),
        ...storageFacts(health.storage));
      renderWorkersStorage(workers ? workers.workers : null);
    } catch (error) {
      showError(`Cannot read the storage summary: ${error.message}`);
    }
  }

  // What the node says about its disks and deleted data (absent on older masters).
  function storageFacts(storage) {
    if (!storage) return [];
    const facts = [];
    if (storage.note) facts.push(...fact("Disk", storage.note));
    const waiting = storage.reclaimable || {};
    if (waiting.bytes > 0) {
      const when = waiting.earliest_at
        ? `; the first of it from ${new Date(waiting.earliest_at).toLocaleString()}` : "";
      facts.push(...fact("Deleted, not yet freed", `${formatBytes(waiting.bytes)} on disk `
        + `(kept ${Math.round(waiting.grace_seconds / 60)} min after deletion${when})`));
    }
    return facts;
  }

  function renderWorkersStorage(workers) {
    $("storage-workers-box").hidden = !workers || workers.length === 0;
    $("storage-disk").hidden = true;
    if (!workers) return;
    showSharedDisk(workers, $("storage-workers"), $("storage-disk"));
    const tbody = $("storage-workers-body");
    clear(tbody);
    for (const w of workers) {
      tbody.append(el("tr", { dataset: { workerId: w.id, state: w.state, space: w.space || "" } },
        el("td", {}, w.id),
        el("td", {}, el("span", { class: `badge state-${w.state}` }, w.state), spaceBadge(w)),
        el("td", { class: "num chunks" }, w.chunk_count ?? "–"),
        el("td", { class: "num stored" }, formatBytes(w.bytes_stored)),
        el("td", { class: "num disk-col" }, formatBytes(w.capacity_bytes)),
        el("td", { class: "num disk-col" }, formatBytes(w.free_bytes))));
    }
  }

  // -- uploads ----------------------------------------------------------------------------

  function uploadTarget(file) {
    const sub = $("upload-folder").value.trim().replace(/^\/+|\/+$/g, "");
    return `${state.folder}${sub ? `${sub}/` : ""}${file.name}`;
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
    if (file.size > resumableAbove()) {
      uploadResumable(file, target, { item, bar, status });
      return;
    }
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

  // -- resumable uploads (upload sessions) ---------------------------------------------
  // A large file goes in parts: each part is sent (and re-sent after a dropped
  // connection) on its own, with its SHA-256 when the browser can compute it,
  // and the session id is kept in localStorage under the file's name, size and
  // modification time, so choosing the same file again resumes it.

  const RESUMABLE_ABOVE = 64 * 1024 * 1024;
  const PARTS_AT_ONCE = 3;
  const PART_ATTEMPTS = 8;
  const SESSION_PREFIX = "echofs.upload:";

  function resumableAbove() {
    const set = Number(localStorage.getItem("echofs.resumableAbove"));
    return Number.isFinite(set) && set > 0 ? set : RESUMABLE_ABOVE;
  }

  function sessionKey(file, target) {
    return `${SESSION_PREFIX}${target}|${file.size}|${file.lastModified}`;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function hexDigest(blob) {
    if (!(window.crypto && crypto.subtle)) return null;  // not a secure context
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One part by XMLHttpRequest (for its progress); resolves with the HTTP
  // status and body, status 0 when the connection failed.
  function sendPart(sessionId, index, blob, sha256, onProgress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", `${API}/files/upload/${sessionId}/parts/${index}`);
      for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      if (sha256) xhr.setRequestHeader("X-EchoFS-SHA256", sha256);
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* keep null */ }
        resolve({ status: xhr.status, body });
      });
      xhr.addEventListener("error", () => resolve({ status: 0, body: null }));
      xhr.addEventListener("abort", () => resolve({ status: 0, body: null }));
      xhr.send(blob);
    });
  }

  async function openSession(file, target) {
    const key = sessionKey(file, target);
    const known = localStorage.getItem(key);
    if (known) {
      try {
        const session = await api("GET", `/files/upload/${known}`);
        if (session.file_size === file.size) return { session, resumed: true };
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) throw error;
      }
      localStorage.removeItem(key);
    }
    const session = await api("POST", "/files/upload/init",
      { json: { path: target, file_size: file.size } });
    localStorage.setItem(key, session.session_id);
    return { session: { ...session, received: [] }, resumed: false };
  }

  async function uploadResumable(file, target, { item, bar, status }) {
    const fail = (message) => {
      item.dataset.state = "failed";
      status.textContent = message;
      status.classList.add("error");
    };
    let opened;
    try {
      opened = await openSession(file, target);
    } catch (error) {
      fail(error instanceof ApiError ? error.message : "network error");
      return;
    }
    const { session, resumed } = opened;
    const id = session.session_id;
    const step = session.chunk_size;
    item.dataset.sessionId = id;
    const held = new Set(session.received || []);
    const sizeOf = (n) => Math.max(0, Math.min(step, file.size - n * step));
    let done = 0;
    for (const n of held) done += sizeOf(n);
    const inFlight = new Map();
    const show = () => {
      let sent = done;
      for (const loaded of inFlight.values()) sent += loaded;
      bar.value = file.size ? Math.floor((sent / file.size) * 100) : 100;
      status.textContent = `${formatBytes(sent)} of ${formatBytes(file.size)}`
        + (resumed ? ` · resumed (${held.size} of ${session.total_chunks} parts held)` : "")
        + (item.dataset.retrying ? " · connection lost, retrying…" : "");
    };
    show();
    const missing = [];
    for (let n = 0; n < session.total_chunks; n += 1) if (!held.has(n)) missing.push(n);
    let failure = null;

    async function sendOne(n) {
      const blob = file.slice(n * step, n * step + sizeOf(n));
      const sha256 = await hexDigest(blob);
      for (let attempt = 0; attempt < PART_ATTEMPTS; attempt += 1) {
        const answer = await sendPart(id, n, blob, sha256, (loaded) => {
          inFlight.set(n, loaded);
          show();
        });
        inFlight.delete(n);
        if (answer.status === 200) {
          delete item.dataset.retrying;
          done += blob.size;
          show();
          return;
        }
        const transient = answer.status === 0 || answer.status >= 500
          || answer.status === 408 || answer.status === 429;
        if (!transient) {
          throw new Error(answer.body && answer.body.error ? answer.body.error.message
            : `HTTP ${answer.status}`);
        }
        item.dataset.retrying = "true";
        show();
        await sleep(Math.min(30000, 500 * 2 ** attempt));
      }
      throw new Error("connection lost; choose the same file again to resume");
    }

    async function worker() {
      while (missing.length && !failure) {
        const n = missing.shift();
        try {
          await sendOne(n);
        } catch (error) {
          failure = failure || error;
        }
      }
    }

    await Promise.all(Array.from({ length: PARTS_AT_ONCE }, worker));
    if (failure) {
      fail(failure.message);
      return;
    }
    try {
      const body = await api("POST", `/files/upload/${id}/complete`, { json: {} });
      localStorage.removeItem(sessionKey(file, target));
      bar.value = 100;
      item.dataset.state = "done";
      status.textContent = `done · v${body.version} · ${body.mode}`
        + (resumed ? " · resumed" : "");
      setTimeout(() => item.remove(), 6000);
      refreshFiles();
    } catch (error) {
      fail(error instanceof ApiError ? error.message : "network error; choose the file again");
    }
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

  // A store down to its reserved free space takes no new chunks (uploads may
  // answer 507) but still serves reads and deletes; "low" is close to that.
  const SPACE_LABELS = { full: "full: no space for new data", low: "low on space" };

  function spaceBadge(w) {
    const label = SPACE_LABELS[w.space];
    return label ? el("span", { class: `badge space-${w.space}` }, label) : null;
  }

  async function refreshWorkers() {
    const body = await api("GET", "/workers/health");
    const tbody = $("workers-body");
    clear(tbody);
    for (const w of body.workers) {
      tbody.append(el("tr", { dataset: { workerId: w.id, state: w.state, space: w.space || "" } },
        el("td", {}, w.id),
        el("td", {}, el("span", { class: `badge state-${w.state}` }, w.state), spaceBadge(w)),
        el("td", { class: "num disk-col" }, formatBytes(w.capacity_bytes)),
        el("td", { class: "num disk-col" }, formatBytes(w.free_bytes)),
        el("td", { class: "num" }, formatBytes(w.bytes_stored)),
        el("td", { class: "num" }, w.chunk_count ?? "–"),
        el("td", { class: "num rtt" }, w.rtt_ms === null ? "–" : `${w.rtt_ms.toFixed(1)} ms`),
        el("td", { class: "num" }, `${(w.seconds_since_heartbeat ?? 0).toFixed(1)} s ago`),
        el("td", { class: "num" }, `${w.calls ?? 0} / ${w.failures ?? 0}`),
        el("td", { class: "small muted" }, w.store || "–")));
    }
    showSharedDisk(body.workers, $("workers-table"), $("workers-disk"));
    const full = body.workers.filter((w) => w.space === "full").length;
    $("workers-summary").textContent = `${body.alive} of ${body.total} alive`
      + (full ? ` · ${full} full` : "");
    $("workers-updated").textContent = `Last update ${new Date().toLocaleTimeString()}.`;
  }

  // -- consistency ----------------------------------------------------------------------------

  function showController(connected, consistency) {
    $("no-controller").hidden = connected;
    $("consistency-live").hidden = !connected;
    if (!connected) $("no-controller-mode").textContent = consistency.default_mode || "strong";
    $("consistency-updated").textContent = `Last update ${new Date().toLocaleTimeString()}.`;
  }

  async function refreshConsistency() {
    // Health says whether a controller is linked; a master without one has
    // no consistency API at all (404), which means the same thing.
    const consistency = (await fetchHealth()).consistency || {};
    if (consistency.controller_connected === false) {
      if (state.page === "consistency") showController(false, consistency);
      return;
    }
    const filesQuery = { limit: MODE_FILES, all: state.auth === "jwt" ? "true" : undefined };
    let answers;
    try {
      answers = await Promise.all([
        api("GET", "/consistency/status"),
        api("GET", "/consistency/critical-keys"),
        api("GET", "/consistency/transitions", { query: { limit: 50 } }),
        api("GET", "/files", { query: filesQuery }),
      ]);
    } catch (error) {
      if (error.status !== 404) throw error;
      if (state.page === "consistency") showController(false, consistency);
      return;
    }
    const [status, critical, transitions, listing] = answers;
    const modes = await Promise.all(listing.files.map(
      (f) => api("GET", "/consistency/mode", { query: { object_id: f.file_id } })
        .catch(() => null)));
    if (state.page !== "consistency") return;
    showController(true, consistency);

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
    $("logout").addEventListener("click", signOut);
    $("refresh").addEventListener("click", refreshFiles);
    $("delete-selected").addEventListener("click", deleteSelected);
    $("select-all").addEventListener("change", (event) => selectAll(event.target.checked));
    for (const button of document.querySelectorAll("#files-table button.sort")) {
      button.addEventListener("click", () => setSort(button.dataset.sort));
    }
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
    $("keys-create").addEventListener("click", () => createKey().catch(
      (error) => showError(error.message)));
    setUpDropzone();
    window.addEventListener("hashchange", route);
  }

  // -- S3 access keys ----------------------------------------------------------------------

  async function refreshKeys() {
    const open = state.auth === "open";
    $("keys-mode").textContent = open
      ? "Single-user mode: the S3 endpoint accepts any well-formed signature, so there are " +
        "no keys to manage. Use any access key and secret (see the README's S3 section)."
      : "Keys sign S3 requests as your account (aws-cli, boto3, rclone, s3cmd). " +
        "Revoke a key and requests signed with it fail at once.";
    $("keys-panel").hidden = open;
    if (open) return;
    const body = await api("GET", "/auth/keys");
    const rows = $("keys-body");
    clear(rows);
    for (const key of body.keys) {
      const revoke = el("button", { type: "button", class: "danger small" }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!window.confirm(`Revoke ${key.access_key_id}?`)) return;
        try {
          await api("DELETE", `/auth/keys/${encodeURIComponent(key.access_key_id)}`);
          $("keys-new").hidden = true;
          await refreshKeys();
        } catch (error) {
          showError(error.message);
        }
      });
      rows.append(el("tr", {}, el("td", {}, el("code", {}, key.access_key_id)),
        el("td", {}, new Date(key.created_at * 1000).toLocaleString()), el("td", {}, revoke)));
    }
    $("keys-empty").hidden = body.keys.length > 0;
  }

  async function createKey() {
    const key = await api("POST", "/auth/keys", { json: {} });
    $("keys-new-id").textContent = key.access_key_id;
    $("keys-new-secret").textContent = key.secret_access_key;
    $("keys-new").hidden = false;
    await refreshKeys();
  }

  async function start() {
    state.sort = loadSort();
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
