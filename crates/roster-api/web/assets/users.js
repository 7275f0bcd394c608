// The Users page: members and invitations of one account, the "Add team member" and
// "Invite link" dialogs, row actions, and live updates from the `events` subscription.
import { gql, subscribe } from "./gql.js";
import { h, replace, field, modal, alertBox, explain, roleName, when } from "./dom.js";

const USERS = `query($id: ID!) { account(id: $id) { id name viewerRole
  members(first: 500) { totalCount nodes { role joinedAt user { id email displayName } } }
  invitations(first: 500) { nodes { id email role status statusText expiresAt invitedBy { id displayName } } } } }`;
const INVITATION = `invitation { id } inviteLink`;

/** Renders the page into `main`; returns a function that stops its live updates. */
export function usersPage(main, { viewer, account, roles }) {
  const grantable = roles.find((r) => r.role === account.viewerRole)?.canGrant ?? [];
  const status = h("p", { class: "status", role: "status" });
  const table = h("div");
  const inviteButton = grantable.length
    ? h("button", { type: "button", class: "primary", onclick: () => inviteDialog(account, grantable, reload) }, "Invite user")
    : null;
  replace(main, h("div", { class: "page-head" }, h("h1", { text: "Users" }), inviteButton), status, table);

  async function reload() {
    try {
      const data = await gql(USERS, { id: account.id });
      replace(table, render(data.account, viewer, grantable, reload, status));
    } catch (error) {
      status.textContent = explain(error);
    }
  }
  reload();
  return live(account, reload);
}

// Admins may read the account's event stream (domain-rules.md); each event reloads the lists,
// debounced so the catch-up burst at subscription start costs one reload.
function live(account, reload) {
  if (account.viewerRole !== "ADMIN") return () => {};
  let timer;
  return subscribe("subscription($id: ID!) { events(accountId: $id) { position type } }", { id: account.id }, () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 100);
  });
}

function render(account, viewer, grantable, reload, status) {
  const admins = account.members.nodes.filter((m) => m.role === "ADMIN").length;
  const isAdmin = account.viewerRole === "ADMIN";
  const rows = account.members.nodes.map((member) => memberRow(member, { viewer, account, grantable, isAdmin, admins, reload, status }));
  const invitations = account.invitations.nodes.filter((i) => i.status !== "ACCEPTED");
  const inviteRows = invitations.map((invitation) => invitationRow(invitation, { viewer, account, isAdmin, reload, status }));
  return h("table", { class: "users" },
    h("caption", { text: `${count(account.members.totalCount, "member")}, ${count(invitations.filter((i) => i.status === "PENDING").length, "pending invitation")}` }),
    h("thead", {}, h("tr", {}, ["Name", "Email", "Role or status", "Actions"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows, inviteRows));
}

const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

function memberRow(member, { viewer, account, grantable, isAdmin, admins, reload, status }) {
  const self = member.user.id === viewer.user.id;
  const lastAdmin = member.role === "ADMIN" && admins === 1;
  const name = member.user.displayName;
  // Only Admins change roles; never one's own, never the last Admin away from Admin.
  const locked = !isAdmin || self || lastAdmin;
  const options = new Set([member.role, ...(locked ? [] : grantable)]);
  const select = h("select", { "aria-label": `Role of ${name}`, disabled: locked, title: lockReason(self, lastAdmin, isAdmin) },
    [...options].map((role) => h("option", { value: role, selected: role === member.role, text: roleName(role) })));
  select.addEventListener("change", () => act(status, reload, `${name} is now ${roleName(select.value)}.`, () =>
    gql("mutation($input: ChangeRoleInput!) { changeRole(input: $input) { role } }", { input: { accountId: account.id, userId: member.user.id, role: select.value } })));
  const remove = isAdmin && !self && !lastAdmin
    ? h("button", { type: "button", "aria-label": `Remove ${name}`, onclick: () => confirmRemove(member, account, reload, status) }, "Remove")
    : null;
  return h("tr", { class: "member", "data-email": member.user.email },
    h("td", { class: "name", text: self ? `${name} (you)` : name }), h("td", { text: member.user.email }), h("td", {}, select), h("td", { class: "actions" }, remove));
}

function lockReason(self, lastAdmin, isAdmin) {
  if (!isAdmin) return "Only Admins change roles";
  if (self) return "You cannot change your own role";
  if (lastAdmin) return "The last Admin stays Admin";
  return undefined;
}

function invitationRow(invitation, { viewer, account, isAdmin, reload, status }) {
  const open = invitation.status === "PENDING" || invitation.status === "EXPIRED";
  const mine = invitation.invitedBy.id === viewer.user.id;
  const actions = open && (isAdmin || mine)
    ? [
      h("button", { type: "button", "aria-label": `Resend invitation to ${invitation.email}`, onclick: () => resend(invitation, reload, status) }, "Resend"),
      h("button", { type: "button", "aria-label": `Cancel invitation to ${invitation.email}`, onclick: () => act(status, reload, `Invitation to ${invitation.email} cancelled.`, () =>
        gql("mutation($input: CancelInviteInput!) { cancelInvite(input: $input) { id } }", { input: { invitationId: invitation.id } })) }, "Cancel"),
    ]
    : [];
  const expiry = open ? ` · until ${when(invitation.expiresAt)}` : "";
  return h("tr", { class: `invitation ${invitation.status.toLowerCase()}`, "data-email": invitation.email },
    h("td", { class: "name", text: "—" }), h("td", { text: invitation.email }),
    h("td", {}, h("span", { class: "status-text", text: invitation.statusText }), h("small", { text: expiry })),
    h("td", { class: "actions" }, actions));
}

async function act(status, reload, done, operation) {
  status.textContent = "";
  try {
    await operation();
    status.textContent = done;
  } catch (error) {
    status.textContent = explain(error);
  }
  await reload();
}

async function resend(invitation, reload, status) {
  status.textContent = "";
  try {
    const data = await gql(`mutation($input: ResendInviteInput!) { resendInvite(input: $input) { ${INVITATION} } }`, { input: { invitationId: invitation.id } });
    status.textContent = `Invitation to ${invitation.email} sent again; the previous link no longer works.`;
    linkDialog(invitation.email, data.resendInvite.inviteLink);
  } catch (error) {
    status.textContent = explain(error);
  }
  await reload();
}

function confirmRemove(member, account, reload, status) {
  const name = member.user.displayName;
  const dialog = modal(`Remove ${name}?`,
    h("p", { text: `${name} (${member.user.email}) loses access to ${account.name}. Invitations they sent are cancelled.` }),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => dialog.close() }, "Keep"),
      h("button", { type: "button", class: "danger", onclick: async () => {
        dialog.close();
        await act(status, reload, `${name} was removed.`, () =>
          gql("mutation($input: RemoveMemberInput!) { removeMember(input: $input) { userId } }", { input: { accountId: account.id, userId: member.user.id } }));
      } }, "Remove")));
}

function inviteDialog(account, grantable, reload) {
  const error = alertBox();
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const role = h("select", { name: "role" }, grantable.map((r) => h("option", { value: r, text: roleName(r) })));
  const close = h("button", { type: "button", onclick: () => dialog.close() }, "Close");
  const form = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const data = await gql(`mutation($input: InviteUserInput!) { inviteUser(input: $input) { ${INVITATION} } }`,
        { input: { accountId: account.id, email: email.value, role: role.value } });
      dialog.close();
      linkDialog(email.value, data.inviteUser.inviteLink);
      reload();
    } catch (e) {
      error.textContent = explain(e);
    }
  } }, field("Account email", email), field("Role", role), error, h("div", { class: "buttons" }, close, h("button", { type: "submit", class: "primary" }, "Invite")));
  const dialog = modal("Add team member", form);
}

function linkDialog(email, link) {
  const copied = h("p", { class: "status", role: "status" });
  const input = h("input", { readonly: true, value: link, class: "invite-link" });
  const copy = h("button", { type: "button", class: "primary", onclick: async () => {
    try {
      await navigator.clipboard.writeText(link);
      copied.textContent = "Invitation link copied.";
    } catch {
      input.select();
      copied.textContent = "Copying was refused by the browser: the link is selected, press Ctrl+C.";
    }
  } }, "Copy invitation");
  const dialog = modal("Invite link",
    h("p", { text: `Send this link to ${email}. It is shown only now; Resend makes a new one.` }),
    field("Invitation link", input), copied,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Done"), copy));
  copy.focus();
}
