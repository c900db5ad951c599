/* avajams web app: progressive enhancement only. Every page works without this script
   (forms post, the job page refreshes itself); with it, uploads show their progress, files can
   be dropped, and the job page updates live. No inline scripts: the CSP forbids them. */
"use strict";

(function () {
  function formatBytes(n) {
    var units = ["bytes", "KiB", "MiB", "GiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }

  /* --- home: drag and drop, size check, upload with progress --- */
  function setupUpload(form) {
    var input = form.querySelector("#file");
    var zone = form.querySelector("#dropzone");
    var nameOut = form.querySelector("#file-name");
    var message = form.querySelector("#upload-message");
    var progress = form.querySelector("#upload-progress");
    var bar = form.querySelector("#upload-bar");
    var percent = form.querySelector("#upload-percent");
    var button = form.querySelector("#upload-button");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);

    function showError(text) {
      message.textContent = text;
      message.hidden = !text;
    }

    function checkFile() {
      var file = input.files && input.files[0];
      zone.classList.toggle("has-file", Boolean(file));
      nameOut.textContent = file ? file.name + " (" + formatBytes(file.size) + ")" : "";
      if (file && file.size > maxBytes) {
        showError("“" + file.name + "” is " + formatBytes(file.size) + "; this server takes files up to " +
          formatBytes(maxBytes) + ".");
        return false;
      }
      if (file && file.size === 0) {
        showError("“" + file.name + "” is empty (0 bytes); choose a video file.");
        return false;
      }
      showError("");
      return Boolean(file);
    }

    input.addEventListener("change", checkFile);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        checkFile();
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!input.files || !input.files[0]) {
        showError("Choose a video first.");
        return;
      }
      if (!checkFile()) { return; }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("data-api"));
      xhr.responseType = "json";
      xhr.setRequestHeader("Accept", "application/json");
      progress.hidden = false;
      button.disabled = true;
      button.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var p = Math.floor((e.loaded / e.total) * 100);
          bar.value = p;
          percent.textContent = p + " %";
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        percent.textContent = "100 %";
        button.textContent = "Checking the video…";
      });
      function fail(text) {
        showError(text);
        progress.hidden = true;
        bar.value = 0;
        percent.textContent = "0 %";
        button.disabled = false;
        button.textContent = "Upload and match";
      }
      xhr.addEventListener("load", function () {
        var body = xhr.response || {};
        if (xhr.status === 202 && body.links) {
          window.location.assign(body.links.page);
          return;
        }
        var text = typeof body.detail === "string" ? body.detail : "The server refused the upload (" + xhr.status + ").";
        var retry = xhr.getResponseHeader("Retry-After");
        if ((xhr.status === 503 || xhr.status === 429) && retry) {
          text += " (try again in about " + retry + " s)";
        }
        fail(text.charAt(0).toUpperCase() + text.slice(1));
      });
      xhr.addEventListener("error", function () { fail("The upload failed: the connection to the server was lost."); });
      xhr.addEventListener("abort", function () { fail("The upload was cancelled."); });
      xhr.send(new FormData(form));
    });
  }

  /* --- job page: live progress by polling the JSON status --- */
  function setupJob(section) {
    var url = section.getAttribute("data-status-url");
    var resultUrl = section.getAttribute("data-result-url");
    var badge = document.getElementById("job-badge");
    var queueText = document.getElementById("queue-text");
    var cancelForm = document.getElementById("cancel-form");
    var state = section.getAttribute("data-state");
    if (state !== "queued" && state !== "running") { return; }

    function render(status) {
      badge.textContent = status.state;
      badge.className = "badge state-" + status.state;
      if (status.queue_position) {
        var ahead = status.queue_position - 1;
        queueText.textContent = ahead === 0 ? "next in line" : ahead + " job" + (ahead === 1 ? "" : "s") + " ahead of yours in the queue";
      } else if (status.state === "running") {
        queueText.textContent = "working on it…";
      }
      status.stages.forEach(function (stage) {
        var row = section.querySelector('.stage[data-stage="' + stage.name + '"]');
        if (!row) { return; }
        row.setAttribute("data-state", stage.state);
        var count = row.querySelector("[data-count]");
        var bar = row.querySelector("[data-bar]");
        if (stage.name === "upload") { return; }
        if (stage.state === "reused") {
          count.textContent = "reused from the first mix";
          bar.max = 1; bar.value = 1;
        } else if (stage.total) {
          count.textContent = stage.done + " / " + stage.total;
          bar.max = stage.total; bar.value = Math.min(stage.done, stage.total);
        } else if (stage.state === "done") {
          count.textContent = stage.done ? String(stage.done) : "";
          bar.max = 1; bar.value = 1;
        } else if (stage.state === "running") {
          count.textContent = stage.done ? String(stage.done) : "";
          bar.removeAttribute("value"); /* indeterminate */
        }
      });
    }

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (status) {
          render(status);
          if (status.state === "done") {
            window.location.replace(resultUrl);
          } else if (status.state === "queued" || status.state === "running") {
            window.setTimeout(poll, 800);
          } else {
            window.location.reload(); /* the server renders the failed / cancelled view */
          }
        })
        .catch(function () { window.setTimeout(poll, 2500); });
    }

    if (cancelForm) {
      cancelForm.addEventListener("submit", function () {
        var button = cancelForm.querySelector("button");
        button.disabled = true;
        button.textContent = "Cancelling…";
      });
    }
    window.setTimeout(poll, 400);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) { setupUpload(form); }
    var job = document.getElementById("job");
    if (job) { setupJob(job); }
  });
})();
