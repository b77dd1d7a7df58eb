/// An error from PostgreSQL or from talking to it.
///
/// Callers branch on `sqlState` (`23505`, `40001`, ...) and `constraint`, never on message text.
/// `description` is safe to show a user or write to a log: it never contains the server's message,
/// which can quote input values. The server's text is only in `debugDescription`.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection broke during the call.
        case connection
        /// The server answered with an error (see `sqlState`).
        case server
        /// A value could not be sent (for example a NUL character in text).
        case encoding
        /// A returned value could not be decoded into the requested Swift type.
        case decoding
        /// The pool was closed or could not hand out a connection in time.
        case pool
    }

    public var kind: Kind
    /// The five-character SQLSTATE code for server errors.
    public var sqlState: String?
    /// The constraint the server named, if any.
    public var constraint: String?
    /// Server or client detail text. Not safe for users: it may quote values.
    public var serverMessage: String

    public init(kind: Kind, sqlState: String? = nil, constraint: String? = nil, serverMessage: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.constraint = constraint
        self.serverMessage = serverMessage
    }

    public var description: String {
        switch kind {
        case .connection: return "database connection failed"
        case .pool: return "database pool unavailable"
        case .encoding: return "value cannot be stored: \(safeEncodingReason)"
        case .decoding: return "unexpected value from the database (\(serverMessage))"  // names a Swift type, never a value
        case .server:
            var text = "database error \(sqlState ?? "?????")"
            if let name = PostgresError.conditionNames[sqlState ?? ""] { text += " (\(name))" }
            if let constraint { text += " on constraint \(constraint)" }
            return text
        }
    }

    /// Encoding errors are produced here, from fixed strings, so their text is safe.
    private var safeEncodingReason: String { serverMessage }

    public var debugDescription: String {
        "\(description): \(serverMessage)"
    }

    /// The connection can no longer be used: the caller should discard it and may retry elsewhere.
    ///
    /// 25006 (read_only_sql_transaction) counts: the session is on a server that is, or has become, a standby, so a
    /// fresh connection (libpq with `target_session_attrs=read-write` tries each host) finds the primary.
    public var isConnectionFailure: Bool {
        kind == .connection || (sqlState.map { $0.hasPrefix("08") || $0 == "57P01" || $0 == "57P02" || $0 == "57P03" || $0 == "25006" } ?? false)
    }

    /// A serialization failure or deadlock: the whole transaction may be retried.
    public var isTransient: Bool {
        sqlState == "40001" || sqlState == "40P01"
    }

    public static let uniqueViolation = "23505"
    public static let checkViolation = "23514"
    public static let raiseException = "P0001"

    static let conditionNames: [String: String] = [
        "23505": "unique_violation", "23503": "foreign_key_violation", "23514": "check_violation",
        "23502": "not_null_violation", "40001": "serialization_failure", "40P01": "deadlock_detected",
        "22P02": "invalid_text_representation", "22021": "character_not_in_repertoire",
        "22P05": "untranslatable_character", "22001": "string_data_right_truncation",
        "22003": "numeric_value_out_of_range", "22007": "invalid_datetime_format", "22008": "datetime_field_overflow",
        "42P01": "undefined_table", "42703": "undefined_column", "42601": "syntax_error",
        "55P03": "lock_not_available", "57014": "query_canceled", "57P01": "admin_shutdown",
        "53300": "too_many_connections", "P0001": "raise_exception", "0A000": "feature_not_supported",
    ]
}
