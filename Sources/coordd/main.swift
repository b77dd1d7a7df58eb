import Coordination
import Dispatch
import Events
import Foundation

// coordd, for now: opens (or starts) the database, migrates it, runs the projections (leading those no
// other coordd leads), and holds the embedded cluster up until SIGTERM/SIGINT. The HTTP API lands with its issue.

let spec = CommandSpec(
    path: "coordd", summary: "coordd \(Coordination.version): the coord daemon.",
    options: [
        .init("version", help: "Show the version."),
        .init("log-level", value: "LEVEL", help: "trace, debug, info (default), notice, warning, error, critical."),
    ],
    details: """
        Environment:
          DATABASE_URL     postgres:// URI; else libpq's PG* variables; else the embedded cluster.
          COORD_DATA_DIR   Embedded cluster data directory (default .coord/ in the working directory).
          COORD_LOG_LEVEL  Log level (as --log-level).
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
    signal(SIGPIPE, SIG_IGN)

    let target = DatabaseLocator.resolve()
    let started: Bool
    let pool: PostgresPool
    let runner: ProjectionRunner
    do {
        let (connection, didStart) = try DatabaseLocator.connectionString(for: target, startEmbedded: true)
        started = didStart
        pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: connection, applicationName: "coordd"))
        let applied = try await Migrator.migrate(pool, Coordination.migrationSets)
        for a in applied { logger.notice("migration applied", ["component": a.component, "version": String(a.version)]) }
        let store = EventStore(pool: pool)
        runner = ProjectionRunner(store: store, definitions: Coordination.projections, logger: logger)
        runner.start()
        let head = try await store.headPosition()
        logger.notice("ready", ["database": target.description, "events.head": String(head)])
    } catch {
        logger.critical("start-up failed: \(error)")
        return 1
    }

    let stop = AsyncStream<Int32> { continuation in
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            nonisolated(unsafe) let keep = source
            continuation.onTermination = { _ in keep.cancel() }
        }
    }
    for await sig in stop {
        logger.notice("shutting down", ["signal": String(sig)])
        break
    }
    await runner.stop()  // each projection finishes its batch and commits its checkpoint
    pool.close()
    if started, case .embedded(let embedded) = target {
        do { try embedded.stop() } catch { logger.error("could not stop embedded PostgreSQL: \(error)") }
    }
    logger.notice("stopped")
    return 0
}

exit(await runDaemon())
