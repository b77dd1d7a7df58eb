import Foundation

/// Which PostgreSQL a process uses: `DATABASE_URL`, else libpq's `PG*` variables, else the embedded
/// cluster under `COORD_DATA_DIR` (default `.coord/`).
public enum DatabaseLocator {
    public enum Target: Sendable {
        case url(String)
        case environment
        case embedded(EmbeddedPostgres)

        public var description: String {
            switch self {
            case .url(let u): return "DATABASE_URL \(PostgresConfiguration.redact(u))"
            case .environment: return "PG* environment"
            case .embedded(let e): return "embedded cluster at \(e.location)"
            }
        }
    }

    /// libpq's variables that say where or how to connect: any of them set means "use libpq's defaults with
    /// these", never the embedded cluster (a `PGSSLMODE` or `PGPASSFILE` alone is a deliberate choice too).
    static let libpqVariables = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE",
                                 "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME", "PGSSLMODE", "PGREQUIRESSL",
                                 "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI",
                                 "PGREQUIREPEER", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION", "PGGSSENCMODE",
                                 "PGKRBSRVNAME", "PGGSSLIB", "PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS",
                                 "PGLOADBALANCEHOSTS", "PGCHANNELBINDING"]

    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) -> Target {
        if let url = environment["DATABASE_URL"], !url.isEmpty { return .url(url) }
        if libpqVariables.contains(where: { !(environment[$0] ?? "").isEmpty }) { return .environment }
        return .embedded(EmbeddedPostgres(dataDirectory: EmbeddedPostgres.defaultDataDirectory(environment: environment)))
    }

    /// A libpq connection string for `target`; starts the embedded cluster when `startEmbedded` is set
    /// (the returned flag says whether this call started it).
    public static func connectionString(for target: Target, startEmbedded: Bool) throws -> (String, Bool) {
        switch target {
        case .url(let url): return (url, false)
        case .environment: return ("", false)
        case .embedded(let embedded):
            if startEmbedded {
                let started = try embedded.start()
                return (embedded.connectionString, started)
            }
            guard embedded.isRunning() else {
                throw EmbeddedPostgres.LauncherError.notInitialized(embedded.dataDirectory)
            }
            return (embedded.connectionString, false)
        }
    }
}
