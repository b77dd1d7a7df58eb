import Foundation

/// Where and how to connect.
public struct PostgresConfiguration: Sendable {
    /// A `postgres://` URI or a libpq `key=value` string; empty means libpq's `PG*` environment variables.
    public var connectionString: String
    /// The schema every session of this configuration works in (its `search_path`); `nil` keeps the server's.
    /// Tests give each suite its own schema. Must be a plain lower-case identifier.
    public var schema: String?
    public var applicationName: String
    public var connectTimeoutSeconds: Int
    /// The most connections the pool opens.
    public var poolSize: Int

    public init(connectionString: String, schema: String? = nil, applicationName: String = "coord",
                connectTimeoutSeconds: Int = 5, poolSize: Int = 10) throws {
        if let schema, !PostgresConfiguration.isPlainIdentifier(schema) {
            throw PostgresError(kind: .encoding, serverMessage: "schema must match [a-z_][a-z0-9_]{0,62}")
        }
        self.connectionString = connectionString
        self.schema = schema
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.poolSize = max(1, poolSize)
    }

    /// `[a-z_][a-z0-9_]{0,62}`: safe to place in SQL text and in libpq's `options` without quoting.
    public static func isPlainIdentifier(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 63 else { return false }
        for (i, c) in u.enumerated() {
            let lower = c >= 97 && c <= 122
            let digit = c >= 48 && c <= 57
            guard lower || c == 95 || (digit && i > 0) else { return false }
        }
        return true
    }

    /// A description without the password, for logs.
    public var redactedDescription: String {
        Self.redact(connectionString.isEmpty ? "(PG* environment)" : connectionString)
    }

    /// Removes passwords from a URI (`user:secret@`) or key/value string (`password=secret`).
    public static func redact(_ s: String) -> String {
        var out = s
        if let scheme = out.range(of: "://"), let at = out.range(of: "@", range: scheme.upperBound..<out.endIndex) {
            let userinfo = out[scheme.upperBound..<at.lowerBound]
            if let colon = userinfo.firstIndex(of: ":") {
                out.replaceSubrange(colon..<at.lowerBound, with: ":***")
            }
        }
        if let r = out.range(of: "password=") {
            let end = out[r.upperBound...].firstIndex(where: { $0 == " " || $0 == "&" }) ?? out.endIndex
            out.replaceSubrange(r.upperBound..<end, with: "***")
        }
        return out
    }
}
