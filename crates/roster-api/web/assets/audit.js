// The Audit log page: the account's audit log, a page at a time, filtered by action.
import { gql } from "./gql.js";
import { h, replace, field, explain, when } from "./dom.js";

const PAGE = 20;
const ACTIONS = ["account.created", "member.invited", "invitation.resent", "invitation.cancelled", "invitation.accepted", "member.joined", "member.role_changed", "member.removed"];
const QUERY = `query($id: ID!, $first: Int, $after: String, $action: String) { account(id: $id) {
  auditLog(first: $first, after: $after, action: $action) { totalCount pageInfo { hasNextPage endCursor }
    nodes { position occurredAt action target details actor { displayName email } } } } }`;

/** Renders the audit log of `account` into `main`. */
export function auditPage(main, account) {
  const filter = h("select", { name: "action" }, h("option", { value: "", text: "All actions" }), ACTIONS.map((a) => h("option", { value: a, text: a })));
  const body = h("div");
  const cursors = [null]; // the `after` of each page seen, for Previous
  filter.addEventListener("change", () => {
    cursors.length = 1;
    load();
  });
  replace(main, h("h1", { text: "Audit log" }), h("form", { class: "filter", onsubmit: (e) => e.preventDefault() }, field("Action", filter)), body);

  async function load() {
    try {
      const after = cursors[cursors.length - 1];
      const data = await gql(QUERY, { id: account.id, first: PAGE, after, action: filter.value || null });
      replace(body, render(data.account.auditLog, cursors, load));
    } catch (error) {
      replace(body, h("p", { class: "alert", role: "alert", text: explain(error) }));
    }
  }
  load();
}

function render(log, cursors, load) {
  const page = cursors.length;
  const previous = h("button", { type: "button", disabled: page === 1, onclick: () => { cursors.pop(); load(); } }, "Previous page");
  const next = h("button", { type: "button", disabled: !log.pageInfo.hasNextPage, onclick: () => { cursors.push(log.pageInfo.endCursor); load(); } }, "Next page");
  return h("div", {},
    h("table", { class: "audit" },
      h("caption", { text: `${log.totalCount} entries · page ${page}` }),
      h("thead", {}, h("tr", {}, ["When", "Action", "Who", "Target", "Details"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, log.nodes.map((entry) => h("tr", { class: "entry", "data-action": entry.action },
        h("td", { text: when(entry.occurredAt) }), h("td", { class: "action", text: entry.action }),
        h("td", { text: entry.actor ? entry.actor.displayName : "system" }), h("td", { text: entry.target ?? "" }),
        h("td", {}, h("code", { text: JSON.stringify(entry.details) })))))),
    h("div", { class: "buttons" }, previous, next));
}
