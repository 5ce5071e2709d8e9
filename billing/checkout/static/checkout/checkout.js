/* Recur hosted checkout: the card element and the Pay button.
 *
 * The form re-renders the order summary through htmx on every change (see page.html).
 * Paying: Stripe.js turns the card element into a PaymentMethod (the card number never
 * reaches Recur), then the whole form plus payment_method_id is posted to the confirm
 * view with htmx.ajax. The server answers with HX-Redirect on success, or the summary
 * and out-of-band error messages to show next to the fields; when the bank asks for
 * 3-D Secure, an HX-Trigger "checkout:authenticate" event carries the PaymentIntent's
 * client secret for stripe.confirmCardPayment.
 *
 * localstripe (development and tests) serves a fake Stripe.js whose createPaymentMethod
 * does nothing; when it returns nothing and the server offered a devPaymentMethodUrl,
 * the fake card element's fields are posted there instead (see views.dev_payment_method).
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("checkout-config").textContent);
  const form = document.getElementById("checkout-form");
  const payButton = document.getElementById("pay-button");
  const cardSection = document.getElementById("card-section");
  const cardError = document.getElementById("error-card");
  const discountInput = document.getElementById("discount_code");
  const applyButton = document.getElementById("apply-discount");

  let stripe = null;
  let card = null;
  let busy = false;
  let leaving = false;

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function show(element, message) {
    if (!element) return;
    element.textContent = message || "";
    element.hidden = !message;
  }

  function slot(name) {
    return document.getElementById("error-" + name);
  }

  function needsCard() {
    const state = document.getElementById("checkout-state");
    return !state || state.dataset.needsCard === "true";
  }

  function setBusy(value) {
    busy = value;
    payButton.disabled = value;
    payButton.classList.toggle("is-busy", value);
    payButton.setAttribute("aria-busy", value ? "true" : "false");
    form.classList.toggle("is-busy", value);
  }

  /* After every swap: show or hide the card, mark fields with a message as invalid. */
  function syncState() {
    if (cardSection) cardSection.hidden = !needsCard();
    form.querySelectorAll(".field-error[id^='error-']").forEach(function (error) {
      const input = document.getElementById(error.id.slice("error-".length));
      if (input && input.matches("input, select")) {
        if (error.hidden) input.removeAttribute("aria-invalid");
        else input.setAttribute("aria-invalid", "true");
      }
    });
  }

  function mountCard() {
    if (typeof window.Stripe !== "function") {
      show(cardError, "The card form could not load. Check your connection and reload the page.");
      return;
    }
    stripe = window.Stripe(config.publishableKey);
    const elements = stripe.elements();
    card = elements.create("card", {
      hidePostalCode: true,
      style: {
        base: {
          fontSize: "16px",
          color: "#1a1f36",
          fontFamily: "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, sans-serif",
          "::placeholder": { color: "#8792a2" },
        },
        invalid: { color: "#df1b41" },
      },
    });
    card.mount("#card-element");
    card.on("change", function (event) {
      // Real Stripe.js passes {error, complete}; localstripe's element passes nothing.
      show(cardError, event && event.error ? event.error.message : "");
    });
  }

  /* localstripe's fake Stripe.js declares a top-level `class Element`, which shadows the
   * DOM's Element for every classic script of the page, so htmx's `instanceof Element`
   * checks fail and it ignores the page. The fake card element exists by now (creating one
   * needs that class): put the DOM's Element back before htmx processes the page (on
   * DOMContentLoaded, after this deferred script). A no-op with the real Stripe.js. */
  function restoreDomElement() {
    // eslint-disable-next-line no-global-assign
    if (typeof Element === "function" && Element !== window.Element) Element = window.Element;
  }

  function billingDetails() {
    const details = {
      name: form.elements.customer_name.value.trim() || undefined,
      email: form.elements.customer_email.value.trim() || undefined,
    };
    const country = form.elements.country.value;
    if (country) details.address = { country: country };
    return details;
  }

  async function createWithLocalstripe(details) {
    const value = card && card.value && card.value.card;
    if (!value || !value.number) return { error: { message: "Enter your card details." } };
    const response = await fetch(config.devPaymentMethodUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ card: value, billing_details: details }),
    });
    return response.json();
  }

  async function createPaymentMethod() {
    if (!stripe || !card) return { error: { message: "The card form has not loaded yet. Reload the page." } };
    const details = billingDetails();
    let result = await stripe.createPaymentMethod({ type: "card", card: card, billing_details: details });
    if (!result && config.devPaymentMethodUrl) result = await createWithLocalstripe(details);
    if (!result || (!result.paymentMethod && !result.error)) {
      return { error: { message: "Your card could not be read. Please try again." } };
    }
    return result;
  }

  async function pay(event) {
    event.preventDefault();
    if (busy || leaving) return;
    show(slot("payment"), "");
    show(slot("form"), "");
    show(cardError, "");
    if (!form.reportValidity()) return;
    setBusy(true);
    try {
      let paymentMethodId = "";
      if (needsCard()) {
        const result = await createPaymentMethod();
        if (result.error) {
          show(cardError, result.error.message || "Your card could not be used.");
          return;
        }
        paymentMethodId = result.paymentMethod.id;
      }
      await htmx.ajax("POST", config.confirmUrl, {
        source: form,
        values: { payment_method_id: paymentMethodId },
        target: "#summary",
        swap: "outerHTML",
      });
    } catch (error) {
      show(slot("payment"), "Something went wrong. Please try again.");
    } finally {
      if (!leaving) setBusy(false);
    }
  }

  /* 3-D Secure: the server confirmed the payment, the bank wants the customer. */
  async function authenticate(clientSecret) {
    setBusy(true);
    leaving = true;
    try {
      await stripe.confirmCardPayment(clientSecret);
    } finally {
      // Whatever the outcome, the server learns it from Stripe; the page shows it.
      window.location.assign(window.location.pathname);
    }
  }

  form.addEventListener("submit", pay);

  // Enter in the discount field applies the code; it never pays.
  discountInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      applyButton.click();
    }
  });

  document.body.addEventListener("htmx:confirm", function (event) {
    // No summary refresh while a payment is being confirmed: it would cancel the confirmation.
    const path = event.detail && event.detail.path;
    if ((busy || leaving) && path !== config.confirmUrl) event.preventDefault();
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    const xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Redirect")) leaving = true;
  });
  document.body.addEventListener("htmx:afterSettle", syncState);
  document.body.addEventListener("htmx:responseError", function () {
    show(slot("form"), "Something went wrong on our side. Please try again.");
  });
  document.body.addEventListener("htmx:sendError", function () {
    show(slot("form"), "We could not reach the server. Check your connection and try again.");
  });
  document.body.addEventListener("checkout:authenticate", function (event) {
    authenticate(event.detail.clientSecret);
  });

  mountCard();
  restoreDomElement();
  syncState();
})();
