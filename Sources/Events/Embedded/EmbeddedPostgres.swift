import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster that coordd, coordctl and the test suite manage themselves.
///
/// Created with `initdb` on first use under `<data directory>/pg`, listening only on a Unix socket
/// inside the cluster directory (no TCP port), with `trust` authentication for that socket only:
/// the directory is 0700, so only its owner (and root) can reach it. PostgreSQL refuses to run as
/// root; when we are root, the cluster runs as an unprivileged user (`COORD_PG_USER`, else
/// `postgres`, else `nobody`), and if that user cannot reach the data directory (say, under /root),
/// the cluster lives under `/var/lib/coord/embedded/` instead, which `location` records.
public struct EmbeddedPostgres: Sendable {
    /// `COORD_DATA_DIR`, default `.coord` in the working directory.
    public let dataDirectory: String
    /// Settings added to postgresql.conf at initdb time.
    public var settings: [String: String]
    public let port = 5432
    public let databaseName = "coord"
    public let superuser = "coord"

    public init(dataDirectory: String, settings: [String: String] = [:]) {
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.settings = settings
    }

    /// The data directory from `COORD_DATA_DIR`, or `.coord` in the working directory.
    public static func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment["COORD_DATA_DIR"], !dir.isEmpty { return dir }
        return FileManager.default.currentDirectoryPath + "/.coord"
    }

    public enum LauncherError: Error, CustomStringConvertible, Sendable {
        case postgresNotFound
        case commandFailed(String, Int32, String)
        case notInitialized(String)

        public var description: String {
            switch self {
            case .postgresNotFound:
                return "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql (apt-get install postgresql) or set COORD_PG_BIN"
            case let .commandFailed(command, status, output):
                return "\(command) failed with status \(status): \(output.suffix(2000))"
            case .notInitialized(let dir):
                return "no embedded PostgreSQL cluster in \(dir): run `coordctl db start` or `coordctl migrate`"
            }
        }
    }

    // MARK: Where things are

    /// The user the server runs as: nil when we are not root (it runs as us).
    public var serverUser: String? {
        guard geteuid() == 0 else { return nil }
        if let u = ProcessInfo.processInfo.environment["COORD_PG_USER"], !u.isEmpty { return u }
        return getpwnam("postgres") != nil ? "postgres" : "nobody"
    }

    /// The cluster directory (PGDATA).
    public var location: String {
        let pointer = dataDirectory + "/cluster-location"
        if let recorded = try? String(contentsOfFile: pointer, encoding: .utf8) {
            let path = recorded.trimmingCharacters(in: .whitespacesAndNewlines)
            if !path.isEmpty { return path }
        }
        return dataDirectory + "/pg"
    }

    public var socketDirectory: String { location }

    /// A libpq connection string for the cluster's `coord` database.
    public var connectionString: String { "host=\(socketDirectory) port=\(port) dbname=\(databaseName) user=\(superuser)" }

    public var logFile: String { location + "/postgres.log" }

    public static func binDirectory() throws -> String {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let bin = env["COORD_PG_BIN"], !bin.isEmpty { candidates.append(bin) }
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            let sorted = versions.compactMap { Int($0) }.filter { $0 >= 15 }.sorted(by: >)
            candidates += sorted.map { "/usr/lib/postgresql/\($0)/bin" }
        }
        candidates += (env["PATH"] ?? "").split(separator: ":").map(String.init)
        candidates += ["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"]
        for dir in candidates where FileManager.default.isExecutableFile(atPath: dir + "/pg_ctl")
            && FileManager.default.isExecutableFile(atPath: dir + "/initdb") {
            return dir
        }
        throw LauncherError.postgresNotFound
    }

    // MARK: Lifecycle

    /// Whether the server of this cluster is running.
    public func isRunning() -> Bool {
        guard FileManager.default.fileExists(atPath: location + "/PG_VERSION"),
              let bin = try? Self.binDirectory() else { return false }
        return (try? run([bin + "/pg_ctl", "status", "-D", location], asServerUser: true).status) == 0
    }

    /// Initialises the cluster if needed and starts it if it is not running. Returns true when this call
    /// started the server (and so should stop it), false when it was already running. Safe when two
    /// processes call it at once: they serialise on a lock file in the data directory.
    @discardableResult
    public func start() throws -> Bool {
        let bin = try Self.binDirectory()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let lock = try FileLock(path: dataDirectory + "/embedded.lock")
        defer { lock.unlock() }

        if !FileManager.default.fileExists(atPath: location + "/PG_VERSION") {
            try initialize(bin: bin)
        }
        if (try? run([bin + "/pg_ctl", "status", "-D", location], asServerUser: true).status) == 0 {
            try createDatabaseIfNeeded()
            return false
        }
        // A stale pid file from a crash is handled by pg_ctl/postgres themselves.
        let result = try run([bin + "/pg_ctl", "start", "-D", location, "-l", logFile, "-w", "-t", "60", "-s"],
                             asServerUser: true)
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw LauncherError.commandFailed("pg_ctl start", result.status, result.output + "\n" + String(log.suffix(1500)))
        }
        try createDatabaseIfNeeded()
        return true
    }

    /// Stops the server (fast shutdown: sessions are ended, committed work is safe).
    public func stop(mode: String = "fast") throws {
        let bin = try Self.binDirectory()
        guard isRunning() else { return }
        let result = try run([bin + "/pg_ctl", "stop", "-D", location, "-m", mode, "-w", "-t", "60", "-s"], asServerUser: true)
        guard result.status == 0 else { throw LauncherError.commandFailed("pg_ctl stop", result.status, result.output) }
    }

    /// Restarts the server (tests use it to prove subscriptions survive a restart).
    public func restart() throws {
        try stop()
        try start()
    }

    private func initialize(bin: String) throws {
        var cluster = dataDirectory + "/pg"
        if let user = serverUser {
            // The server user must be able to reach the data directory; /root, for one, is 0700.
            let reachable = (try? run(["/usr/bin/test", "-x", dataDirectory], asServerUser: true).status) == 0
            if !reachable {
                cluster = "/var/lib/coord/embedded/" + Self.fingerprint(dataDirectory)
                try FileManager.default.createDirectory(atPath: "/var/lib/coord/embedded", withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o755])
                try (cluster + "\n").write(toFile: dataDirectory + "/cluster-location", atomically: true, encoding: .utf8)
            }
            try FileManager.default.createDirectory(atPath: cluster, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let chown = try run(["/bin/chown", "-R", user, cluster], asServerUser: false)
            guard chown.status == 0 else { throw LauncherError.commandFailed("chown", chown.status, chown.output) }
        } else {
            try FileManager.default.createDirectory(atPath: cluster, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        if FileManager.default.fileExists(atPath: cluster + "/PG_VERSION") { return }
        let initdb = try run([bin + "/initdb", "-D", cluster, "-U", superuser, "--auth=trust", "-E", "UTF8",
                              "--no-locale", "--no-instructions"], asServerUser: true)
        guard initdb.status == 0 else { throw LauncherError.commandFailed("initdb", initdb.status, initdb.output) }
        var conf = """

            # Added by coord's embedded launcher: Unix socket only, inside this directory.
            listen_addresses = ''
            unix_socket_directories = '\(cluster.replacingOccurrences(of: "'", with: "''"))'
            unix_socket_permissions = 0700
            port = \(port)
            max_connections = 200
            shared_buffers = 128MB
            logging_collector = off

            """
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { conf += "\(key) = \(value)\n" }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster + "/postgresql.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(conf.utf8))
        try handle.close()
    }

    private func createDatabaseIfNeeded() throws {
        var config = try PostgresConfiguration(connectionString: "host=\(socketDirectory) port=\(port) dbname=postgres user=\(superuser)")
        config.applicationName = "coord-launcher"
        let connection = try PostgresConnection(configuration: config)
        defer { connection.close() }
        let exists = try connection.query("SELECT count(*) FROM pg_database WHERE datname = \(databaseName)")
        if try exists.decode(0, 0, as: Int.self) == 0 {
            try connection.execute(unsafe: "CREATE DATABASE coord")
        }
    }

    static func fingerprint(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    // MARK: Processes

    struct Output { let status: Int32; let output: String }

    func run(_ arguments: [String], asServerUser: Bool) throws -> Output {
        var argv = arguments
        if asServerUser, let user = serverUser {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].first { FileManager.default.isExecutableFile(atPath: $0) }
            if let runuser {
                // Run from / so that the server user never starts in a directory it cannot read.
                argv = [runuser, "-u", user, "--", "/usr/bin/env", "-C", "/"] + arguments
            } else {
                argv = ["/bin/su", "-s", "/bin/sh", user, "-c", arguments.map(Self.shellQuote).joined(separator: " ")]
            }
        }
        let result = try Subprocess.run(argv)
        return Output(status: result.status, output: result.output)
    }

    static func shellQuote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// An exclusive `flock` on a file, released by `unlock` or process exit.
final class FileLock {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { close(fd); throw CocoaError(.fileLocking) }
        }
    }

    func unlock() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
