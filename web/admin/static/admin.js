// The console's few live parts, with no library: copy buttons and the export's progress.
"use strict";

async function copyFrom(button) {
  let text = button.dataset.copyText;
  if (text === undefined) {
    // Secrets are fetched at the click: the page itself shows them redacted.
    const answer = await fetch(button.dataset.copyFrom, { credentials: "same-origin" });
    text = (await answer.json())[button.dataset.copyKey];
  }
  await navigator.clipboard.writeText(text);
  button.dataset.copied = "true";
  setTimeout(() => { delete button.dataset.copied; }, 2000);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.ceil((seconds % 3600) / 60)} min`;
}

function showProgress(section, progress) {
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const bar = section.querySelector("progress");
  const finished = progress.status === "finished";
  const total = progress.total || 0;
  bar.max = Math.max(total, 1);
  bar.value = finished && !total ? 1 : progress.done;
  const percent = total ? Math.floor((100 * progress.done) / total) : finished ? 100 : 0;
  field("percent").textContent = `${percent} %`;
  field("status").textContent = progress.status;
  field("rows").textContent = `${progress.done} of ${total}`;
  field("rate").textContent = `${Math.round(progress.rate)} a second`;
  field("eta").textContent = progress.unfinished ? duration(progress.eta_seconds) : "—";
  field("failed").textContent = progress.failed;
  field("error").hidden = !progress.last_error;
  field("error").textContent = progress.last_error || "";
}

async function follow(section) {
  // Polls until the export ends; the buttons come from the server, so reload once it does.
  for (;;) {
    const answer = await fetch(section.dataset.progressUrl, { credentials: "same-origin" });
    const progress = await answer.json();
    if (progress.status) showProgress(section, progress);
    if (!progress.unfinished) {
      section.dispatchEvent(new CustomEvent("export-ended", { bubbles: true }));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy-text], button[data-copy-from]");
  if (button) copyFrom(button);
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-progress-url][data-live]").forEach(follow);
});
