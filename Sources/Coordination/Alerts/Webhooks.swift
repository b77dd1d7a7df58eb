import Events
import Foundation

/// The transactional outbox between the alert projection and its readers (webhook deliveries, the live feed).
public enum AlertOutbox {
    /// Transitions of events recorded longer ago than this are kept (the feed and `alert_transitions` have them) but
    /// not sent to webhooks: an imported or restored log does not replay a year of alerts to every endpoint.
    public static let webhookHorizon: Double = 86_400

    /// Stores the transitions past the outbox's mark, a delivery for each subscription that wants its kind, and moves
    /// the mark to `through`, in the caller's transaction (the projection's checkpoint transaction). A transition at
    /// or below the mark was enqueued before: a rebuild, which finds every transition of history again, adds nothing.
    static let markLag: Int64 = 10_000
    /// From this many transitions in one call (a first rebuild's), they are written without JIT, with room to sort,
    /// and (no webhook enabled) through a staging table filled by COPY.
    static let bulkTransitions = 10_000

    static func enqueue(_ c: PostgresConnection, _ transitions: [AlertReadModel.Transition], through: Int64) throws {
        let mark: Int64 = try c.query("SELECT enqueued_through FROM alert_outbox WHERE id = 1 FOR UPDATE").decode(0, 0)
        let fresh = transitions.filter { $0.position > mark }
        // Nothing to enqueue: the mark need not move with every checkpoint (a row write per batch). It lags by at most
        // `markLag` positions, none of which held a transition, so a fold that finds the same transitions finds none there.
        guard !fresh.isEmpty || through - mark >= markLag else { return }
        if !fresh.isEmpty {
            // The transitions as text arrays, for the statements that take them (not the staged COPY).
            var ids: [String] { fresh.map(\.alert.id) }
            var kinds: [String] { fresh.map(\.alert.kind) }
            var types: [String] { fresh.map(\.type) }
            var responses: [String] { fresh.map { $0.alert.response ?? "" } }
            var positions: [Int64] { fresh.map(\.position) }
            var ats: [String] { fresh.map { Timestamp.format($0.at) } }
            var alerts: [String] { fresh.map(\.alert.json) }
            if fresh.count >= bulkTransitions {
                // A rebuild after an import finds all of history's transitions at once (134,096 in a million events):
                // sorted in memory, and not worth compiling (JIT took 0.37 s of that statement's 2.4). For the rest of
                // the caller's transaction, which only writes this projection's rows.
                try c.execute(unsafe: "SET LOCAL jit = off")
                try c.execute(unsafe: "SET LOCAL work_mem = '64MB'")
            }
            // Bodies only when a subscription could receive one: no webhook is enabled in most rebuilds and imports,
            // and rendering and sending every transition's body a second time doubled the statement.
            let subscribed: Bool = try c.query("SELECT EXISTS (SELECT 1 FROM webhooks WHERE enabled)").decode(0, 0)
            if !subscribed, fresh.count >= bulkTransitions, c.inTransaction {
                // History's transitions, all at once: COPY text into a staging table is cheaper to render and to parse
                // than seven text arrays of them (the alert JSON escaped twice), then one insert from it.
                try c.execute(unsafe: """
                    CREATE TEMP TABLE coord_stage_alert_transitions (n bigint, alert_id text, kind text, type text, response text,
                                                                     position bigint, at timestamptz, alert json) ON COMMIT DROP
                    """)
                _ = try c.copyIn(SQL(unsafe: "COPY coord_stage_alert_transitions FROM STDIN"), rows: fresh.enumerated()) { row, out in
                    let (n, t) = row
                    CopyText.append(Int64(n), to: &out); out.append(0x09)
                    CopyText.append(t.alert.id, to: &out); out.append(0x09)
                    CopyText.append(t.alert.kind, to: &out); out.append(0x09)
                    CopyText.append(t.type, to: &out); out.append(0x09)
                    out.append(contentsOf: CopyText.escape(t.alert.response).utf8); out.append(0x09)
                    CopyText.append(t.position, to: &out); out.append(0x09)
                    CopyText.append(Timestamp.format(t.at), to: &out); out.append(0x09)
                    CopyText.append(t.alert.json, to: &out)
                }
                try c.query("""
                    INSERT INTO alert_transitions (alert_id, kind, type, response, position, at, alert)
                    SELECT alert_id, kind, type, response, position, at, alert FROM coord_stage_alert_transitions ORDER BY n
                    ON CONFLICT (alert_id, type) DO NOTHING
                    """)
                try c.execute(unsafe: "DROP TABLE coord_stage_alert_transitions")  // now: a second call in this transaction creates it again
            } else if !subscribed {
                try c.query("""
                    INSERT INTO alert_transitions (alert_id, kind, type, response, position, at, alert)
                    SELECT i, k, y, nullif(r, ''), p, a::timestamptz, j::json
                    FROM unnest(\(ids)::text[], \(kinds)::text[], \(types)::text[], \(responses)::text[], \(positions)::bigint[],
                                \(ats)::text[], \(alerts)::text[]) WITH ORDINALITY AS u(i, k, y, r, p, a, j, n)
                    ORDER BY n
                    ON CONFLICT (alert_id, type) DO NOTHING
                    """)
            } else {
                // The body each delivery posts, fixed now: every retry sends the same bytes (Standard Webhooks signs them).
                let bodies = fresh.map { "{\"type\":\(JSONWriter.quote($0.type)),\"timestamp\":\(JSONWriter.quote(Timestamp.format($0.at))),\"data\":\($0.alert.json)}" }
                try c.query("""
                    WITH input AS (
                        SELECT * FROM unnest(\(ids)::text[], \(kinds)::text[], \(types)::text[], \(responses)::text[], \(positions)::bigint[],
                                             \(ats)::text[], \(alerts)::text[], \(bodies)::text[]) WITH ORDINALITY AS u(i, k, y, r, p, a, j, b, n)),
                    t AS (
                        INSERT INTO alert_transitions (alert_id, kind, type, response, position, at, alert)
                        SELECT i, k, y, nullif(r, ''), p, a::timestamptz, j::json FROM input ORDER BY n
                        ON CONFLICT (alert_id, type) DO NOTHING
                        RETURNING seq, alert_id, kind, type, at)
                    INSERT INTO webhook_deliveries (id, webhook, transition, type, body)
                    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), w.id, t.seq, t.type, input.b
                    FROM t JOIN input ON input.i = t.alert_id AND input.y = t.type
                    JOIN webhooks w ON w.enabled AND (w.kinds IS NULL OR t.kind = ANY(w.kinds))
                    WHERE t.at > now() - make_interval(secs => \(webhookHorizon))
                    ORDER BY t.seq, w.id
                    """)
            }
        }
        try c.query("UPDATE alert_outbox SET enqueued_through = greatest(enqueued_through, \(through)) WHERE id = 1")
    }

    /// One transition as the live feed sends it.
    public struct Message: Sendable {
        public let seq: Int64
        public let type: String
        public let response: String?
        /// The alert, as JSON.
        public let alert: String
    }

    /// Transitions after `seq`, in order.
    public static func transitions(_ pool: PostgresPool, after seq: Int64, limit: Int = 500) async throws -> [Message] {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query("SELECT seq, type, response, alert::text FROM alert_transitions WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)")
                .rows.map { r in Message(seq: try r.decode(0), type: try r.decode(1), response: try r.decodeOptional(2), alert: try r.decode(3)) }
        }
    }

    /// The latest transition's number (0 before the first).
    public static func latest(_ pool: PostgresPool) async throws -> Int64 {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query("SELECT coalesce(max(seq), 0)::bigint FROM alert_transitions").decode(0, 0)
        }
    }
}

/// Webhook subscriptions and their deliveries (docs/ALERTS.md). The signing secret is stored sealed by `SecretBox`
/// with a key outside the database; it is shown once, when the subscription is created.
public struct WebhookStore: Sendable {
    public let pool: PostgresPool
    public init(pool: PostgresPool) { self.pool = pool }

    public struct Webhook: Sendable, Equatable {
        public let id: String
        public let url: String
        public let kinds: [String]?
        public let description: String?
        public let createdAt: Date
        public let createdBy: String
        public let enabled: Bool
        public let disabledAt: Date?
        public let disabledReason: String?
        public let pending: Int
        public let delivered: Int
        public let failed: Int

        public var json: String {
            var out = "{\"id\":\(JSONWriter.quote(id)),\"url\":\(JSONWriter.quote(url)),\"kinds\":"
            out += kinds.map { "[" + $0.map(JSONWriter.quote).joined(separator: ",") + "]" } ?? "null"
            out += ",\"description\":" + (description.map(JSONWriter.quote) ?? "null")
            out += ",\"created_at\":\(JSONWriter.quote(Timestamp.format(createdAt))),\"created_by\":\(JSONWriter.quote(createdBy))"
            out += ",\"enabled\":\(enabled),\"disabled_at\":" + (disabledAt.map { JSONWriter.quote(Timestamp.format($0)) } ?? "null")
            out += ",\"disabled_reason\":" + (disabledReason.map(JSONWriter.quote) ?? "null")
            out += ",\"deliveries\":{\"pending\":\(pending),\"delivered\":\(delivered),\"failed\":\(failed)}}"
            return out
        }
    }

    public struct Attempt: Sendable, Equatable {
        public let attempt: Int
        public let at: Date
        public let statusCode: Int?
        public let error: String?
        public let durationMs: Double
    }

    public struct Delivery: Sendable, Equatable {
        public let id: String
        public let webhook: String
        public let type: String
        public let status: String
        public let attempts: Int
        public let createdAt: Date
        public let nextAttemptAt: Date?
        public let lastStatus: Int?
        public let lastError: String?
        public let finishedAt: Date?
        public let body: String
        public var log: [Attempt] = []

        public var json: String {
            func date(_ d: Date?) -> String { d.map { JSONWriter.quote(Timestamp.format($0)) } ?? "null" }
            var out = "{\"id\":\(JSONWriter.quote(id)),\"webhook\":\(JSONWriter.quote(webhook)),\"type\":\(JSONWriter.quote(type)),"
            out += "\"status\":\(JSONWriter.quote(status)),\"attempts\":\(attempts),\"created_at\":\(date(createdAt)),"
            out += "\"next_attempt_at\":\(date(nextAttemptAt)),\"last_status\":\(lastStatus.map(String.init) ?? "null"),"
            out += "\"last_error\":\(lastError.map(JSONWriter.quote) ?? "null"),\"finished_at\":\(date(finishedAt)),"
            out += "\"payload\":\(body),\"attempt_log\":["
            out += log.map { a in
                "{\"attempt\":\(a.attempt),\"at\":\(date(a.at)),\"status_code\":\(a.statusCode.map(String.init) ?? "null"),"
                    + "\"error\":\(a.error.map(JSONWriter.quote) ?? "null"),\"duration_ms\":\(String(format: "%.1f", a.durationMs))}"
            }.joined(separator: ",")
            return out + "]}"
        }
    }

    // MARK: Subscriptions

    /// Checks a subscription's URL: http or https, a host, no credentials in it, and (unless `allowPrivate`) a host
    /// that resolves only to public addresses. The refusal names the field and why.
    public static func validate(url text: String, allowPrivate: Bool) throws -> URL {
        func refuse(_ why: String) -> DomainError { .validation([FieldError("url", why)]) }
        guard text.utf8.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme) else {
            throw refuse("must be an http or https URL")
        }
        guard let host = url.host, !host.isEmpty else { throw refuse("must name a host") }
        guard url.user == nil, url.password == nil else { throw refuse("must not carry credentials (the signature authenticates coord)") }
        guard url.fragment == nil else { throw refuse("must not have a fragment") }
        do { try AddressPolicy.check(host: host, allowPrivate: allowPrivate) } catch let refusal as AddressPolicy.Refusal {
            throw refuse("is refused: \(refusal); set COORD_WEBHOOK_ALLOW_PRIVATE=1 on coordd to allow such addresses")
        }
        return url
    }

    /// Creates a subscription and returns it with its secret (`whsec_` + base64 of 24 random bytes), shown only now.
    public func create(url: String, kinds: [String]?, description: String?, createdBy: String, box: SecretBox,
                       allowPrivate: Bool) async throws -> (Webhook, String) {
        var errors: [FieldError] = []
        if let kinds {
            if kinds.isEmpty { errors.append(FieldError("kinds", "must name at least one kind, or be left out for all")) }
            for k in kinds where !AlertKinds.all.contains(k) { errors.append(FieldError("kinds", "\(k) is not an alert kind (\(AlertKinds.all.joined(separator: ", ")))")) }
        }
        if let description, description.count > 500 { errors.append(FieldError("description", "must be at most 500 characters")) }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        // Resolving the host can wait seconds on DNS: on a thread of its own, never one of the few the server's
        // tasks run on.
        _ = try await runBlocking { try Self.validate(url: url, allowPrivate: allowPrivate) }
        var rng = SystemRandomNumberGenerator()
        let secretBytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let secret = "whsec_" + Data(secretBytes).base64EncodedString()
        let id = "wh_" + Hex.string((0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let sealed = box.seal(secretBytes)
        let uniqueKinds = kinds.map { Array(Set($0)).sorted() }
        try await pool.withConnection { c in
            try c.query("""
                INSERT INTO webhooks (id, url, kinds, description, secret_sealed, created_by)
                VALUES (\(id), \(url), \(uniqueKinds)::text[], \(description), \(sealed), \(createdBy))
                """)
        }
        guard let created = try await get(id) else { throw DomainError.notFound(kind: "webhook", id: id) }
        return (created, secret)
    }

    static let columns = """
        w.id, w.url, w.kinds, w.description, w.created_at, w.created_by, w.enabled, w.disabled_at, w.disabled_reason,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook = w.id AND d.status = 'pending')::int,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook = w.id AND d.status = 'delivered')::int,
        (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook = w.id AND d.status = 'failed')::int
        """

    static func webhook(_ r: PostgresResult.Row) throws -> Webhook {
        let kinds: String? = try r.decodeOptional(2)
        return Webhook(id: try r.decode(0), url: try r.decode(1), kinds: kinds.map(Self.textArray), description: try r.decodeOptional(3),
                       createdAt: try r.decode(4), createdBy: try r.decode(5), enabled: try r.decode(6), disabledAt: try r.decodeOptional(7),
                       disabledReason: try r.decodeOptional(8), pending: try r.decode(9), delivered: try r.decode(10), failed: try r.decode(11))
    }

    /// A text[] of simple words (alert kinds) as PostgreSQL prints it: `{a,b}`.
    static func textArray(_ text: String) -> [String] {
        text.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    }

    public func get(_ id: String) async throws -> Webhook? {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query(SQL(unsafe: "SELECT \(Self.columns) FROM webhooks w WHERE w.id = ") + "\(id)").rows.first.map(Self.webhook)
        }
    }

    public func list() async throws -> [Webhook] {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            try c.query(SQL(unsafe: "SELECT \(Self.columns) FROM webhooks w ORDER BY w.created_at, w.id")).rows.map(Self.webhook)
        }
    }

    /// Deletes a subscription and its deliveries. False when there is none with this id.
    public func remove(_ id: String) async throws -> Bool {
        try await pool.withConnection { c in try c.query("DELETE FROM webhooks WHERE id = \(id) RETURNING id").count == 1 }
    }

    /// Enables a subscription again (after a 410 disabled it): its pending deliveries go out again.
    public func enable(_ id: String) async throws -> Bool {
        try await pool.withConnection { c in
            try c.query("UPDATE webhooks SET enabled = true, disabled_at = NULL, disabled_reason = NULL WHERE id = \(id) RETURNING id").count == 1
        }
    }

    /// Enqueues a `ping` delivery for the subscription; returns its id (the `webhook-id` the endpoint will see).
    public func ping(_ id: String) async throws -> String {
        let delivery = "msg_" + UUID.random().lowercasedString.replacingOccurrences(of: "-", with: "")
        let body = "{\"type\":\"ping\",\"timestamp\":\(JSONWriter.quote(Timestamp.format(Date()))),\"data\":{\"webhook\":\(JSONWriter.quote(id))}}"
        let inserted = try await pool.withConnection { c in
            try c.query("""
                INSERT INTO webhook_deliveries (id, webhook, type, body)
                SELECT \(delivery), w.id, 'ping', \(body) FROM webhooks w WHERE w.id = \(id) RETURNING id
                """).count
        }
        guard inserted == 1 else { throw DomainError.notFound(kind: "webhook", id: id) }
        return delivery
    }

    /// The subscription's deliveries, newest first, each with its attempts.
    public func deliveries(webhook: String, status: String? = nil, limit: Int = 100) async throws -> [Delivery] {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            guard try c.query("SELECT 1 FROM webhooks WHERE id = \(webhook)").count == 1 else { throw DomainError.notFound(kind: "webhook", id: webhook) }
            var out = try c.query("""
                SELECT id, webhook, type, status, attempts, created_at, CASE WHEN status = 'pending' THEN next_attempt_at END,
                       last_status, last_error, finished_at, body
                FROM webhook_deliveries WHERE webhook = \(webhook) AND (\(status)::text IS NULL OR status = \(status))
                ORDER BY seq DESC LIMIT \(limit)
                """).rows.map { r in
                Delivery(id: try r.decode(0), webhook: try r.decode(1), type: try r.decode(2), status: try r.decode(3), attempts: try r.decode(4),
                         createdAt: try r.decode(5), nextAttemptAt: try r.decodeOptional(6), lastStatus: try r.decodeOptional(7),
                         lastError: try r.decodeOptional(8), finishedAt: try r.decodeOptional(9), body: try r.decode(10))
            }
            let attempts = try c.query("""
                SELECT delivery, attempt, at, status_code, error, duration_ms FROM webhook_attempts
                WHERE delivery = ANY(\(out.map(\.id))::text[]) ORDER BY delivery, attempt
                """)
            var byDelivery: [String: [Attempt]] = [:]
            for r in attempts.rows {
                byDelivery[try r.decode(0), default: []].append(
                    Attempt(attempt: try r.decode(1), at: try r.decode(2), statusCode: try r.decodeOptional(3), error: try r.decodeOptional(4),
                            durationMs: try r.decode(5)))
            }
            for i in out.indices { out[i].log = byDelivery[out[i].id] ?? [] }
            return out
        }
    }

    // MARK: Sending (coordd)

    /// A delivery leased to one sender.
    public struct Claimed: Sendable {
        public let id: String
        public let webhook: String
        public let url: String
        public let sealedSecret: String
        public let type: String
        public let body: String
        public let attempt: Int
    }

    /// Leases up to `max` due deliveries to `owner` for `lease` seconds, at most `perEndpoint` in flight per
    /// subscription across every coordd (claims are serialised by a transaction-scoped advisory lock; a lease that
    /// lapses, its sender dead, makes the delivery due again: at least once).
    public func claim(owner: String, max: Int, perEndpoint: Int, lease: Double) async throws -> [Claimed] {
        guard max > 0 else { return [] }
        return try await pool.withConnection { c in
            try c.transaction { c in
                try c.query("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.coord.webhooks.claim', 0))")
                return try c.query("""
                    WITH busy AS (
                        SELECT webhook, count(*)::int AS n FROM webhook_deliveries
                        WHERE status = 'pending' AND lease_until > now() GROUP BY webhook),
                    ready AS (
                        SELECT d.id, d.webhook, row_number() OVER (PARTITION BY d.webhook ORDER BY d.next_attempt_at, d.seq) AS rank
                        FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook AND w.enabled
                        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND (d.lease_until IS NULL OR d.lease_until <= now())),
                    chosen AS (
                        SELECT r.id FROM ready r LEFT JOIN busy b ON b.webhook = r.webhook
                        WHERE r.rank <= \(perEndpoint) - coalesce(b.n, 0)
                        ORDER BY r.rank, r.id LIMIT \(max)),
                    leased AS (
                        UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => \(lease)), leased_by = \(owner),
                               attempts = d.attempts + 1
                        FROM chosen WHERE d.id = chosen.id
                        RETURNING d.id, d.webhook, d.type, d.body, d.attempts)
                    SELECT l.id, l.webhook, w.url, w.secret_sealed, l.type, l.body, l.attempts
                    FROM leased l JOIN webhooks w ON w.id = l.webhook
                    """).rows.map { r in
                    Claimed(id: try r.decode(0), webhook: try r.decode(1), url: try r.decode(2), sealedSecret: try r.decode(3), type: try r.decode(4),
                            body: try r.decode(5), attempt: try r.decode(6))
                }
            }
        }
    }

    /// What one attempt came to.
    public enum Outcome: Sendable, Equatable {
        /// 2xx.
        case delivered(status: Int)
        /// 410 Gone: the endpoint asks not to be sent anything again; the subscription is disabled.
        case gone
        /// Anything else (another status, a refused connection, a timeout, a refused address): retried later.
        case failed(status: Int?, error: String)
    }

    /// Records an attempt and its outcome; `retryIn` seconds is the delay before the next attempt of a failure, unless
    /// the delivery is `window` seconds old by then (it is failed for good, and kept). Returns the delivery's status.
    @discardableResult
    public func record(_ claimed: Claimed, owner: String, outcome: Outcome, durationMs: Double, retryIn: Double, window: Double) async throws -> String {
        let (code, error): (Int?, String?)
        switch outcome {
        case .delivered(let status): (code, error) = (status, nil)
        case .gone: (code, error) = (410, "410 Gone: subscription disabled")
        case .failed(let status, let message): (code, error) = (status, String(message.prefix(500)))
        }
        let delivered = { if case .delivered = outcome { return true } else { return false } }()
        let gone = outcome == .gone
        return try await pool.withConnection { c in
            try c.transaction { c in
                try c.query("""
                    INSERT INTO webhook_attempts (delivery, attempt, status_code, error, duration_ms, sent_by)
                    VALUES (\(claimed.id), \(claimed.attempt), \(code), \(error), \(durationMs), \(owner)) ON CONFLICT DO NOTHING
                    """)
                if gone {
                    try c.query("""
                        UPDATE webhooks SET enabled = false, disabled_at = now(),
                               disabled_reason = 'the endpoint answered 410 Gone; enable it again with coordctl webhooks enable'
                        WHERE id = \(claimed.webhook)
                        """)
                }
                let r = try c.query("""
                    UPDATE webhook_deliveries d SET status = o.status, finished_at = CASE WHEN o.status = 'pending' THEN NULL ELSE now() END,
                        next_attempt_at = now() + make_interval(secs => \(retryIn)),
                        last_status = \(code), last_error = \(error), lease_until = NULL, leased_by = NULL
                    FROM (SELECT id, CASE WHEN \(delivered) THEN 'delivered' WHEN \(gone) THEN 'failed'
                                          WHEN created_at + make_interval(secs => \(window)) <= now() + make_interval(secs => \(retryIn)) THEN 'failed'
                                          ELSE 'pending' END AS status
                          FROM webhook_deliveries WHERE id = \(claimed.id)) o
                    WHERE d.id = o.id AND d.leased_by = \(owner)
                    RETURNING d.status
                    """)
                return try r.rows.first?.decode(0) ?? "pending"
            }
        }
    }

    /// Queue figures for /metrics: pending deliveries, the age of the oldest, and deliveries by status.
    public func queue() async throws -> (pending: Int, oldestSeconds: Double, delivered: Int, failed: Int) {
        try await pool.withConnection(retryOnConnectionFailure: true) { c in
            let r = try c.query("""
                SELECT count(*) FILTER (WHERE status = 'pending')::int,
                       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8,
                       count(*) FILTER (WHERE status = 'delivered')::int, count(*) FILTER (WHERE status = 'failed')::int
                FROM webhook_deliveries
                """)
            return (try r.decode(0, 0), try r.decode(0, 1), try r.decode(0, 2), try r.decode(0, 3))
        }
    }
}
