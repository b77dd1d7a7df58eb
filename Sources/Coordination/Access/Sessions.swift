import Events
import Foundation
import Synchronization

/// Browser sessions: a token exchanged once for a session cookie (`POST /v1/session`), so the console never keeps
/// the token. The cookie's value is random and only its SHA-256 is stored; each session has a CSRF value that
/// writes must present in a header, and lapses after `lifetime` (or at sign-out, or when its token is revoked).
/// Kept in PostgreSQL, so any coordd behind the proxy knows it.
public final class SessionStore: Sendable {
    let pool: PostgresPool
    let tokens: TokenStore
    public let lifetime: TimeInterval
    private let cache = Mutex<[String: (Session, Date)]>([:])
    let cacheSeconds: Double

    public struct Session: Sendable, Equatable {
        public let principal: Principal
        public let csrf: String
        public let expiresAt: Date
    }

    public init(pool: PostgresPool, tokens: TokenStore, lifetime: TimeInterval = 12 * 3600, cacheSeconds: Double = 5) {
        self.pool = pool
        self.tokens = tokens
        self.lifetime = lifetime
        self.cacheSeconds = cacheSeconds
    }

    static func random() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    /// A new session for a valid token: the cookie value (shown once) and the session; nil for a token coord
    /// does not know.
    public func open(token: String) async throws -> (cookie: String, session: Session)? {
        guard let principal = try await tokens.authenticate(token) else { return nil }
        let cookie = "s_" + Self.random()
        let csrf = Self.random()
        // A session lasts no longer than its token.
        let expires = min(Date().addingTimeInterval(lifetime), principal.expiresAt ?? .distantFuture)
        let digest = TokenStore.digest(cookie)
        let tokenID = principal.tokenID
        try await pool.withConnection { c in
            // Lapsed sessions go as new ones arrive: the table holds only live ones, and stays small.
            try c.query("DELETE FROM api_sessions WHERE expires_at < now()")
            try c.query("""
                INSERT INTO api_sessions (digest, token_id, csrf, expires_at) VALUES (\(digest), \(tokenID), \(csrf), \(expires))
                """)
        }
        return (cookie, Session(principal: principal, csrf: csrf, expiresAt: expires))
    }

    /// The live session of a cookie value: nil when unknown, lapsed, or its token revoked.
    public func session(cookie: String) async throws -> Session? {
        guard cookie.hasPrefix("s_"), cookie.count == 66 else { return nil }
        let digest = TokenStore.digest(cookie)
        let now = Date()
        if let (s, at) = cache.withLock({ $0[digest] }), now.timeIntervalSince(at) < cacheSeconds, s.expiresAt > now { return s }
        let found = try await pool.withConnection(retryOnConnectionFailure: true) { c -> Session? in
            let r = try c.query("""
                SELECT s.csrf, s.expires_at, \(Principal.columns("t.")) FROM api_sessions s JOIN api_tokens t ON t.id = s.token_id
                WHERE s.digest = \(digest) AND s.expires_at > now() AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
                """)
            guard r.count == 1, let principal = try Principal(r, at: 2) else { return nil }
            return Session(principal: principal, csrf: try r.decode(0, 0), expiresAt: try r.decode(0, 1))
        }
        cache.withLock { c in
            if c.count >= TokenStore.cacheLimit { c.removeAll() }
            if let found { c[digest] = (found, now) } else { c.removeValue(forKey: digest) }
        }
        return found
    }

    /// Ends the session of a cookie value (sign-out).
    public func close(cookie: String) async throws {
        let digest = TokenStore.digest(cookie)
        cache.withLock { _ = $0.removeValue(forKey: digest) }
        try await pool.withConnection { c in try c.query("DELETE FROM api_sessions WHERE digest = \(digest)") }
    }
}
