// The hea-rag page: asks, searches and uploads through the same JSON API as any client.
// Text from the server is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// Server-sent events from a fetch() response: yields {kind, data} as each event arrives.
async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield { kind, data: data ? JSON.parse(data) : {} };
    }
  }
}

async function errorOf(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

// --- asking and searching ---------------------------------------------------------------

function clearResult() {
  for (const id of ["status", "answer", "refusal"]) $(id).textContent = "";
  $("answer").className = "answer";
  $("refusal").hidden = true;
  $("sources").replaceChildren();
  $("per-paper").hidden = true;
  $("per-paper").tBodies[0].replaceChildren();
}

function setStatus(text) {
  $("status").textContent = text;
}

// The passage with the sentence that supports the answer marked, when it is in the passage.
function passage(text, evidence) {
  const node = element("p", "passage");
  const start = evidence ? text.indexOf(evidence) : -1;
  if (start < 0) {
    node.textContent = text;
    return node;
  }
  node.append(text.slice(0, start), element("mark", "evidence", evidence),
              text.slice(start + evidence.length));
  return node;
}

function doiLink(doi) {
  const link = element("a", "doi", doi);
  link.href = `https://doi.org/${encodeURIComponent(doi).replace(/%2F/g, "/")}`;
  link.rel = "noopener";
  return link;
}

function card(item, evidence) {
  const node = element("article", "card");
  node.dataset.doi = item.doi || "";
  node.append(element("h3", null, `[${item.rank}] ${item.title || "(untitled)"}`));
  const meta = element("p", "meta");
  if (item.year) meta.append(`${item.year} · `);
  if (item.doi) meta.append(doiLink(item.doi), " · ");
  if (item.file) meta.append(`${item.file}${item.page ? ` p. ${item.page}` : ""} · `);
  meta.append(`score ${Number(item.score).toFixed(3)}`);
  node.append(meta, passage(item.text, evidence));
  return node;
}

function showAnswer(answer) {
  $("answer").textContent = answer.answer;
  $("answer").className = answer.answerable ? "answer answered" : "answer refused";
  if (!answer.answerable) {
    $("refusal").textContent = `Not answered (reason: ${answer.reason}).`;
    $("refusal").hidden = false;
  }
  const seconds = (answer.timings.retrieve || 0) + (answer.timings.generate || 0);
  setStatus(`${answer.answerable ? "Answered" : "Refused"} in ${seconds.toFixed(1)} s`);
  const evidence = answer.evidence;
  for (const source of answer.sources) {
    const sentence = evidence && evidence.paper_id === source.paper_id ? evidence.text : null;
    $("sources").append(card(source, sentence));
  }
}

// --papers N: one table row per paper, as each is answered (or refused)
function addPaperRow(row) {
  const table = $("per-paper");
  table.hidden = false;
  const line = element("tr");
  line.dataset.doi = row.source.doi || "";
  const answer = row.answerable ? element("td", "answered", row.answer)
                                : element("td", "refused", `refused (${row.reason})`);
  if (!row.answerable) answer.title = row.answer;
  const paper = element("td", null, `${row.source.title || "(untitled)"}` +
                                    `${row.source.year ? ` (${row.source.year})` : ""} `);
  if (row.source.doi) paper.append(doiLink(row.source.doi));
  line.append(element("td", null, row.rank), element("td", null, row.alloy || "–"), answer, paper);
  table.tBodies[0].append(line);
}

function showPapers(result) {
  const answered = result.answers.filter((row) => row.answerable).length;
  $("answer").textContent = result.reason ? result.answer : (result.summary || "");
  $("answer").className = answered ? "answer answered" : "answer refused";
  if (result.reason) {
    $("refusal").textContent = `Not answered (reason: ${result.reason}).`;
    $("refusal").hidden = false;
  }
  const seconds = (result.timings.retrieve || 0) + (result.timings.answer || 0);
  setStatus(`${answered} of ${result.answers.length} papers answered in ${seconds.toFixed(1)} s`);
}

function showError(message) {
  setStatus("");
  $("answer").className = "answer failed";
  $("answer").textContent = message;
}

async function ask(question) {
  const papers = Math.max(1, Number($("papers").value) || 1);
  setStatus("Waiting for the model…");
  const response = await fetch("/api/ask", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ question, papers, stream: true }),
  });
  if (!response.ok) return showError(await errorOf(response));
  for await (const { kind, data } of serverEvents(response)) {
    if (kind === "queued") {
      setStatus(data.position > 1 ? `In the queue: ${data.position - 1} question(s) ahead of yours`
                                  : "Next in line…");
    } else if (kind === "started") {
      setStatus("Reading the closest papers and generating…");
    } else if (kind === "token") {
      $("answer").textContent += data.text;
    } else if (kind === "row") {
      addPaperRow(data);
    } else if (kind === "answer") {
      (papers > 1 ? showPapers : showAnswer)(data);
    } else if (kind === "error") {
      showError(data.error);
    }
  }
}

async function search(query) {
  setStatus("Searching…");
  const response = await fetch("/api/search", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ query, k: 5 }),
  });
  if (!response.ok) return showError(await errorOf(response));
  const found = await response.json();
  setStatus(found.hits.length ? `${found.hits.length} papers found` : "No papers found");
  for (const hit of found.hits) $("sources").append(card(hit, null));
}

async function onAsk(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const mode = document.querySelector("input[name=mode]:checked").value;
  clearResult();
  $("ask-button").disabled = true;
  try {
    await (mode === "search" ? search(question) : ask(question));
  } catch (error) {
    showError(`The server could not be reached: ${error.message}`);
  } finally {
    $("ask-button").disabled = false;
  }
}

// --- adding papers ----------------------------------------------------------------------

async function refreshCounts() {
  const response = await fetch("/api/info");
  if (!response.ok) return;
  const counts = (await response.json()).server.counts;
  $("paper-count").textContent = counts.papers;
  $("passage-count").textContent = counts.passages;
}

function showProgress(data) {
  const bar = $("upload-progress");
  bar.hidden = false;
  if (data.total) {
    bar.max = data.total;
    bar.value = data.done;
    $("upload-status").textContent = `Embedding passages: ${data.done} of ${data.total}`;
  } else {
    bar.removeAttribute("value");
    $("upload-status").textContent = data.stage === "reading" ? "Reading the files…"
                                                              : `${data.stage}…`;
  }
}

function showSummary(summary) {
  $("upload-progress").hidden = true;
  $("upload-status").textContent =
    `Added ${summary.added} papers (${summary.passages} passages); ${summary.duplicates} ` +
    `already indexed, ${summary.skipped.length} skipped, ${summary.failed.length} failed. ` +
    `The index now holds ${summary.papers_total} papers.`;
  const report = $("upload-report");
  for (const [label, notes] of [["skipped", summary.skipped], ["failed", summary.failed]]) {
    if (!notes.length) continue;
    const list = element("ul", label);
    for (const note of notes) list.append(element("li", null, `${label} ${note.where}: ${note.reason}`));
    report.append(list);
  }
}

function showUploadError(message) {
  $("upload-progress").hidden = true;
  $("upload-status").textContent = "";
  $("upload-report").append(element("p", "failed", message));
}

async function upload(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file);
  $("upload-status").textContent = "Uploading…";
  const response = await fetch("/api/index?stream=true", { method: "POST", body: form });
  if (!response.ok) return showUploadError(await errorOf(response));
  for await (const { kind, data } of serverEvents(response)) {
    if (kind === "progress") showProgress(data);
    else if (kind === "summary") showSummary(data);
    else if (kind === "error") showUploadError(data.error);
  }
  await refreshCounts();
}

async function onUpload(event) {
  event.preventDefault();
  const files = $("files").files;
  if (!files.length) return;
  $("upload-report").replaceChildren();
  $("upload-button").disabled = true;
  try {
    await upload(files);
  } catch (error) {
    showUploadError(`The server could not be reached: ${error.message}`);
  } finally {
    $("upload-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", onAsk);
  $("upload-form").addEventListener("submit", onUpload);
  document.body.dataset.ready = "true";
});
