// The app at `/`: sign up / log in, then the account switcher and three pages (Users, Role
// permissions, Audit log), chosen by the URL's hash.
import { gql, session } from "./gql.js";
import { h, replace, field, alertBox, explain, roleName } from "./dom.js";
import { usersPage } from "./users.js";
import { rolesPage } from "./roles.js";
import { auditPage } from "./audit.js";

const ACCOUNT = "roster.account";
const main = document.getElementById("main");
const top = document.getElementById("top");
let stopPage = () => {};

const SESSION = `token user { id email displayName } account { id }`;

async function start() {
  if (!session.token()) return authPage();
  const data = await gql(`{ viewer { user { id email displayName } accounts { id name viewerRole } } roles { role displayName permissions { feature access } canGrant } }`)
    .catch(() => ({ viewer: null }));
  if (!data.viewer) {
    session.clear();
    return authPage();
  }
  const { viewer, roles } = data;
  const chosen = sessionStorage.getItem(ACCOUNT);
  const account = viewer.accounts.find((a) => a.id === chosen) ?? viewer.accounts[0];
  if (!account) {
    replace(main, h("p", { text: "You belong to no account yet." }));
    return;
  }
  sessionStorage.setItem(ACCOUNT, account.id);
  header(viewer, account);
  route({ viewer, account, roles });
  window.onhashchange = () => route({ viewer, account, roles });
}

function header(viewer, account) {
  const switcher = h("select", { onchange: (e) => { sessionStorage.setItem(ACCOUNT, e.target.value); start(); } },
    viewer.accounts.map((a) => h("option", { value: a.id, selected: a.id === account.id, text: `${a.name} (${roleName(a.viewerRole)})` })));
  const nav = h("nav", { "aria-label": "Pages" },
    h("a", { href: "#users", text: "Users" }), h("a", { href: "#roles", text: "Role permissions" }), h("a", { href: "#audit", text: "Audit log" }));
  const logOut = h("button", { type: "button", onclick: () => { session.clear(); sessionStorage.removeItem(ACCOUNT); location.hash = ""; start(); } }, "Log out");
  replace(top, h("span", { class: "brand", text: "Roster" }), field("Account", switcher), nav,
    h("span", { class: "me", id: "me", text: `${viewer.user.displayName} · ${viewer.user.email}` }), logOut);
}

function route(ctx) {
  stopPage();
  stopPage = () => {};
  const page = location.hash.slice(1) || "users";
  for (const link of top.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${page}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (page === "roles") rolesPage(main, ctx.roles);
  else if (page === "audit") auditPage(main, ctx.account);
  else stopPage = usersPage(main, ctx);
}

function authPage() {
  stopPage(); // a signed-out page keeps no subscription open
  stopPage = () => {};
  replace(top, h("span", { class: "brand", text: "Roster" }));
  const signUpError = alertBox();
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "email" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const displayName = h("input", { name: "displayName", required: true, autocomplete: "name" });
  const accountName = h("input", { name: "accountName", required: true });
  const signUp = h("form", { "aria-labelledby": "signup-title", onsubmit: (e) => submit(e, signUpError, `mutation($input: SignUpInput!) { signUp(input: $input) { ${SESSION} } }`,
    { email: email.value, password: password.value, displayName: displayName.value, accountName: accountName.value }, "signUp") },
  h("h2", { id: "signup-title", text: "Sign up" }), field("Email", email), field("Password (8 to 128 characters)", password),
  field("Display name", displayName), field("Account name", accountName), h("button", { type: "submit", class: "primary" }, "Sign up"), signUpError);

  const logInError = alertBox();
  const loginEmail = h("input", { type: "email", name: "email", required: true, autocomplete: "username" });
  const loginPassword = h("input", { type: "password", name: "password", required: true, autocomplete: "current-password" });
  const logIn = h("form", { "aria-labelledby": "login-title", onsubmit: (e) => submit(e, logInError, `mutation($input: LogInInput!) { logIn(input: $input) { ${SESSION} } }`,
    { email: loginEmail.value, password: loginPassword.value }, "logIn") },
  h("h2", { id: "login-title", text: "Log in" }), field("Email", loginEmail), field("Password", loginPassword),
  h("button", { type: "submit", class: "primary" }, "Log in"), forgot(loginEmail, logInError), logInError);
  replace(main, h("div", { class: "auth" }, signUp, logIn));
}

// Emails a reset link to the typed address; the answer is the same whether or not it has an
// account.
function forgot(email, box) {
  return h("button", { type: "button", onclick: async () => {
    box.textContent = "";
    if (!email.value) return void (box.textContent = "Type your email above first.");
    try {
      await gql(`mutation($email: String!) { requestPasswordReset(email: $email) }`, { email: email.value });
      box.textContent = `If ${email.value} has a Roster account, a link to choose a new password is on its way (valid for one hour).`;
    } catch (error) {
      box.textContent = explain(error);
    }
  } }, "Forgot your password?");
}

async function submit(event, errorBox, mutation, input, name) {
  event.preventDefault();
  errorBox.textContent = "";
  try {
    const data = await gql(mutation, { input });
    session.set(data[name].token);
    if (data[name].account) sessionStorage.setItem(ACCOUNT, data[name].account.id);
    location.hash = "users";
    await start();
  } catch (error) {
    errorBox.textContent = explain(error);
  }
}

start();
