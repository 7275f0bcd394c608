// The page a password-reset link opens, `/reset/<token>`: choose a new password, then log in
// with it. Every refusal says what to do next.
import { gql } from "./gql.js";
import { h, replace, field, alertBox } from "./dom.js";

const main = document.getElementById("main");
const token = decodeURIComponent(location.pathname.split("/")[2] ?? "");

function start() {
  const error = alertBox();
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const form = h("form", { "aria-labelledby": "reset-title", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await gql(`mutation($token: String!, $password: String!) { resetPassword(token: $token, password: $password) }`, { token, password: password.value });
      replace(main, h("h1", { text: "Your password is changed" }), h("p", { text: "Log in with your new password." }),
        h("p", {}, h("a", { href: "/", text: "Log in" })));
    } catch (failure) {
      error.textContent = refusal(failure);
    }
  } }, h("h1", { id: "reset-title", text: "Choose a new password" }), field("New password (8 to 128 characters)", password),
  h("button", { type: "submit", class: "primary" }, "Change password"), error);
  replace(main, form);
}

function refusal(failure) {
  switch (failure.code) {
    case "VALIDATION": return `Please check the password: ${failure.message}`;
    case "TOKEN_EXPIRED": return "This link has expired: ask for a new one with “Forgot your password?” on the log-in page.";
    case "INVALID_TOKEN": return "This link was already used or replaced by a newer one: use the newest email, or ask again.";
    case "RATE_LIMITED": return "Too many attempts: wait a minute and try again.";
    default: return failure.message;
  }
}

start();
