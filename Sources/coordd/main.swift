import Coordination
import Dispatch
import Events
import Foundation

// coordd: opens (or starts) the database, migrates it, runs the projections (leading those no other coordd
// leads) and serves the HTTP API until SIGTERM/SIGINT, then shuts down gracefully.

let spec = CommandSpec(
    path: "coordd", summary: "coordd \(Coordination.version): the coord daemon.",
    options: [
        .init("version", short: "V", help: "Show the version."),
        .init("log-level", value: "LEVEL", help: "trace, debug, info (default), notice, warning, error, critical."),
        .init("listen", value: "HOST:PORT", help: "Address to serve on (default 127.0.0.1:8080; port 0 picks one)."),
        .init("max-connections", value: "N", help: "Concurrent connections (default 2048)."),
        .init("max-body-bytes", value: "N", help: "Largest request body (default 1048576)."),
    ],
    details: """
        Environment:
          DATABASE_URL     postgres:// URI; else libpq's PG* variables; else the embedded cluster. Several hosts
                           (postgres://db1,db2/coord?target_session_attrs=read-write) follow the primary.
          COORD_READ_DATABASE_URL  Serve lists from streaming standbys (e.g. target_session_attrs=prefer-standby);
                           a read with Coord-Min-Position waits until the standby has it.
          COORD_DATA_DIR   Embedded cluster data directory (default .coord/ in the working directory).
          COORD_LOG_LEVEL  Log level (as --log-level).
          COORD_LISTEN     Address to serve on (as --listen).
          COORD_SCHEMA     PostgreSQL schema to work in (default: the server's search_path).
          COORD_DB_POOL_SIZE  Database connections for requests (default 4 per CPU core, from 4 to 16).
          COORD_GROUP_COMMIT_GATHER_US  After a group commit of several appends, wait up to this long for their
                           callers' next ones (default 200, 0 to 10000; backs off when they do not come).
          COORD_PROJECTION_PACE_MS  Under a stream of writes, the least time between a projection's reads of the
                           log, so its commits (default 10, 0 to 1000; an event after a quiet spell is applied at once).
          COORD_ANCHOR_FILE      Append the chain's head here every COORD_ANCHOR_INTERVAL seconds (default 300).
          COORD_ANCHOR_KEY_FILE  Sign those anchors with this key (HMAC-SHA256).
          COORD_COOKIE_SECURE    1: the console's session cookie is always Secure (else behind X-Forwarded-Proto: https).
          COORD_SECRET_KEY_FILE  Key sealing webhook secrets (embedded cluster: COORD_DATA_DIR/secret.key, created).
          COORD_WEBHOOK_ALLOW_PRIVATE  1: webhook URLs may reach loopback, link-local and private addresses.
          COORD_WEBHOOK_DELIVERY       0: this coordd sends no webhooks (others do).
          COORD_WEBHOOK_RETRY_BASE, _CAP, _WINDOW  Retry delays in seconds (5, 3600; retried for 86400).
          COORD_WEBHOOK_TIMEOUT, COORD_WEBHOOK_CONNECT_TIMEOUT, COORD_WEBHOOK_CONCURRENCY  15 s, 5 s, 4 per endpoint.
          COORD_ALERT_ENDING_DAYS, COORD_ALERT_TRANSIT_DAYS, COORD_ALERT_OVERDUE_DAYS  Alert thresholds
                           (7, 7, urgent=0,high=2,normal=7); set them alike for coordd and coordctl.

        The console is served at / (sign in with a token); the API at /v1 (GET /v1/openapi.json).
        """)

func runDaemon() async -> Int32 {
    let args: ParsedArguments
    do {
        args = try spec.parse(Array(CommandLine.arguments.dropFirst()))
        try args.requirePositionals(0...0)
    } catch let error as UsageError {
        FileHandle.standardError.write(Data("Error: \(error.message)\n\(error.usage)\n".utf8))
        return 64
    } catch { return 64 }
    if args.wantsHelp { print(spec.help, terminator: ""); return 0 }
    if args.flag("version") { print("coordd \(Coordination.version)"); return 0 }
    let levelName = args.value("log-level") ?? ProcessInfo.processInfo.environment["COORD_LOG_LEVEL"] ?? "info"
    guard let level = Logger.Level(name: levelName) else {
        FileHandle.standardError.write(Data("Error: unknown log level '\(levelName)'\n\(spec.usage)\n".utf8))
        return 64
    }
    let logger = Logger(label: "coordd", level: level)
    var http = HTTPServerConfiguration()
    let listen = args.value("listen") ?? ProcessInfo.processInfo.environment["COORD_LISTEN"] ?? "127.0.0.1:8080"
    do {
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            throw UsageError("--listen must be HOST:PORT", usage: spec.usage)
        }
        http.host = String(listen[..<colon])
        http.port = port
        http.maxConnections = try args.int("max-connections", default: 2048, range: 1...100_000)
        http.limits.maxBodyBytes = try args.int("max-body-bytes", default: 1 << 20, range: 1024...(64 << 20))
    } catch let error as UsageError {
        FileHandle.standardError.write(Data("Error: \(error.message)\n\(error.usage)\n".utf8))
        return 64
    } catch { return 64 }
    signal(SIGPIPE, SIG_IGN)
    raiseFileDescriptorLimit()

    let target = DatabaseLocator.resolve()
    let started: Bool
    let pool: PostgresPool
    var readPool: PostgresPool?
    let daemon: Daemon
    do {
        let (connection, didStart) = try DatabaseLocator.connectionString(for: target, startEmbedded: true)
        started = didStart
        let env = ProcessInfo.processInfo.environment
        let schema = env["COORD_SCHEMA"].flatMap { $0.isEmpty ? nil : $0 }
        // More connections than the cores can run only queue work inside PostgreSQL, where every busy backend
        // delays the group committer's, which all commands wait on (BENCHMARKS.md: 72 connections gave 25%
        // fewer commands/s than 8 on two cores).
        let poolSize = Int(env["COORD_DB_POOL_SIZE"] ?? "") ?? min(16, max(4, 4 * ProcessInfo.processInfo.activeProcessorCount))
        pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: connection, schema: schema, applicationName: "coordd",
                                                                     poolSize: poolSize))
        let applied = try await Migrator.migrate(pool, Coordination.migrationSets)
        for a in applied { logger.notice("migration applied", ["component": a.component, "version": String(a.version)]) }
        _ = try AlertRules.fromEnvironment()
        let webhooks = try WebhookSettings.fromEnvironment(target: target)
        if webhooks.box == nil { logger.notice("webhooks cannot be created: no COORD_SECRET_KEY_FILE") }
        // Lists may be served from streaming standbys; every write, and whatever must be current, stays on the primary.
        if let reads = env["COORD_READ_DATABASE_URL"], !reads.isEmpty {
            readPool = PostgresPool(configuration: try PostgresConfiguration(connectionString: reads, schema: schema,
                                                                             applicationName: "coordd-reads", poolSize: poolSize))
        }
        daemon = try Daemon(pool: pool, http: http, logger: logger, anchors: try Daemon.Anchors.fromEnvironment(), webhooks: webhooks,
                            readPool: readPool)
        let head = try await daemon.store.headPosition()
        SystemdNotify.send("READY=1\nSTATUS=serving")
        logger.notice("ready", ["database": target.description, "events.head": String(head), "http.listen": "\(http.host):\(daemon.port)"])
    } catch {
        logger.critical("start-up failed: \(error)")
        return 1
    }

    let stop = AsyncStream<Int32> { continuation in
        // Both sources must stay alive: one onTermination closure holds them all.
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            sources.append(source)
        }
        nonisolated(unsafe) let keep = sources
        continuation.onTermination = { _ in keep.forEach { $0.cancel() } }
    }
    for await sig in stop {
        logger.notice("shutting down", ["signal": String(sig)])
        SystemdNotify.send("STOPPING=1")
        break
    }
    // Stop accepting, finish requests in flight, end streams with a final event, stop the projections at a clean checkpoint.
    let clean = await daemon.stop()
    pool.close()
    readPool?.close()
    if started, case .embedded(let embedded) = target {
        do { try embedded.stop() } catch { logger.error("could not stop embedded PostgreSQL: \(error)") }
    }
    if !clean {
        logger.error("stopped with requests cut off at the end of the shutdown grace")
        return 1
    }
    logger.notice("stopped")
    return 0
}

// _exit after flushing: exit() can hang in process teardown while server and libpq threads are still alive.
let code = await runDaemon()
fflush(nil)
_exit(code)
