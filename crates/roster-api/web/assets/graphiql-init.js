// GraphiQL against this server's /graphql and /graphql/ws, with the app's session (if any)
// as the default Authorization header.
const token = sessionStorage.getItem("roster.token");
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const fetcher = GraphiQL.createFetcher({
  url: "/graphql",
  subscriptionUrl: `${wsScheme}//${location.host}/graphql/ws`,
  wsConnectionParams: token ? { Authorization: `Bearer ${token}` } : {},
});
const query = new URLSearchParams(location.search).get("query") ?? undefined;
const headers = token ? JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2) : undefined;
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery: query, defaultHeaders: headers, defaultEditorToolsVisibility: true }),
);
