-- Commands name an invitation by id; its account is found on the write side itself: the
-- stream of its MemberInvited event (never a read model, which may lag or be stopped).
CREATE INDEX events_member_invited ON events ((payload #>> '{MemberInvited,invitation_id}'))
    WHERE event_type = 'MemberInvited';

-- The invite preview is a read: the invitations read model keeps the current link's token
-- digest (a SHA-256, never the token) so the preview checks a link without loading the
-- aggregate. Existing rows take the digest of their invitation's latest send.
ALTER TABLE invitations ADD COLUMN token_digest text;
UPDATE invitations i
   SET token_digest = latest.digest
  FROM (SELECT DISTINCT ON (invitation_id) invitation_id, digest
          FROM (SELECT coalesce(payload #>> '{MemberInvited,invitation_id}', payload #>> '{InvitationResent,invitation_id}') AS invitation_id,
                       coalesce(payload #>> '{MemberInvited,token_digest}', payload #>> '{InvitationResent,token_digest}') AS digest,
                       position
                  FROM events
                 WHERE event_type IN ('MemberInvited', 'InvitationResent')) sends
         ORDER BY invitation_id, position DESC) latest
 WHERE i.id::text = latest.invitation_id;
ALTER TABLE invitations ALTER COLUMN token_digest SET NOT NULL;
