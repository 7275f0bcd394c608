// Building the DOM. Every string is set as text (textContent or a text node), never parsed as
// HTML, so a display name such as `<img src=x onerror=alert(1)>` shows as those characters.

/**
 * `h("button", { class: "primary", onclick: f, "aria-label": "x" }, "Text", child)`.
 * Props starting with `on` are listeners; `text` sets textContent; the rest are attributes.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else if (key === "value") element.value = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces `element`'s children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

let ids = 0;
/** A fresh element id, for label/aria-labelledby pairs. */
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A labelled form control: `<label for>` + the control. */
export function field(label, control) {
  control.id ||= uid("field");
  return h("div", { class: "field" }, h("label", { for: control.id, text: label }), control);
}

/**
 * A modal `<dialog>` titled `title`, opened with showModal() (focus moves in, Esc closes),
 * removed from the page when closed.
 */
export function modal(title, ...content) {
  const titleId = uid("dialog-title");
  const dialog = h("dialog", { "aria-labelledby": titleId }, h("h2", { id: titleId, text: title }), ...content);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** A live region for errors and results. */
export const alertBox = () => h("p", { class: "alert", role: "alert" });

const ROLE_NAMES = { ADMIN: "Admin", SECURITY_ENGINEER: "Security Engineer", DEVELOPER: "Developer", GUEST: "Guest" };
/** A role's display name (domain-rules.md, "shown as"). */
export const roleName = (role) => ROLE_NAMES[role] ?? role;

/** A date and time in the reader's locale. */
export const when = (iso) => new Date(iso).toLocaleString();

/** Words for a refused operation: what happened and what to do next. */
export function explain(error) {
  const words = {
    UNAUTHENTICATED: "That email and password do not match, or your session ended: log in again.",
    FORBIDDEN: "Your role in this account does not allow this. Ask an Admin.",
    NOT_FOUND: "That no longer exists here: reload the page.",
    ALREADY_MEMBER: "That person is already a member of this account.",
    INVITATION_PENDING: "An invitation to that email is already pending: resend it from the list instead.",
    INVITATION_NOT_PENDING: "That invitation was already accepted or cancelled.",
    LAST_ADMIN: "The account needs at least one Admin: make someone else Admin first.",
    SELF_CHANGE: "You cannot change your own role or remove yourself: ask another Admin.",
    RATE_LIMITED: `Too many attempts: try again in ${error.extensions?.retryAfterSeconds ?? "a few"} seconds.`,
    CONFLICT: "Someone changed this at the same moment: try again.",
    EMAIL_NOT_VERIFIED: "Confirm your email first: open the link we sent to it (no email? use “Forgot your password?”).",
  };
  if (error.code === "VALIDATION") return `Please check ${error.extensions?.field ?? "the input"}: ${error.message}`;
  return words[error.code] ?? error.message;
}
