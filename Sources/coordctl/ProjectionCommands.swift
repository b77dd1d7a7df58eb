import Coordination
import Events
import Foundation

enum ProjectionCommands {
    static let group = Group(name: "projections", summary: "Inspect and rebuild the read models.", commands: [
        "list": Command(spec: CommandSpec(path: "coordctl projections list", summary: "Each projection's version, checkpoint, lag and state.",
                                          options: [.json], details: databaseHelp)) { args in
            try args.requirePositionals(0...0)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let status = try await ProjectionRunner.status(pool: session.pool, definitions: Coordination.projections)
            if args.flag("json") {
                print(Output.json(status.map(statusJSON)))
            } else {
                print(Output.table(["projection", "version", "checkpoint", "lag events", "lag s", "state", "error"], status.map { s in
                    [s.name, "\(s.version)", "\(s.checkpoint)", "\(s.lagEvents)", String(format: "%.1f", s.lagSeconds), s.status,
                     s.errorPosition.map { "at \($0): \(s.error ?? "")" } ?? ""]
                }))
            }
            return status.contains { $0.status == "failed" } ? 1 : 0
        },
        "rebuild": Command(spec: CommandSpec(
            path: "coordctl projections rebuild", summary: "Rebuild one projection (or --all) from the log, without downtime.",
            arguments: "[NAME]",
            options: [.init("all", help: "Rebuild every projection."), .init("json", help: "Machine-readable summary.")],
            details: """
                Builds shadow tables while the current ones keep serving reads, then swaps them in one short transaction.
                When a coordd leads the projection, the rebuild is handed to it and this command waits for it to finish.
                The projections no coordd leads are rebuilt here together: one read and decode of the log folds into
                all of them at once.

                """ + databaseHelp)) { args in
            try args.requirePositionals(0...1)
            let definitions = try select(args)
            let session = try Session.open(poolSize: 6)
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let store = EventStore(pool: session.pool)
            defer { store.close() }
            var results: [[String: Any]] = []
            func report(_ def: any ProjectionDefinition, _ checkpoint: Int64, _ seconds: Double, _ by: String) {
                results.append(["projection": def.name, "checkpoint": checkpoint, "seconds": (seconds * 1000).rounded() / 1000, "rebuilt_by": by])
                if !args.flag("json") {
                    print("Rebuilt \(def.name) through position \(checkpoint) in \(String(format: "%.2f", seconds)) s (\(by)).")
                }
            }
            // The projections no coordd leads are rebuilt here, together (one read and decode of the log for all);
            // the others are handed to their leaders.
            let locks = try await lockUnled(definitions, store: store)
            defer { for c in locks.values { c.value.close() } }  // closing releases the locks
            let here = definitions.filter { locks[$0.name] != nil }
            if !here.isEmpty {
                let started = Date()
                let checkpoints = try await ProjectionRunner.rebuild(here, store: store, decode: EventCodec.decode) { position, head in
                    Output.progress("\(here.map(\.name).joined(separator: ", ")): \(position)/\(head) events")
                }
                Output.progressDone()
                let seconds = Date().timeIntervalSince(started)
                for (def, checkpoint) in zip(here, checkpoints) { report(def, checkpoint, seconds, "this command") }
            }
            for def in definitions where locks[def.name] == nil {
                let started = Date()
                let checkpoint = try await rebuildByLeader(def, store: store)
                Output.progressDone()
                report(def, checkpoint, Date().timeIntervalSince(started), "the leading coordd")
            }
            if args.flag("json") { print(Output.json(results)) }
            return 0
        },
        "reset": Command(spec: CommandSpec(
            path: "coordctl projections reset", summary: "Mark a projection for a rebuild from scratch (after a failure fix).",
            arguments: "NAME", options: [.json],
            details: "The leading coordd (or the next one to start) rebuilds it.\n\n" + databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let definitions = try select(args)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            for def in definitions {
                try await ProjectionRunner.requestRebuild(def.name, pool: session.pool)
                if args.flag("json") {
                    print(Output.json(["projection": def.name, "status": "rebuild_requested"]))
                } else {
                    print("Projection \(def.name) will be rebuilt by its leader.")
                }
            }
            return 0
        },
    ])

    static func statusJSON(_ s: ProjectionStatus) -> [String: Any] {
        ["name": s.name, "version": s.version, "checkpoint": s.checkpoint, "lag_events": s.lagEvents,
         "lag_seconds": (s.lagSeconds * 1000).rounded() / 1000, "status": s.status, "error": s.error as Any? ?? NSNull(),
         "error_position": s.errorPosition as Any? ?? NSNull(), "rebuilt_at": s.rebuiltAt.map(Timestamp.format) as Any? ?? NSNull()]
    }

    static func select(_ args: ParsedArguments) throws -> [any ProjectionDefinition] {
        let usage = "Usage: coordctl projections <rebuild|reset> NAME|--all"
        if args.flag("all") {
            guard args.positionals.isEmpty else { throw UsageError("give a NAME or --all, not both", usage: usage) }
            return Coordination.projections
        }
        guard let name = args.positionals.first else { throw UsageError("missing projection NAME (or --all)", usage: usage) }
        guard let def = Coordination.projections.first(where: { $0.name == name }) else {
            throw UsageError("unknown projection '\(name)'; known: \(Coordination.projections.map(\.name).joined(separator: ", "))", usage: usage)
        }
        return [def]
    }

    /// Takes the lock of each projection no coordd leads: name -> the connection holding it.
    static func lockUnled(_ defs: [any ProjectionDefinition], store: EventStore) async throws -> [String: SendableBox<PostgresConnection>] {
        var locks: [String: SendableBox<PostgresConnection>] = [:]
        for def in defs {
            let name = def.name
            let lock = try await runBlocking { () -> SendableBox<PostgresConnection?> in
                let c = try PostgresConnection(configuration: store.pool.configuration)
                if try !ProjectionRunner.tryLead(name, on: c) { c.close(); return SendableBox(nil) }
                return SendableBox(c)
            }
            if let c = lock.value { locks[name] = SendableBox(c) }
        }
        return locks
    }

    /// Asks the coordd leading `def` to rebuild it, and waits until it has.
    static func rebuildByLeader(_ def: any ProjectionDefinition, store: EventStore) async throws -> Int64 {
        let before = try await ProjectionRunner.status(pool: store.pool, definitions: [def])[0].rebuiltAt
        try await ProjectionRunner.requestRebuild(def.name, pool: store.pool)
        while true {
            try await Task.sleep(nanoseconds: 200_000_000)
            let s = try await ProjectionRunner.status(pool: store.pool, definitions: [def])[0]
            Output.progress("\(def.name): waiting for the leading coordd to rebuild")
            if s.status == "failed" { throw EventStoreError.unavailable("projection \(def.name) failed: \(s.error ?? "")") }
            if s.status == "running", let at = s.rebuiltAt, at > (before ?? .distantPast) { return s.checkpoint }
        }
    }
}
