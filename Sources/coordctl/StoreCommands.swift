import Coordination
import Events
import Foundation

enum MigrateCommand {
    static let spec = CommandSpec(
        path: "coordctl migrate", summary: "Create or upgrade the database schema, then grant the app and read-only roles.",
        options: [.init("json", help: "Print what was applied as JSON."),
                  .init("app-role", value: "ROLE", help: "Grant this role what coordd needs (default: COORD_APP_ROLE)."),
                  .init("readonly-role", value: "ROLE", help: "Grant this role SELECT on every table (default: COORD_READONLY_ROLE).")],
        details: """
            Safe to run again and from several processes at once; refuses a schema newer than this binary, and one
            whose applied migrations differ from the ones this binary ships. Run it as the schema's owner; with
            --app-role the application role gets, after the tables exist, the least that runs coordd: it appends only
            through the store's functions and can never write the log, the streams or the head directly.

            """ + databaseHelp)

    static let command = Command(spec: spec) { args in
        try args.requirePositionals(0...0)
        let env = ProcessInfo.processInfo.environment
        let app = args.value("app-role") ?? env["COORD_APP_ROLE"].flatMap { $0.isEmpty ? nil : $0 }
        let readonly = args.value("readonly-role") ?? env["COORD_READONLY_ROLE"].flatMap { $0.isEmpty ? nil : $0 }
        for role in [app, readonly].compactMap({ $0 }) where !PostgresConfiguration.isPlainIdentifier(role) {
            throw UsageError("role names must match [a-z_][a-z0-9_]{0,62}", usage: spec.usage)
        }
        let session = try Session.open()
        defer { session.close() }
        let applied = try await Migrator.migrate(session.pool, Coordination.migrationSets)
        if app != nil || readonly != nil { try await Migrator.grant(session.pool, Coordination.migrationSets, app: app, readonly: readonly) }
        if args.flag("json") {
            print(Output.json(["applied": applied.map { ["component": $0.component, "version": $0.version, "name": $0.name] }]))
        } else if applied.isEmpty {
            print("Schema is current.")
        } else {
            for a in applied { print("Applied \(a.component) v\(a.version): \(a.name)") }
        }
        return 0
    }
}

enum StatusCommand {
    static let spec = CommandSpec(
        path: "coordctl status", summary: "Show schema version, event counts, head position and chain state.",
        options: [
            .json,
            .init("full", help: "Verify the whole hash chain (default: the last 10,000 events)."),
        ],
        details: databaseHelp)

    static let command = Command(spec: spec) { args in
        try args.requirePositionals(0...0)
        let session = try Session.open()
        defer { session.close() }
        let versions = try await session.pool.withConnection { c in
            try Coordination.migrationSets.map { ($0.component, try Migrator.version(connection: c, component: $0.component), $0.latestVersion) }
        }
        var result: [String: Any] = [
            "database": session.target.description,
            "schema": versions.map { ["component": $0.0, "version": $0.1, "binary_version": $0.2] },
        ]
        var lines: [(String, String)] = [("Database", session.target.description)]
        for (component, version, known) in versions {
            lines.append(("Schema \(component)", version == known ? "v\(version) (current)" : "v\(version) (this binary: v\(known))"))
        }
        var exitCode: Int32 = 0
        if versions.allSatisfy({ $0.1 > 0 }) {
            let store = EventStore(pool: session.pool)
            defer { store.close() }
            let summary = try await store.summary()
            let from = args.flag("full") ? 1 : max(1, summary.headPosition - 9_999)
            let report = try await store.verify(from: from)
            result["head_position"] = summary.headPosition
            result["events"] = summary.headPosition
            result["streams"] = summary.streams
            result["last_recorded_at"] = summary.lastRecordedAt.map(Timestamp.format) ?? NSNull()
            result["chain"] = ["from": from, "verified_through": report.verifiedThrough, "sound": report.isSound,
                               "broken_at": report.brokenAt as Any? ?? NSNull(), "problem": report.problem as Any? ?? NSNull()]
            lines += [
                ("Events", "\(summary.headPosition)"),
                ("Head position", "\(summary.headPosition)"),
                ("Streams", "\(summary.streams)"),
                ("Last recorded", summary.lastRecordedAt.map(Timestamp.format) ?? "-"),
                ("Chain", report.isSound
                    ? "sound from \(from) through \(report.verifiedThrough)"
                    : "BROKEN at position \(report.brokenAt!) (\(report.problem ?? "?")); run coordctl verify"),
            ]
            if !report.isSound { exitCode = 2 }
            if versions.allSatisfy({ $0.1 == $0.2 }) {
                let projections = try await ProjectionRunner.status(pool: session.pool, definitions: Coordination.projections)
                result["projections"] = projections.map(ProjectionCommands.statusJSON)
                for p in projections {
                    var line = "checkpoint \(p.checkpoint), lag \(p.lagEvents) events / \(String(format: "%.1f", p.lagSeconds)) s, \(p.status)"
                    if let at = p.errorPosition { line += " at position \(at)" }
                    lines.append(("Projection \(p.name)", line))
                }
            }
        } else {
            lines.append(("Events", "schema not created: run coordctl migrate"))
        }
        if case .embedded(let embedded) = session.target {
            result["embedded"] = ["cluster": embedded.location, "running": embedded.isRunning()]
            lines.append(("Embedded cluster", "\(embedded.location) (\(session.startedEmbedded ? "started for this command" : "running"))"))
        }
        print(args.flag("json") ? Output.json(result) : Output.keyValues(lines))
        return exitCode
    }
}

enum VerifyCommand {
    static let spec = CommandSpec(
        path: "coordctl verify", summary: "Recompute the hash chain, check streams, head and checkpoints, and anchored heads; exit 2 if broken.",
        options: [
            .init("from", value: "POSITION", help: "Start the chain at this position (default 1)."),
            .init("anchors", value: "FILE", help: "Anchors recorded outside the database (coordd's COORD_ANCHOR_FILE, `coordctl anchor`, or its log): each must still be in the log."),
            .init("anchor-key-file", value: "FILE", help: "The key the anchors are signed with (default: COORD_ANCHOR_KEY_FILE); every anchor must verify."),
            .json,
        ],
        details: """
            The chain catches an edited, missing or reordered event; the state checks catch a stream row, the head or a
            projection checkpoint that disagrees with the events; anchors catch what a superuser can still do with the
            database alone: recompute the whole chain after an edit, or cut the tail and move the head back.

            Exit status: 0 sound, 2 broken (the first problem is printed), 1 other failure.

            """ + databaseHelp)

    static let command = Command(spec: spec) { args in
        try args.requirePositionals(0...0)
        let from = try args.int("from", default: 1, range: 1...Int.max)
        let anchors = try args.value("anchors").map(AnchorCommand.read)
        let key = try AnchorCommand.key(args.value("anchor-key-file"))
        let session = try Session.open()
        defer { session.close() }
        try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        let started = Date()
        let report = try await store.verify(from: Int64(from)) { last in Output.progress("verified through \(last)") }
        Output.progressDone()
        let state = try await store.verifyState()
        var anchored: [(anchor: ChainAnchor, problem: String)] = []
        if let anchors { anchored = try await store.check(anchors: anchors, key: key) }
        let seconds = Date().timeIntervalSince(started)
        let sound = report.isSound && state.isEmpty && anchored.isEmpty
        if args.flag("json") {
            print(Output.json(["sound": sound, "checked": report.checked, "verified_through": report.verifiedThrough,
                               "broken_at": report.brokenAt as Any? ?? NSNull(), "problem": report.problem as Any? ?? NSNull(),
                               "state_problems": state.map { ["problem": $0.problem, "subject": $0.subject] },
                               "anchors_checked": anchors?.count ?? 0,
                               "anchor_problems": anchored.map { ["position": $0.anchor.position, "problem": $0.problem] },
                               "seconds": (seconds * 1000).rounded() / 1000]))
        } else {
            if report.isSound {
                print("Chain sound: \(report.checked) events checked from position \(from) through \(report.verifiedThrough) in \(String(format: "%.2f", seconds)) s.")
            } else {
                print("Chain BROKEN at position \(report.brokenAt!): \(report.problem ?? "unknown problem"). Sound through \(report.verifiedThrough).")
            }
            for p in state.prefix(20) { print("State BROKEN: \(p.problem): \(p.subject)") }
            if let anchors { print(anchored.isEmpty ? "Anchors: all \(anchors.count) anchored heads are in the log." : "") }
            for p in anchored.prefix(20) { print("Anchor BROKEN at position \(p.anchor.position): \(p.problem)") }
        }
        return sound ? 0 : 2
    }
}

enum AnchorCommand {
    static let spec = CommandSpec(
        path: "coordctl anchor", summary: "Print the chain's head as an anchor line, to keep outside the database.",
        options: [.init("anchor-key-file", value: "FILE", help: "Sign it with this key (default: COORD_ANCHOR_KEY_FILE).")],
        details: """
            Append it where the database cannot rewrite it (another host, write-once storage), e.g. from cron:
              coordctl anchor >> /srv/anchors/coord.jsonl
            `coordctl verify --anchors FILE` then proves the log still holds every anchored head. coordd writes the
            same lines itself with COORD_ANCHOR_FILE.

            """ + databaseHelp)

    static let command = Command(spec: spec) { args in
        try args.requirePositionals(0...0)
        let key = try key(args.value("anchor-key-file"))
        let session = try Session.open()
        defer { session.close() }
        try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        print(try await store.anchor(key: key).line)
        return 0
    }

    /// Anchor lines of a file (anchor files, or coordd logs: other lines are skipped).
    static func read(_ path: String) throws -> [ChainAnchor] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError("cannot read \(path)", usage: VerifyCommand.spec.usage)
        }
        let anchors = text.split(separator: "\n").compactMap { ChainAnchor(line: String($0)) }
        if anchors.isEmpty { throw UsageError("\(path) holds no anchor line", usage: VerifyCommand.spec.usage) }
        return anchors
    }

    /// The anchor key from `--anchor-key-file` or COORD_ANCHOR_KEY_FILE (its bytes, trailing newline trimmed).
    static func key(_ path: String?) throws -> [UInt8]? {
        guard let path = path ?? ProcessInfo.processInfo.environment["COORD_ANCHOR_KEY_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
            throw UsageError("cannot read the anchor key file \(path)", usage: AnchorCommand.spec.usage)
        }
        var bytes = [UInt8](data)
        while bytes.last == 10 || bytes.last == 13 { bytes.removeLast() }
        return bytes
    }
}

enum DBCommands {
    static let group = Group(name: "db", summary: "Manage the embedded PostgreSQL cluster.", commands: [
        "start": Command(spec: CommandSpec(path: "coordctl db start", summary: "Initialise (first time) and start the embedded cluster.",
                                           details: "Data directory: COORD_DATA_DIR, default .coord/ in the working directory.")) { args in
            try args.requirePositionals(0...0)
            let embedded = try embeddedOnly()
            let started = try embedded.start()
            print(started ? "Started embedded PostgreSQL at \(embedded.location)." : "Embedded PostgreSQL already running at \(embedded.location).")
            return 0
        },
        "stop": Command(spec: CommandSpec(path: "coordctl db stop", summary: "Stop the embedded cluster (fast shutdown).")) { args in
            try args.requirePositionals(0...0)
            let embedded = try embeddedOnly()
            try embedded.stop()
            print("Embedded PostgreSQL stopped.")
            return 0
        },
        "status": Command(spec: CommandSpec(path: "coordctl db status", summary: "Say whether the embedded cluster is running; exit 3 if not.",
                                            options: [.json])) { args in
            try args.requirePositionals(0...0)
            let embedded = try embeddedOnly()
            let running = embedded.isRunning()
            if args.flag("json") {
                print(Output.json(["running": running, "data_dir": "\(embedded.location)"]))
            } else {
                print(running ? "running: \(embedded.location)" : "stopped: \(embedded.location)")
            }
            return running ? 0 : 3
        },
        "url": Command(spec: CommandSpec(path: "coordctl db url", summary: "Print the embedded cluster's libpq connection string.")) { args in
            try args.requirePositionals(0...0)
            print(try embeddedOnly().connectionString)
            return 0
        },
        "psql": Command(spec: CommandSpec(path: "coordctl db psql", summary: "Open psql on the configured database.",
                                          arguments: "[-- PSQL-ARGS...]")) { args in
            let target = DatabaseLocator.resolve()
            let (connection, _) = try DatabaseLocator.connectionString(for: target, startEmbedded: true)
            var argv = ["psql"]
            if !connection.isEmpty { argv.append(connection) }
            argv += args.positionals
            let cargs = argv.map { strdup($0) } + [nil]
            execvp("psql", cargs)
            throw EmbeddedPostgres.LauncherError.commandFailed("psql", errno, "could not run psql")
        },
    ])

    static func embeddedOnly() throws -> EmbeddedPostgres {
        guard case .embedded(let embedded) = DatabaseLocator.resolve() else {
            throw UsageError("DATABASE_URL or PG* variables are set: the embedded cluster is not in use", usage: "Usage: coordctl db <start|stop|status|url|psql>")
        }
        return embedded
    }
}
