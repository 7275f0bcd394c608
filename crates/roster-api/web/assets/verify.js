// The page a verification link opens, `/verify/<token>`: confirms the email at once (the link
// is the proof), then sends the user to log in. Every refusal says what to do next.
import { gql } from "./gql.js";
import { h, replace } from "./dom.js";

const main = document.getElementById("main");
const token = decodeURIComponent(location.pathname.split("/")[2] ?? "");

async function start() {
  try {
    await gql(`mutation($token: String!) { verifyEmail(token: $token) }`, { token });
    replace(main, h("h1", { text: "Your email is confirmed" }), h("p", { text: "You can log in to Roster now." }),
      h("p", {}, h("a", { href: "/", text: "Log in" })));
  } catch (failure) {
    replace(main, h("h1", { text: "This link does not work" }), h("p", { class: "explain", role: "alert", text: refusal(failure) }),
      h("p", {}, h("a", { href: "/", text: "Open Roster" })));
  }
}

function refusal(failure) {
  switch (failure.code) {
    case "TOKEN_EXPIRED": return "It has expired. Use “Forgot your password?” on the log-in page: the reset link confirms your email too.";
    case "RATE_LIMITED": return "Too many attempts from here: wait a minute, then reload this page.";
    default: return "It was already used, or is incomplete. If your email is confirmed, just log in; otherwise copy the whole link from the email.";
  }
}

start();
