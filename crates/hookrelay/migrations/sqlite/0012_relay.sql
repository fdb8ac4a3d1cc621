-- Transformations: an http webhook's optional body template (rendered from the envelope at each
-- attempt; JSON out). Signature schemes need no column: a webhook's keys live, sealed, in
-- `secrets`, and a `whsk_` key there is an ed25519 one. `kind` is free text, so `relay` needs none.
ALTER TABLE webhooks ADD COLUMN transform TEXT;
