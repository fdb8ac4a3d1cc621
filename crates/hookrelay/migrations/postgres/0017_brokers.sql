-- Broker destinations (kind nats, rabbitmq, redis): `target` is where on the broker deliveries
-- go (JSON: {"subject"} / {"exchange", "routing_key"} / {"stream"}). A broker URL may carry
-- credentials: then `url` holds it redacted (`nats://user:***@host:4222`, what every read, list
-- and operational event shows) and `url_sealed` the whole URL, sealed under the master key and
-- bound to the webhook's id like `secrets`. NULL `url_sealed`: `url` is the whole URL.
ALTER TABLE webhooks ADD COLUMN target TEXT;
ALTER TABLE webhooks ADD COLUMN url_sealed TEXT;
