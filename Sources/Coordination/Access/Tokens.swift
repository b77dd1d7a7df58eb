import Events
import Foundation
import Synchronization

/// Roles, weakest first: viewer reads, operator also issues domain commands, admin also manages tokens and projections.
public enum Role: String, Sendable, CaseIterable, Comparable {
    case viewer, `operator`, admin
    public static func < (a: Role, b: Role) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// An authenticated caller.
public struct Principal: Sendable, Equatable {
    public let tokenID: String
    /// Recorded as the `actor` of every event the caller writes.
    public let subject: String
    public let role: Role
    /// Sees people's names, emails and unavailability reasons (docs/PRIVACY.md); others see person ids only.
    public var personalData: Bool
    /// When the token stops working; nil: until revoked.
    public var expiresAt: Date?
    /// What it may reach (docs/PRIVACY.md, "Scopes"); admins are unscoped.
    public var scope: Scope

    public init(tokenID: String, subject: String, role: Role, personalData: Bool = false, expiresAt: Date? = nil, scope: Scope = .unscoped) {
        (self.tokenID, self.subject, self.role, self.personalData, self.expiresAt, self.scope) = (tokenID, subject, role, personalData, expiresAt, scope)
    }

    /// The token columns a principal is read from, prefixed by the table's alias (`t.`), in `init(row:at:)`'s order.
    static func columns(_ alias: SQL) -> SQL {
        "\(alias)id, \(alias)subject, \(alias)role, \(alias)personal_data, \(alias)expires_at, array_to_string(\(alias)scope_countries, ','), array_to_string(\(alias)scope_responses, ','), array_to_string(\(alias)scope_warehouses, ',')"
    }

    /// The principal of a row whose columns `at` onwards are `columns`; nil for an unknown role.
    init?(_ r: PostgresResult, row: Int = 0, at first: Int = 0) throws {
        guard let role = Role(rawValue: try r.decode(row, first + 2)) else { return nil }
        self.init(tokenID: try r.decode(row, first), subject: try r.decode(row, first + 1), role: role, personalData: try r.decode(row, first + 3),
                  expiresAt: try r.decodeOptional(row, first + 4),
                  scope: Scope(countries: Scope.list(try r.decode(row, first + 5)), responses: Scope.list(try r.decode(row, first + 6)),
                               warehouses: Scope.list(try r.decode(row, first + 7))))
    }

    /// Still valid at `now`.
    public func isLive(at now: Date = Date()) -> Bool { expiresAt.map { $0 > now } ?? true }
}

/// Bearer tokens, stored only as SHA-256 digests. A token is shown once, at creation; the digest is computed
/// here, so a clear token never reaches PostgreSQL (where statement logging would write it down).
public final class TokenStore: Sendable {
    let pool: PostgresPool
    /// Verified tokens by digest, trusted for `cacheSeconds` (so a revocation takes effect within it).
    private let cache = Mutex<[String: (Principal, Date)]>([:])
    /// Digests known not to be tokens, for `negativeSeconds`: a client retrying a wrong token (or a scan of
    /// random ones) costs a lookup in memory, not a database round trip each time. Bounded.
    private let unknown = Mutex<[String: Date]>([:])
    let cacheSeconds: Double
    let negativeSeconds: Double
    static let cacheLimit = 10_000

    public init(pool: PostgresPool, cacheSeconds: Double = 5, negativeSeconds: Double = 60) {
        self.pool = pool
        self.cacheSeconds = cacheSeconds
        self.negativeSeconds = negativeSeconds
    }

    /// The SHA-256 of a token, hex: what the table holds.
    public static func digest(_ token: String) -> String {
        var text = token
        return text.withUTF8 { Hex.string(SHA256.hash($0)) }
    }

    /// A duration such as `90s`, `10m`, `12h` or `30d`, in seconds; nil when it is not one (at most 10 years).
    public static func duration(_ text: String) -> Double? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0, String(text.dropLast()) == String(n) else { return nil }
        let seconds: Double
        switch unit {
        case "s": seconds = Double(n)
        case "m": seconds = Double(n) * 60
        case "h": seconds = Double(n) * 3600
        case "d": seconds = Double(n) * 86_400
        default: return nil
        }
        return seconds <= 3650 * 86_400 ? seconds : nil
    }

    /// Creates a token and returns it in clear, with its id. The clear token is never stored. `personalData`: it may
    /// see people's personal data (never a viewer's); `expiresIn`: seconds until it stops working (nil: never).
    public func create(subject: String, role: Role, personalData: Bool = false, expiresIn: Double? = nil,
                       scope: Scope = .unscoped) async throws -> (id: String, token: String) {
        if personalData && role == .viewer {
            throw DomainError.invalid("personal_data", "a viewer token never has personal-data access")
        }
        if role == .admin && !scope.isUnscoped { throw DomainError.invalid("scope", "admin tokens are unscoped") }
        try scope.validate()
        var rng = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let token = "coord_" + secret
        let id = "tok_" + String(secret.prefix(8))
        guard !subject.isEmpty, subject.count <= 100, !subject.contains(where: { $0.isNewline }) else {
            throw DomainError.invalid("subject", "must be 1 to 100 characters on one line")
        }
        try await pool.withConnection { c in
            try c.query("""
                INSERT INTO api_tokens (id, subject, role, digest, personal_data, expires_at, scope_countries, scope_responses, scope_warehouses)
                VALUES (\(id), \(subject), \(role.rawValue), \(Self.digest(token)), \(personalData), \(expiresIn.map { Date().addingTimeInterval($0) }),
                        \(scope.countries)::text[], \(scope.responses)::text[], \(scope.warehouses)::text[])
                """)
        }
        return (id, token)
    }

    public struct Listed: Sendable {
        public let id, subject, role: String
        public let createdAt: Date
        public let revokedAt: Date?
        public let personalData: Bool
        public let expiresAt: Date?
        public let scope: Scope
    }

    public func list() async throws -> [Listed] {
        try await pool.withConnection { c in
            try c.query("""
                SELECT id, subject, role, created_at, revoked_at, personal_data, expires_at, array_to_string(scope_countries, ','),
                       array_to_string(scope_responses, ','), array_to_string(scope_warehouses, ',')
                FROM api_tokens ORDER BY created_at, id
                """).rows.map {
                Listed(id: try $0.decode(0), subject: try $0.decode(1), role: try $0.decode(2), createdAt: try $0.decode(3), revokedAt: try $0.decodeOptional(4),
                       personalData: try $0.decode(5), expiresAt: try $0.decodeOptional(6),
                       scope: Scope(countries: Scope.list(try $0.decode(7)), responses: Scope.list(try $0.decode(8)), warehouses: Scope.list(try $0.decode(9))))
            }
        }
    }

    /// Revokes a token; returns false when no active token has that id.
    public func revoke(id: String) async throws -> Bool {
        let changed = try await pool.withConnection { c in
            try c.query("UPDATE api_tokens SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL").affectedRows
        }
        cache.withLock { $0 = $0.filter { $0.value.0.tokenID != id } }
        return changed == 1
    }

    /// The principal for a presented token, or nil when it is unknown, revoked or expired.
    public func authenticate(_ token: String) async throws -> Principal? {
        guard token.hasPrefix("coord_"), token.count == 70 else { return nil }
        let digest = Self.digest(token)
        let now = Date()
        if let (principal, at) = cache.withLock({ $0[digest] }), now.timeIntervalSince(at) < cacheSeconds, principal.isLive(at: now) { return principal }
        if let at = unknown.withLock({ $0[digest] }), now.timeIntervalSince(at) < negativeSeconds { return nil }
        let found = try await pool.withConnection(retryOnConnectionFailure: true) { c -> Principal? in
            let r = try c.query("""
                SELECT \(Principal.columns("")) FROM api_tokens
                WHERE digest = \(digest) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                """)
            guard r.count == 1 else { return nil }
            return try Principal(r)
        }
        if let found {
            cache.withLock { c in
                if c.count >= Self.cacheLimit { c.removeAll() }
                c[digest] = (found, now)
            }
        } else {
            cache.withLock { _ = $0.removeValue(forKey: digest) }
            unknown.withLock { u in
                if u.count >= Self.cacheLimit { u = u.filter { now.timeIntervalSince($0.value) < negativeSeconds } }
                if u.count >= Self.cacheLimit { u.removeAll() }
                u[digest] = now
            }
        }
        return found
    }
}
