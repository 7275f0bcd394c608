// A graphql-transport-ws client (the graphql-ws package) subscribes to `events` and receives the
// event of a mutation made once the socket is acknowledged.
//
// Usage: node subscription.mjs HTTP_URL TOKEN ACCOUNT_ID AFTER
//   HTTP_URL: the server's base, e.g. http://127.0.0.1:8080; TOKEN: an Admin's session of
//   ACCOUNT_ID; AFTER: the account's last global position before the run.
// Subscribes on `/graphql/ws` with the token in `connection_init`; on `connection_ack` it invites
// a new email over HTTP and waits (at most 20 s) for that invitation's `MemberInvited` event.
// Events after AFTER arrive whether they commit before or after the stream goes live (catch-up,
// then live, no gap), so the order of the two requests does not matter. Prints the event and
// exits 0; exits 1 on an error, a completed stream or the wait running out.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [base, token, accountId, after] = process.argv.slice(2);
if (!after) {
  console.error('usage: node subscription.mjs HTTP_URL TOKEN ACCOUNT_ID AFTER');
  process.exit(2);
}
const fail = (message) => {
  console.error(message);
  process.exit(1);
};
setTimeout(() => fail('no MemberInvited event within 20 s'), 20_000).unref();

let invitationId = null;
async function invite() {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation($a: ID!, $e: String!) { inviteUser(input: {accountId: $a, email: $e, role: GUEST}) { invitation { id } } }',
      variables: { a: accountId, e: `ws-client-${process.pid}@example.com` },
    }),
  });
  const answer = await response.json();
  invitationId = answer?.data?.inviteUser?.invitation?.id;
  if (!invitationId) fail(`inviteUser refused: ${JSON.stringify(answer)}`);
  check();
}

const seen = [];
const client = createClient({
  url: base.replace(/^http/, 'ws') + '/graphql/ws',
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => invite().catch((e) => fail(`inviteUser failed: ${e}`)) },
});
client.subscribe(
  {
    query: 'subscription($a: ID, $after: String) { events(accountId: $a, after: $after) { position type payload } }',
    variables: { a: accountId, after },
  },
  {
    next: (result) => {
      if (result.errors) fail(`subscription error: ${JSON.stringify(result.errors)}`);
      seen.push(result.data.events);
      check();
    },
    error: (error) => fail(`subscription failed: ${JSON.stringify(error?.message ?? error?.reason ?? error)}`),
    complete: () => fail('the subscription completed before the event arrived'),
  },
);

// The invitation's id is known only once the mutation answers, which may be after its event.
function check() {
  const event = invitationId && seen.find((e) => e.type === 'MemberInvited' && JSON.stringify(e.payload).includes(invitationId));
  if (event) {
    console.log(JSON.stringify(event));
    process.exit(0);
  }
}
