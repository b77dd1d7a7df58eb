// Shipped migration: never edit. Its text is fixed, `schema_migrations` holds its SHA-256, and `coordctl migrate`
// refuses a database whose applied text differs. A change is a new version.

extension CoordinationSchema {
    /// v3, alerts and webhooks (docs/ALERTS.md):
    /// - `alert_transitions`: every alert raised or cleared, once, in the order the alert projection found them
    ///   (the outbox the webhooks and the live feed read). Not a read model: a rebuild never empties it.
    /// - `alert_outbox`: how far the log has been enqueued; a transition at or below it is never enqueued again,
    ///   so a rebuild, which finds the same transitions, sends nothing.
    /// - `webhooks`: subscriptions, with the signing secret encrypted (never in plain text).
    /// - `webhook_deliveries`: one per subscription and transition (or ping), with its fixed body, its lease while a
    ///   coordd sends it, and its outcome; `webhook_attempts`: every attempt.
    static let v3 = #"""
    CREATE TABLE alert_transitions (
        seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id    text        NOT NULL,
        kind        text        NOT NULL,
        type        text        NOT NULL CHECK (type IN ('alert.raised', 'alert.cleared')),
        response    text,
        position    bigint      NOT NULL,
        at          timestamptz NOT NULL,
        alert       json        NOT NULL,
        UNIQUE (alert_id, type)
    );
    CREATE TABLE alert_outbox (
        id                 int    PRIMARY KEY CHECK (id = 1),
        enqueued_through   bigint NOT NULL
    );
    INSERT INTO alert_outbox (id, enqueued_through) VALUES (1, 0);
    CREATE TABLE webhooks (
        id               text        PRIMARY KEY,
        url              text        NOT NULL,
        kinds            text[],
        description      text,
        secret_sealed    text        NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now(),
        created_by       text        NOT NULL,
        enabled          boolean     NOT NULL DEFAULT true,
        disabled_at      timestamptz,
        disabled_reason  text
    );
    CREATE TABLE webhook_deliveries (
        id               text        PRIMARY KEY,
        seq              bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
        webhook          text        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        transition       bigint      REFERENCES alert_transitions (seq),
        type             text        NOT NULL,
        body             text        NOT NULL,
        status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         int         NOT NULL DEFAULT 0,
        created_at       timestamptz NOT NULL DEFAULT now(),
        next_attempt_at  timestamptz NOT NULL DEFAULT now(),
        lease_until      timestamptz,
        leased_by        text,
        last_status      int,
        last_error       text,
        finished_at      timestamptz,
        UNIQUE (webhook, transition)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook, seq);
    CREATE TABLE webhook_attempts (
        delivery     text        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
        attempt      int         NOT NULL,
        at           timestamptz NOT NULL DEFAULT now(),
        status_code  int,
        error        text,
        duration_ms  float8      NOT NULL,
        sent_by      text        NOT NULL,
        PRIMARY KEY (delivery, attempt)
    );
    """#
}
