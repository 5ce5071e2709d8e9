/* Recur backoffice: htmx glue for modal actions, copy buttons. No dependencies besides htmx. */
(function () {
  "use strict";

  // Send the CSRF token with every htmx request (htmx reads hx-headers from <body> on each request).
  var csrf = document.querySelector('meta[name="csrf-token"]');
  if (csrf && !document.body.hasAttribute("hx-headers")) {
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRFToken": csrf.content }));
  }

  function modalRoot() {
    return document.getElementById("modal");
  }

  // Open the <dialog> htmx just put into #modal (or that the page was rendered with).
  function openModal() {
    var root = modalRoot();
    var dialog = root && root.querySelector("dialog");
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    var field = dialog.querySelector(".bo-field--error input, .bo-field--error textarea, .bo-field--error select")
      || dialog.querySelector("input:not([type=hidden]), textarea, select");
    if (field) field.focus();
    dialog.addEventListener("close", function () {
      if (dialog.parentNode === root) root.innerHTML = "";
    });
  }

  function showError(message) {
    var root = modalRoot();
    if (!root) return;
    root.innerHTML =
      '<dialog class="bo-modal bo-modal--error" aria-labelledby="bo-modal-title">' +
      '<header class="bo-modal-header"><h2 id="bo-modal-title">Something went wrong</h2>' +
      '<button type="button" class="bo-modal-close" data-modal-close aria-label="Close">&times;</button></header>' +
      '<div class="bo-modal-body"><p></p></div></dialog>';
    root.querySelector("p").textContent = message;
    openModal();
  }

  document.addEventListener("DOMContentLoaded", openModal);

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target === modalRoot()) openModal();
  });

  // A login page instead of a fragment means the session expired: reload to log in again.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var url = event.detail.xhr && event.detail.xhr.responseURL;
    if (url && new URL(url).pathname.endsWith("/login/")) {
      event.detail.shouldSwap = false;
      window.location.assign(url);
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var messages = {
      403: "You do not have permission to do this.",
      404: "This object no longer exists.",
      405: "This action cannot be called this way."
    };
    showError(messages[status] || "The server answered " + status + ". Nothing was changed if the action failed; try again or check the logs.");
  });

  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  document.addEventListener("htmx:sendError", function () {
    showError("The server could not be reached. Check your connection and try again.");
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-modal-close]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    // Clicking the backdrop (the dialog itself, outside its content) closes it.
    if (event.target.matches && event.target.matches("#modal dialog")) {
      var box = event.target.getBoundingClientRect();
      var inside = event.clientX >= box.left && event.clientX <= box.right &&
        event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) event.target.close();
      return;
    }
    // <button data-copy="#element-id">: copy that element's value or text.
    var copier = event.target.closest("[data-copy]");
    if (copier) {
      var source = document.querySelector(copier.getAttribute("data-copy"));
      if (!source) return;
      var text = "value" in source ? source.value : source.textContent;
      var done = function () {
        var label = copier.textContent;
        copier.textContent = "Copied";
        copier.classList.add("bo-button--done");
        setTimeout(function () {
          copier.textContent = label;
          copier.classList.remove("bo-button--done");
        }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else if (source.select) {
        source.select();
        document.execCommand("copy");
        done();
      }
    }
  });
})();
