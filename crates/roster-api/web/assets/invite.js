// The page an invite link opens, `/invite/<token>`: what the invitation is, then joining as a
// new user (display name and password) or, signed in with the invited email, in one click.
// Every refusal is said in words with what to do next.
import { gql, session } from "./gql.js";
import { h, replace, field, alertBox, roleName, when } from "./dom.js";

const main = document.getElementById("main");
const token = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const PREVIEW = `query($token: String!) { invitationPreview(token: $token) { accountName invitedByName role email status expiresAt } }`;
const SESSION = `token account { id }`;

async function start() {
  let preview;
  try {
    preview = (await gql(PREVIEW, { token })).invitationPreview;
  } catch (error) {
    return refuse("This invite link does not work",
      error.code === "RATE_LIMITED" ? "Too many attempts from here: wait a minute, then reload this page."
        : "The link is incomplete or was replaced: when an invitation is sent again, earlier links stop working. Copy the whole link from the newest invitation, or ask the person who invited you to resend it.");
  }
  const viewer = session.token() ? (await gql("{ viewer { user { email displayName } } }").catch(() => ({ viewer: null }))).viewer : null;
  const facts = details(preview);
  if (preview.status === "CANCELLED") {
    return refuse("This invitation was cancelled", `${preview.invitedByName} or an Admin of ${preview.accountName} cancelled it. If you still need access, ask them to invite you again.`, facts);
  }
  if (preview.status === "EXPIRED") {
    return refuse("This invitation has expired", `It was valid until ${when(preview.expiresAt)}. Ask ${preview.invitedByName} to resend it: a resent invitation comes with a new link.`, facts);
  }
  if (preview.status === "ACCEPTED") {
    return refuse("This invitation was already used", `Someone joined ${preview.accountName} with it. If that was you, log in to Roster to get there; otherwise ask ${preview.invitedByName} for a new invitation.`, facts, home());
  }
  if (viewer && viewer.user.email !== preview.email) return wrongEmail(preview, viewer, facts);
  const heading = h("h1", { text: `Join ${preview.accountName}` });
  replace(main, heading, facts, viewer ? joinAsViewer(preview, viewer) : joinAsNew(preview));
}

function details(preview) {
  const row = (term, value) => [h("dt", { text: term }), h("dd", { text: value })];
  return h("dl", { class: "preview" },
    row("Invited by", preview.invitedByName), row("Account", preview.accountName), row("Role", roleName(preview.role)),
    row("For", preview.email), row("Valid until", when(preview.expiresAt)));
}

function refuse(title, words, ...more) {
  replace(main, h("h1", { text: title }), h("p", { class: "explain", role: "alert", text: words }), ...more);
}

const home = () => h("p", {}, h("a", { href: "/", text: "Open Roster" }));

function wrongEmail(preview, viewer, facts) {
  const logOut = h("button", { type: "button", onclick: () => { session.clear(); start(); } }, "Log out and continue");
  refuse("This invitation is for someone else",
    `You are signed in as ${viewer.user.email}, but this invitation is for ${preview.email}. Log out, then join as ${preview.email}; or ask ${preview.invitedByName} to invite ${viewer.user.email} instead.`,
    facts, h("div", { class: "buttons" }, logOut));
}

function joinAsViewer(preview, viewer) {
  const error = alertBox();
  const join = h("button", { type: "button", class: "primary", onclick: () => accept({ token }, error, preview) }, `Join ${preview.accountName} as ${viewer.user.displayName}`);
  return h("div", {}, join, error);
}

function joinAsNew(preview) {
  const error = alertBox();
  const name = h("input", { name: "displayName", required: true, autocomplete: "name" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const create = h("form", { "aria-labelledby": "create-title", onsubmit: (e) => {
    e.preventDefault();
    accept({ token, displayName: name.value, password: password.value }, error, preview);
  } }, h("h2", { id: "create-title", text: "Create your account" }), field("Display name", name), field("Password (8 to 128 characters)", password),
  h("button", { type: "submit", class: "primary" }, "Create account and join"), error);
  return h("div", {}, create, logInForm(preview));
}

// An existing user opens the link in a tab without their session: log in here, then join.
function logInForm(preview) {
  const error = alertBox();
  const password = h("input", { type: "password", name: "password", required: true, autocomplete: "current-password" });
  return h("form", { "aria-labelledby": "login-title", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const data = await gql(`mutation($input: LogInInput!) { logIn(input: $input) { token } }`, { input: { email: preview.email, password: password.value } });
      session.set(data.logIn.token);
      start();
    } catch (failure) {
      error.textContent = failure.code === "RATE_LIMITED" ? "Too many attempts: wait a minute and try again." : `Wrong password for ${preview.email}.`;
    }
  } }, h("h2", { id: "login-title", text: `Already use Roster as ${preview.email}?` }), field("Password", password),
  h("button", { type: "submit" }, "Log in"), error);
}

async function accept(input, error, preview) {
  error.textContent = "";
  try {
    const data = await gql(`mutation($input: AcceptInviteInput!) { acceptInvite(input: $input) { ${SESSION} } }`, { input });
    session.set(data.acceptInvite.token);
    if (data.acceptInvite.account) sessionStorage.setItem("roster.account", data.acceptInvite.account.id);
    location.assign("/#users");
  } catch (failure) {
    error.textContent = refusal(failure, preview);
  }
}

function refusal(failure, preview) {
  switch (failure.code) {
    case "ALREADY_MEMBER": return `You are already a member of ${preview.accountName}: open Roster to go there.`;
    case "EMAIL_MISMATCH": return `This invitation is for ${preview.email}: log out and join as that address.`;
    case "INVITATION_EXPIRED": return `This invitation has expired: ask ${preview.invitedByName} to resend it.`;
    case "INVITATION_NOT_PENDING": return "This invitation was cancelled or already used: ask for a new one.";
    case "INVALID_TOKEN": return "This link was replaced by a newer invitation: use the newest link.";
    case "UNAUTHENTICATED": return `${preview.email} already has a Roster account: log in below, then join.`;
    case "VALIDATION": return `Please check ${failure.extensions?.field ?? "the form"}: ${failure.message}`;
    case "RATE_LIMITED": return "Too many attempts: wait a minute and try again.";
    default: return failure.message;
  }
}

start();
