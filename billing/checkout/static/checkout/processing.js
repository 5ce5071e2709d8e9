/* Recur hosted checkout, "processing" page: the payment was confirmed but has not settled
 * yet (3-D Secure pending, or a processor that answers later). Polls the checkout's status
 * and moves on to the success page, or back to the form when the payment failed. */
(function () {
  "use strict";

  const root = document.getElementById("processing");
  if (!root) return;
  const statusUrl = root.dataset.statusUrl;
  const message = document.getElementById("processing-message");
  const authenticateButton = document.getElementById("authenticate");
  let delay = 1500;
  const deadline = Date.now() + 5 * 60 * 1000;

  async function poll() {
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) {
        const body = await response.json();
        if (body.redirect) {
          window.location.assign(body.redirect);
          return;
        }
      }
    } catch (error) {
      /* offline for a moment: try again */
    }
    if (Date.now() > deadline) {
      message.textContent = "This is taking longer than usual. You can safely close this page; " +
        "you will not be charged twice.";
      return;
    }
    delay = Math.min(delay * 1.3, 8000);
    window.setTimeout(poll, delay);
  }

  if (authenticateButton && typeof window.Stripe === "function") {
    const stripe = window.Stripe(root.dataset.publishableKey);
    authenticateButton.addEventListener("click", async function () {
      authenticateButton.disabled = true;
      await stripe.confirmCardPayment(root.dataset.actionSecret);
      authenticateButton.hidden = true;
      delay = 1000;
    });
  }
  window.setTimeout(poll, delay);
})();
