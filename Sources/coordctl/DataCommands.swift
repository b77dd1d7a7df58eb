import Coordination
import Events
import Foundation

/// Reading the log, importing commands or events, exporting, and views for humans.
enum DataCommands {
    static func withStore(_ body: (EventStore) async throws -> Int32) async throws -> Int32 {
        let session = try Session.open()
        defer { session.close() }
        try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        return try await body(store)
    }

    static let events = Group(name: "events", summary: "Read the event log.", commands: [
        "read": Command(spec: CommandSpec(
            path: "coordctl events read", summary: "Events as NDJSON, in position order; --follow keeps reading live.",
            options: [.init("after", value: "POSITION", help: "Start after this position (default 0)."),
                      .init("stream", value: "STREAM", help: "Only this stream."), .init("type", value: "TYPES", help: "Only these types (comma-separated)."),
                      .init("category", value: "CATEGORIES", help: "Only these stream categories (stock, task, ...)."),
                      .init("limit", value: "N", help: "At most N events (default: all)."), .init("follow", help: "After the history, wait for new events (Ctrl-C to stop).")],
            details: databaseHelp)) { args in
            try args.requirePositionals(0...0)
            let after = Int64(try args.int("after", default: 0, range: 0...Int.max))
            let limit = try args.int("limit", default: Int.max, range: 1...Int.max)
            var filter = EventFilter()
            if let s = args.value("stream") { filter.streams = [s] }
            if let t = args.value("type") { filter.types = t.split(separator: ",").map(String.init) }
            if let c = args.value("category") { filter.categories = c.split(separator: ",").map(String.init) }
            return try await withStore { store in
                var printed = 0
                if args.flag("follow") {
                    for try await e in store.subscribe(after: after, filter: filter) {
                        print(e.json(includingHash: true))
                        fflush(nil)
                        printed += 1
                        if printed >= limit { break }
                    }
                    return 0
                }
                var position = after
                while printed < limit {
                    let batch = try await store.read(after: position, limit: min(5000, limit - printed), filter: filter)
                    if batch.isEmpty { break }
                    for e in batch { print(e.json(includingHash: true)) }
                    printed += batch.count
                    position = batch.last!.position
                }
                return 0
            }
        },
    ])

    static let streams = Group(name: "streams", summary: "Inspect one stream.", commands: [
        "show": Command(spec: CommandSpec(path: "coordctl streams show", summary: "A stream's events (table, or NDJSON with --json).", arguments: "STREAM",
                                          options: [.init("json", help: "NDJSON output.")], details: databaseHelp)) { args in
            try args.requirePositionals(1...1)
            return try await withStore { store in
                let events = try await store.read(stream: args.positionals[0], limit: 100_000)
                if events.isEmpty { printError("Error: stream \(args.positionals[0]) has no events"); return 1 }
                if args.flag("json") { events.forEach { print($0.json(includingHash: true)) }; return 0 }
                print(Output.table(["version", "position", "type", "occurred", "recorded", "actor"], events.map {
                    ["\($0.version)", "\($0.position)", $0.type, Timestamp.format($0.occurredAt), Timestamp.format($0.recordedAt), $0.decodedMetadata.actor ?? ""]
                }))
                return 0
            }
        },
    ])

    // MARK: Import

    static let importSpec = CommandSpec(
        path: "coordctl import", summary: "Import NDJSON commands (or, with --events, an event export).", arguments: "FILE|-",
        options: [.init("continue", help: "Report bad lines and go on (default: stop at the first)."),
                  .init("events", help: "The file is `coordctl export events` output: append the events as they are."),
                  .init("json", help: "Machine-readable summary.")],
        details: """
            Commands: one JSON object per line, {"command": NAME, ...the API body...}, with path parameters as fields and an
            optional "idempotency_key". Lines without a key get one derived from the line's number and content, so
            importing the same file again writes nothing new. A bad line is reported with its number and reason and
            writes nothing.

            """ + databaseHelp)

    static func lines(_ path: String) throws -> [String] {
        let data: Data
        if path == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else {
            guard let d = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read \(path)", usage: importSpec.usage) }
            data = d
        }
        guard let text = String(validating: data, as: UTF8.self) else { throw UsageError("\(path) is not UTF-8 text", usage: importSpec.usage) }
        return text.utf8.split(separator: 10, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 13 ? line.dropLast() : line, as: UTF8.self)
        }
    }

    static func runImport(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(1...1)
        let all = try lines(args.positionals[0])
        let keepGoing = args.flag("continue")
        return try await withStore { store in
            let started = Date()
            var report = ImportReport()
            if args.flag("events") {
                for (index, line) in all.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    do {
                        if try await importEvent(line, store) { report.imported += 1 } else { report.alreadyPresent += 1 }
                    } catch {
                        report.failures.append((index + 1, "\(error)"))
                        if !keepGoing { break }
                    }
                    if (index + 1) % 500 == 0 { Output.progress("import: line \(index + 1)/\(all.count)") }
                }
            } else {
                let importer = CommandImporter(store: store, actor: ProcessInfo.processInfo.environment["COORD_ACTOR"] ?? "coordctl-import")
                let total = all.count
                report = try await importer.run(all, keepGoing: keepGoing) { done in Output.progress("import: line \(done)/\(total)") }
            }
            Output.progressDone()
            for failure in report.failures { printError("line \(failure.line): \(failure.reason)") }
            let seconds = Date().timeIntervalSince(started)
            if args.flag("json") {
                print(Output.json(["imported": report.imported, "already_present": report.alreadyPresent, "failed": report.failures.count,
                                   "events": report.events, "batches": report.batches, "retried_alone": report.linesRetriedAlone,
                                   "seconds": (seconds * 100).rounded() / 100]))
            } else {
                print("Imported \(report.imported), already present \(report.alreadyPresent), failed \(report.failures.count) (\(String(format: "%.1f", seconds)) s).")
            }
            return report.failures.isEmpty ? 0 : 1
        }
    }

    /// Appends one exported event at its stream version; false when it is already stored (a re-run).
    static func importEvent(_ line: String, _ store: EventStore) async throws -> Bool {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              let stream = o["stream"] as? String, let version = o["version"] as? Int, let idText = o["id"] as? String, let id = UUID(uuidString: idText),
              let type = o["type"] as? String, let data = o["data"], let metadata = o["metadata"] as? [String: Any],
              let occurred = (o["occurred_at"] as? String).flatMap(Timestamp.parse) else {
            throw DomainError.invalid("line", "is not an exported event")
        }
        let dataText = String(decoding: try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys]), as: UTF8.self)
        let meta = try JSONDecoder().decode(EventMetadata.self, from: JSONSerialization.data(withJSONObject: metadata))
        let event = EventData(id: id, type: type, data: JSONText(dataText), metadata: meta, occurredAt: occurred)
        let result = try await store.append([event], to: stream, expected: .exact(Int64(version - 1)))
        return !result.duplicate
    }

    // MARK: Export and views

    static let exportSpec = CommandSpec(
        path: "coordctl export", summary: "Export events (NDJSON) or a read model (csv, hxl, json).", arguments: "events|stock|deployments|tasks",
        options: [.init("after", value: "POSITION", help: "events: start after this position."),
                  .init("format", value: "FORMAT", help: "stock|deployments|tasks: csv (default), hxl or json.")],
        details: databaseHelp)

    static func runExport(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(1...1)
        let what = args.positionals[0]
        guard ["events", "stock", "deployments", "tasks"].contains(what) else {
            throw UsageError("export events, stock, deployments or tasks", usage: exportSpec.usage)
        }
        let format = args.value("format") ?? "csv"
        guard ["csv", "hxl", "json"].contains(format) else { throw UsageError("--format must be csv, hxl or json", usage: exportSpec.usage) }
        return try await withStore { store in
            if what == "events" {
                let after = Int64(try args.int("after", default: 0, range: 0...Int.max))
                let start = Date()
                var count = 0
                var last = after
                try await store.forEach(after: after) { event in
                    print(event.json(includingHash: true))
                    count += 1
                    last = event.position
                    if count % 10_000 == 0 { Output.progress("export: \(count) events, through position \(last)") }
                }
                Output.progressDone()
                // Standard output is the export itself: the summary goes to a terminal on stderr, if there is one.
                if Output.stderrIsTTY {
                    let range = count == 0 ? "" : " (positions \(after + 1)...\(last))"
                    printError("Exported \(count) events\(range) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s.")
                }
                return 0
            }
            let q = ReadModelQueries(pool: store.pool)
            let (table, tags): (ResultTable, [String: String]) = switch what {
            case "stock": (try await q.stock(limit: 1_000_000), HXLTags.stock)
            case "deployments": (try await q.deployments(limit: 1_000_000), HXLTags.deployments)
            default: (try await q.tasks(limit: 1_000_000), HXLTags.tasks)
            }
            switch format {
            case "json": print(table.json)
            case "hxl": print(table.csv(hxl: tags), terminator: "")
            default: print(table.csv(hxl: nil), terminator: "")
            }
            return 0
        }
    }

    static func view(_ args: ParsedArguments, _ columns: [String], _ query: (ReadModelQueries) async throws -> ResultTable) async throws -> Int32 {
        try args.requirePositionals(0...0)
        return try await withStore { store in
            let table = try await query(ReadModelQueries(pool: store.pool))
            if args.flag("json") { print(table.json); return 0 }
            let indexes = columns.compactMap { table.columns.firstIndex(of: $0) }
            print(Output.table(indexes.map { table.columns[$0].replacingOccurrences(of: "_", with: " ") },
                               table.rows.map { row in indexes.map { row[$0] ?? "-" } }))
            return 0
        }
    }

    static let views: [String: Command] = [
        "stock": Command(spec: CommandSpec(path: "coordctl stock", summary: "Stock on hand against prepositioning levels.",
                                           options: [.init("warehouse", value: "CODE", help: "One warehouse."),
                                                     .init("below-minimum", help: "Only items below their minimum."), .init("json", help: "JSON output.")])) { args in
            try await view(args, ["warehouse", "item", "item_name", "on_hand", "in_transit_in", "in_transit_out", "minimum", "target", "status"]) {
                try await $0.stock(warehouse: args.value("warehouse"), status: args.flag("below-minimum") ? "below_minimum" : nil, limit: 100_000)
            }
        },
        "deployments": Command(spec: CommandSpec(path: "coordctl deployments", summary: "Deployments, optionally of one response or active on a day.",
                                                 options: [.init("response", value: "ID", help: "One response."),
                                                           .init("active-on", value: "DATE", help: "Deployments covering this day (YYYY-MM-DD)."),
                                                           .init("json", help: "JSON output.")])) { args in
            var day: Day?
            if let text = args.value("active-on") {
                guard let d = Day(text) else { throw UsageError("--active-on must be a date YYYY-MM-DD", usage: "Usage: coordctl deployments [options]") }
                day = d
            }
            return try await view(args, ["id", "person", "response", "profile", "start_date", "end_date", "duty_station", "status"]) {
                try await $0.deployments(response: args.value("response"), activeOn: day, limit: 100_000)
            }
        },
        "tasks": Command(spec: CommandSpec(path: "coordctl tasks", summary: "The cluster task board.",
                                           options: [.init("response", value: "ID", help: "One response."), .init("cluster", value: "CODE", help: "One cluster."),
                                                     .init("overdue", help: "Only unfinished tasks past their due date."), .init("json", help: "JSON output.")])) { args in
            try await view(args, ["id", "cluster", "priority", "due", "status", "assignee", "title"]) {
                try await $0.tasks(response: args.value("response"), cluster: args.value("cluster"), overdue: args.flag("overdue"), limit: 100_000)
            }
        },
        "responses": Command(spec: CommandSpec(path: "coordctl responses", summary: "Responses with severity, phase and status.",
                                               options: [.init("json", help: "JSON output.")])) { args in
            try await view(args, ["id", "name", "country", "hazard", "severity", "phase", "status", "declared_at"]) { try await $0.responses() }
        },
        "import": Command(spec: importSpec, run: runImport),
        "export": Command(spec: exportSpec, run: runExport),
    ]
}
