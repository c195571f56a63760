// The search page: upload, drag or pick a random gallery image; show its nearest images.
"use strict";

const $ = (id) => document.getElementById(id);
let gallerySize = 0;
let pending = 0; // id of the latest search, so a slow answer never replaces a newer one

function setState(state, text) {
  document.body.dataset.state = state;
  const message = $("message");
  message.hidden = !text;
  message.textContent = text || "";
  message.className = state === "error" ? "error" : "";
}

let queryObjectUrl = null; // the uploaded file shown as the query, released when replaced

function showQuery(src, title, label, row) {
  if (queryObjectUrl && queryObjectUrl !== src) URL.revokeObjectURL(queryObjectUrl);
  queryObjectUrl = src.startsWith("blob:") ? src : null;
  $("query").hidden = false;
  $("query-image").src = src;
  $("query-title").textContent = title;
  $("query-label").textContent = label || "";
  $("query").dataset.row = row === undefined ? "" : String(row);
}

async function search(body, headers) {
  const ticket = ++pending;
  setState("loading", "searching…");
  let reply, data;
  try {
    reply = await fetch("/api/search", { method: "POST", body, headers });
    data = await reply.json();
  } catch (err) {
    if (ticket === pending) {
      clearResults();
      setState("error", "the server did not answer: " + err.message);
    }
    return;
  }
  if (ticket !== pending) return;
  if (!reply.ok) {
    clearResults();
    setState("error", data.error || "search failed (" + reply.status + ")");
    return;
  }
  render(data);
  setState("done", "");
}

function clearResults() {
  $("query").hidden = true;
  $("query").dataset.row = "";
  $("timing").textContent = "";
  $("results").replaceChildren();
}

function render(data) {
  const q = data.query;
  if (q.type === "row") {
    showQuery(q.image_url, q.id + " (row " + q.row + ")", q.label_name ? "class " + q.label_name : "", q.row);
  }
  $("timing").textContent = data.results.length + " nearest images in " + data.took_ms.toFixed(1) + " ms";
  const list = $("results");
  list.replaceChildren(...data.results.map(card));
}

function card(hit, i) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "hit";
  button.dataset.row = hit.row;
  button.title = hit.id + " — click to search from this image";
  const img = document.createElement("img");
  img.src = hit.image_url;
  img.alt = hit.label_name || hit.id;
  const caption = document.createElement("span");
  caption.className = "caption";
  caption.innerHTML = "<span class='rank'></span><span class='score'></span><span class='label'></span>";
  caption.querySelector(".rank").textContent = "#" + (i + 1);
  caption.querySelector(".score").textContent = hit.score.toFixed(4);
  caption.querySelector(".label").textContent = hit.label_name || "";
  button.append(img, caption);
  button.addEventListener("click", () => searchRow(hit.row));
  item.append(button);
  return item;
}

function k() {
  return $("k").value;
}

function searchFile(file) {
  if (!file) return;
  showQuery(URL.createObjectURL(file), file.name, "uploaded", undefined);
  const form = new FormData();
  form.append("file", file);
  form.append("k", k());
  search(form, {});
}

function searchRow(row) {
  window.scrollTo({ top: 0, behavior: "smooth" });
  search(JSON.stringify({ id: row, k: Number(k()) }), { "Content-Type": "application/json" });
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => {
    searchFile(e.target.files[0]);
    e.target.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    document.addEventListener(name, () => drop.classList.remove("over"));
  }
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    searchFile(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") $("file").click();
  });
  $("random").addEventListener("click", () => {
    if (gallerySize > 0) searchRow(Math.floor(Math.random() * gallerySize));
  });
  $("k").addEventListener("change", () => {
    const row = $("query").dataset.row;
    if (row) searchRow(Number(row));
  });
}

async function start() {
  wire();
  try {
    const info = await (await fetch("/api/info")).json();
    gallerySize = info.gallery;
    document.body.classList.toggle("pixels", info.pictures !== "source");
    const classes = info.class_names.length ? ", " + info.class_names.length + " classes" : "";
    $("gallery-info").textContent = info.gallery.toLocaleString() + " images" + classes +
      " · " + info.image_shape.slice(1).join("×") + " pixels";
  } catch (err) {
    setState("error", "cannot reach the server: " + err.message);
  }
}

start();
