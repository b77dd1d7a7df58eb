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
                  .init("events", help: "The file is `coordctl export events` output: verify its whole hash chain, then restore it with its positions, hashes and recorded times."),
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
                var events: [ExportedEvent] = []
                for (index, line) in all.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    events.append(try ExportedEvent(line: index + 1, text: line))
                }
                let restored = try await store.restore(events) { line in Output.progress("restore: verified through line \(line)/\(all.count)") }
                report.imported = restored.restored
                report.alreadyPresent = restored.alreadyPresent
            } else {
                if let first = all.first(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }), ExportedEvent.looksExported(first) {
                    throw UsageError("\(args.positionals[0]) is an event export (coordctl export events): restore it with "
                                     + "coordctl import --events \(args.positionals[0])", usage: importSpec.usage)
                }
                let importer = CommandImporter(store: store, actor: ProcessInfo.processInfo.environment["COORD_ACTOR"] ?? "coordctl-import")
                let total = all.count
                report = try await importer.run(all, keepGoing: keepGoing) { done in Output.progress("import: line \(done)/\(total)") }
                if report.imported > 0 { try await store.refreshStatistics() }
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

    // MARK: Export and views

    static let exportSpec = CommandSpec(
        path: "coordctl export", summary: "Export events (NDJSON) or a read-model list (csv, hxl, json).",
        arguments: "events|" + Lists.all.map(\.name).filter { $0 != "events" }.joined(separator: "|"),
        options: [.init("after", value: "POSITION", help: "events: start after this position."),
                  .init("format", value: "FORMAT", help: "Lists: csv (default), hxl (CSV with HXL hashtags) or json.")],
        details: databaseHelp)

    static func runExport(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(1...1)
        let what = args.positionals[0]
        guard what == "events" || Lists.all.contains(where: { $0.name == what }) else {
            throw UsageError("export events or one of " + Lists.all.map(\.name).joined(separator: ", "), usage: exportSpec.usage)
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
            guard let spec = Lists.all.first(where: { $0.name == what }) else { return 64 }
            let source = ListSource(store: store)
            var first = true
            if format == "json" { print("[", terminator: "") }
            try await spec.forEachPage(source, try spec.arguments([:])) { table in
                switch format {
                case "json":
                    let rows = table.rows.map(table.jsonObject).joined(separator: ",\n")
                    if !rows.isEmpty { print((first ? "" : ",\n") + rows, terminator: "") }
                case "hxl": print((first ? table.csvHeader(hxl: spec.hxl) : "") + table.csvRows, terminator: "")
                default: print((first ? table.csvHeader(hxl: nil) : "") + table.csvRows, terminator: "")
                }
                first = false
                return true
            }
            if format == "json" { print("]") }
            return 0
        }
    }

    /// A read-model list as a command: each filter of the list an option (`--arriving-within-days 14`), plus
    /// shorthands people type (`--below-minimum`), an aligned table of `columns`, or every column with --json.
    static func view(_ spec: ListSpec, _ path: String, columns: [String], shorthands: [(CommandSpec.Option, String, String?)] = []) -> Command {
        let filterOptions = spec.filters.map { f -> CommandSpec.Option in
            CommandSpec.Option(f.name.replacingOccurrences(of: "_", with: "-"), value: f.kind == .flag ? nil : "VALUE", help: f.help + ".")
        }
        let options = filterOptions + shorthands.map(\.0) + [.json]
        return Command(spec: CommandSpec(path: path, summary: spec.summary + ".", options: options, details: databaseHelp)) { args in
            try args.requirePositionals(0...0)
            var query: [String: String] = [:]
            for f in spec.filters {
                let option = f.name.replacingOccurrences(of: "_", with: "-")
                if f.kind == .flag { if args.flag(option) { query[f.name] = "true" } } else if let v = args.value(option) { query[f.name] = v }
            }
            for (option, filter, value) in shorthands {
                if option.value == nil { if args.flag(option.name) { query[filter] = value ?? "true" } }
                else if let v = args.value(option.name) { query[filter] = v }
            }
            let arguments: ListArguments
            do { arguments = try spec.arguments(query) } catch let error as DomainError {
                throw UsageError(error.description, usage: "Usage: \(path) [options]")
            }
            return try await withStore { store in
                var rows: [[String?]] = []
                var table: ResultTable?
                try await spec.forEachPage(ListSource(store: store), arguments) { page in
                    if args.flag("json") {
                        let objects = page.rows.map(page.jsonObject)
                        print((table == nil ? "[" : ",") + objects.joined(separator: ","), terminator: "")
                    }
                    table = table ?? page
                    rows += page.rows
                    return true
                }
                if args.flag("json") { print(table == nil ? "[]" : "]"); return 0 }
                guard let table else { print("(none)"); return 0 }
                let indexes = columns.compactMap { table.columns.firstIndex(of: $0) }
                print(Output.table(indexes.map { table.columns[$0].replacingOccurrences(of: "_", with: " ") },
                                   rows.map { row in indexes.map { i in table.csvValue(row, i) ?? "-" } }))
                return 0
            }
        }
    }

    static let views: [String: Command] = [
        "stock": view(Lists.stock, "coordctl stock", columns: ["warehouse", "item", "item_name", "on_hand", "in_transit_in", "in_transit_out",
                                                               "minimum", "target", "status"],
                      shorthands: [(.init("below-minimum", help: "Only lines below their minimum (--status below_minimum)."), "status", "below_minimum")]),
        "deployments": view(Lists.deployments, "coordctl deployments",
                            columns: ["id", "person", "response", "profile", "start", "end", "duty_station", "status", "overdue_end"],
                            shorthands: [(.init("arriving-within", value: "DAYS", help: "Same as --arriving-within-days."), "arriving_within_days", nil),
                                         (.init("ending-within", value: "DAYS", help: "Same as --ending-within-days."), "ending_within_days", nil)]),
        "people": view(Lists.people, "coordctl people", columns: ["id", "name", "profiles", "home_country", "available", "conflicts"]),
        "tasks": view(Lists.tasks, "coordctl tasks", columns: ["id", "cluster", "priority", "due", "status", "assignee", "title"]),
        "responses": view(Lists.responses, "coordctl responses", columns: ["id", "name", "country", "hazard", "severity", "phase", "status", "declared_at"]),
        "transfers": view(Lists.transfers, "coordctl transfers", columns: ["id", "from", "to", "item", "quantity", "received", "lost", "status"]),
        "ledger": view(Lists.ledger, "coordctl ledger", columns: ["position", "id", "warehouse", "item", "occurred_at", "movement", "quantity",
                                                                  "balance", "reference", "reversed_by"]),
        "alerts": view(Lists.alerts, "coordctl alerts", columns: ["id", "kind", "subject", "response", "status", "raised_at", "cleared_at", "detail"]),
        "import": Command(spec: importSpec, run: runImport),
        "export": Command(spec: exportSpec, run: runExport),
    ]
}
