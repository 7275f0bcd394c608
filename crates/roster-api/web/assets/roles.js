// The Role permissions panel: the `roles` query as a feature × role table.
import { h, replace, roleName } from "./dom.js";

const ACCESS = { READ_WRITE: "Read and write", READ: "Read", NONE: "No access" };

/** Renders the permission matrix and who may grant which role. */
export function rolesPage(main, roles) {
  const features = roles[0]?.permissions.map((p) => p.feature) ?? [];
  const access = (role, feature) => role.permissions.find((p) => p.feature === feature)?.access ?? "NONE";
  replace(main, h("h1", { text: "Role permissions" }),
    h("table", { class: "roles" },
      h("caption", { text: "What each role may do" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Feature" }), roles.map((r) => h("th", { scope: "col", text: r.displayName })))),
      h("tbody", {},
        features.map((feature) => h("tr", {}, h("th", { scope: "row", text: feature }),
          roles.map((r) => h("td", { class: `access ${access(r, feature).toLowerCase()}`, text: ACCESS[access(r, feature)] })))),
        h("tr", {}, h("th", { scope: "row", text: "May grant" }),
          roles.map((r) => h("td", { text: r.canGrant.length ? r.canGrant.map(roleName).join(", ") : "—" }))))));
}
