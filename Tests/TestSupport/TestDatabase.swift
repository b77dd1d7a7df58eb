import Foundation
import Events
#if canImport(Glibc)
import Glibc
#endif

/// The suite's PostgreSQL: `COORD_TEST_DATABASE_URL` when set, else a throwaway embedded cluster in a
/// temporary directory, started once per test process and removed at exit. Each test works in a
/// schema of its own, so tests run in parallel without seeing each other's events.
public enum TestDatabase {
    public static let clusterDirectory = "/tmp/coord-test-\(getpid())"

    private static let connection: Result<String, Error> = Result {
        if let url = ProcessInfo.processInfo.environment["COORD_TEST_DATABASE_URL"], !url.isEmpty {
            return url
        }
        let embedded = makeCluster(at: clusterDirectory)
        try embedded.start()
        atexit {
            try? EmbeddedPostgres(dataDirectory: TestDatabase.clusterDirectory).stop(mode: "immediate")
            try? FileManager.default.removeItem(atPath: TestDatabase.clusterDirectory)
        }
        return embedded.connectionString
    }

    /// A cluster tuned for tests: fsync off (a crash of a throwaway cluster loses nothing we keep),
    /// but synchronous_commit stays on so commit behaviour is the production one. Tests run in parallel, each
    /// with pools of its own that live to the end of the process: the suite peaks above 400 connections.
    public static func makeCluster(at directory: String) -> EmbeddedPostgres {
        EmbeddedPostgres(dataDirectory: directory, settings: [
            "fsync": "off", "full_page_writes": "off", "max_connections": "1000", "shared_buffers": "64MB",
        ])
    }

    public static func connectionString() throws -> String { try connection.get() }

    /// A pool on a new, migrated schema of its own.
    public static func makePool(poolSize: Int = 8, migrate: Bool = true, sets: [MigrationSet] = [EventStoreSchema.migrations]) async throws -> PostgresPool {
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let configuration = try PostgresConfiguration(connectionString: try connectionString(), schema: String(schema),
                                                      applicationName: "coord-test", poolSize: poolSize)
        let pool = PostgresPool(configuration: configuration)
        // Without `migrate`, only the schema (and the migrations table) is created.
        _ = try await Migrator.migrate(pool, migrate ? sets : [])
        return pool
    }

    public static func makeStore(poolSize: Int = 8) async throws -> EventStore {
        EventStore(pool: try await makePool(poolSize: poolSize))
    }

    /// A connection to the same schema as `pool` that the test drives by hand.
    public static func connection(like pool: PostgresPool) throws -> PostgresConnection {
        try PostgresConnection(configuration: pool.configuration)
    }
}

/// `count` events of a small, valid shape.
public func sampleEvents(_ count: Int, type: String = "thing.happened") -> [EventData] {
    (0..<count).map { i in EventData(type: type, data: JSONText(#"{"n":\#(i)}"#), metadata: EventMetadata(actor: "test")) }
}

/// A PostgreSQL cluster of a test's own, for tests that stop and start it (outages, faults); removed by `remove()`.
public struct ScratchCluster: Sendable {
    public let cluster: EmbeddedPostgres
    public let directory: String

    public init(_ label: String) throws {
        directory = "/tmp/coord-test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        cluster = TestDatabase.makeCluster(at: directory)
        try cluster.start()
    }

    /// A started cluster, made off the cooperative pool (initdb and pg_ctl take seconds, and every test's tasks
    /// share those few threads).
    public static func started(_ label: String) async throws -> ScratchCluster {
        try await runBlocking { try ScratchCluster(label) }
    }

    public func stop(mode: String) async throws {
        let cluster = self.cluster
        try await runBlocking { try cluster.stop(mode: mode) }
    }

    public func start() async throws {
        let cluster = self.cluster
        try await runBlocking { try cluster.start() }
    }

    public var connectionString: String { cluster.connectionString }

    /// A pool on the cluster that gives up waiting for a connection after `acquireTimeout` seconds (an outage
    /// answers quickly instead of queueing).
    public func makePool(poolSize: Int = 8, acquireTimeout: Double = 2) throws -> PostgresPool {
        PostgresPool(configuration: try PostgresConfiguration(connectionString: connectionString, poolSize: poolSize), acquireTimeout: acquireTimeout)
    }

    public func remove() {
        try? cluster.stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: directory)
    }
}
