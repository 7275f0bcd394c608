// The app's one way to the server: GraphQL over HTTP on /graphql, and the
// graphql-transport-ws protocol on /graphql/ws for subscriptions. The session token lives in
// sessionStorage (docs/web.md says why).

const TOKEN = "roster.token";

/** The session: the bearer token from signUp, logIn or acceptInvite. */
export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  set: (token) => sessionStorage.setItem(TOKEN, token),
  clear: () => sessionStorage.removeItem(TOKEN),
};

/** A refused operation: `code` is the first error's `extensions.code` (docs/errors). */
export class ApiError extends Error {
  constructor(errors) {
    super(errors[0]?.message ?? "request failed");
    this.code = errors[0]?.extensions?.code ?? "INTERNAL";
    this.extensions = errors[0]?.extensions ?? {};
  }
}

/** Runs `query` with `variables`; resolves to `data`, rejects with an ApiError. */
export async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json().catch(() => ({ errors: [{ message: `HTTP ${response.status}` }] }));
  if (body.errors?.length) throw new ApiError(body.errors);
  return body.data;
}

/**
 * Subscribes to `query`; calls `onData(data)` for each result. Reconnects after a drop.
 * Returns a function that ends the subscription.
 */
export function subscribe(query, variables, onData) {
  let socket;
  let stopped = false;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/graphql/ws`, "graphql-transport-ws");
    socket.addEventListener("open", () => {
      const token = session.token();
      socket.send(JSON.stringify({ type: "connection_init", payload: token ? { Authorization: `Bearer ${token}` } : {} }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "next" && message.payload?.data) {
        onData(message.payload.data);
      } else if (message.type === "error" || message.type === "complete") {
        stopped = true; // refused (e.g. FORBIDDEN): do not hammer the server
        socket.close();
      }
    });
    socket.addEventListener("close", () => {
      if (!stopped) setTimeout(open, 2000);
    });
  };
  open();
  return () => {
    stopped = true;
    socket.close();
  };
}
