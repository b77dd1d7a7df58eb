import Coordination
import Events
import Foundation

enum ReplayCommands {
    static let formatOption = CommandSpec.Option("format", value: "FORMAT", help: "text (default), json, csv, hxl, md (review only).")

    static let group = Group(name: "replay", summary: "Replay a response: timeline, state as of a moment, diff, after-action review.", commands: [
        "timeline": Command(spec: CommandSpec(
            path: "coordctl replay timeline", summary: "The response's events in order, one readable line each.", arguments: "RESPONSE",
            options: [.init("from", value: "TIME", help: "Occurred at or after (RFC 3339)."), .init("to", value: "TIME", help: "Occurred at or before."),
                      .init("cluster", value: "CODE", help: "Only this cluster."), .init("warehouse", value: "CODE", help: "Only this warehouse."),
                      .init("person", value: "ID", help: "Only this person's deployments."), .init("type", value: "TYPES", help: "Only these event types (comma-separated)."),
                      formatOption],
            details: databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let usage = "Usage: coordctl replay timeline RESPONSE [options]"
            var filter = Replay.TimelineFilter(cluster: args.value("cluster"), warehouse: args.value("warehouse"), person: args.value("person"),
                                               types: args.value("type").map { Set($0.split(separator: ",").map(String.init)) })
            filter.from = try time(args, "from", usage)
            filter.to = try time(args, "to", usage)
            let format = try oneOf(args.value("format") ?? "text", ["text", "json", "csv", "hxl"], usage)
            return try await withReplay { replay in
                guard let entries = try await replay.timeline(response: args.positionals[0], filter: filter) else { return notFound(args.positionals[0]) }
                switch format {
                case "json": print(ReplayOutput.timelineJSON(entries))
                case "csv", "hxl": print(ReplayOutput.timelineCSV(entries, response: args.positionals[0], hxl: format == "hxl"), terminator: "")
                default: entries.forEach { print(ReplayOutput.line($0)) }
                }
                return 0
            }
        },
        "state": Command(spec: CommandSpec(
            path: "coordctl replay state", summary: "Stock, deployments and tasks as they stood at a moment.", arguments: "RESPONSE",
            options: [.init("as-of", value: "TIME|POSITION", help: "An RFC 3339 time or a log position (default: now)."),
                      .init("basis", value: "BASIS", help: "occurred (what had happened, default) or recorded (what we knew)."), formatOption],
            details: "Computed in memory through the live read models' folds; nothing is written.\n\n" + databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let usage = "Usage: coordctl replay state RESPONSE [--as-of TIME|POSITION] [--basis occurred|recorded]"
            let moment = try ReplayCommands.moment(args.value("as-of"), basis: args.value("basis"), usage)
            let format = try oneOf(args.value("format") ?? "text", ["text", "json"], usage)
            return try await withReplay { replay in
                let state = try await replay.state(response: args.positionals[0], at: moment)
                guard let response = state.response else { return notFound(args.positionals[0]) }
                if format == "json" { print(ReplayOutput.stateJSON(state)); return 0 }
                print("\(response.name): severity \(response.severity), \(response.status); \(state.eventsApplied) events applied\n")
                print(Output.table(["warehouse", "item", "on hand", "in transit in", "in transit out", "minimum", "status"], state.stock.map {
                    [$0.warehouse, $0.item, "\($0.onHand)", "\($0.inTransitIn)", "\($0.inTransitOut)", $0.minimum.map(String.init) ?? "-", $0.status]
                }))
                print("")
                print(Output.table(["deployment", "person", "profile", "start", "end", "status"], state.deployments.map {
                    [$0.id, $0.person, $0.profile, $0.start.description, $0.end.description, $0.status]
                }))
                print("")
                print(Output.table(["task", "cluster", "priority", "due", "status"], state.tasks.map {
                    [$0.id, $0.cluster, $0.priority, $0.due?.description ?? "-", $0.status]
                }))
                return 0
            }
        },
        "diff": Command(spec: CommandSpec(
            path: "coordctl replay diff", summary: "What changed between two moments.", arguments: "RESPONSE",
            options: [.init("from", value: "TIME|POSITION", help: "The earlier moment (required)."), .init("to", value: "TIME|POSITION", help: "The later moment (default: now)."),
                      .init("basis", value: "BASIS", help: "occurred (default) or recorded."), .json],
            details: databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let usage = "Usage: coordctl replay diff RESPONSE --from TIME|POSITION [--to TIME|POSITION]"
            guard let fromText = args.value("from") else { throw UsageError("--from is required", usage: usage) }
            let a = try moment(fromText, basis: args.value("basis"), usage)
            let b = try moment(args.value("to"), basis: args.value("basis"), usage)
            return try await withReplay { replay in
                let d = try await replay.diff(response: args.positionals[0], from: a, to: b)
                if args.flag("json") { print(ReplayOutput.diffJSON(d)); return 0 }
                print(Output.table(["warehouse", "item", "before", "after", "delta"], d.stock.map { [$0.warehouse, $0.item, "\($0.before)", "\($0.after)", "\($0.after - $0.before)"] }))
                print("")
                print(Output.table(["deployment", "was", "now"], d.deployments.map { [$0.id, $0.before ?? "-", $0.after] }))
                print("")
                print(Output.table(["task", "was", "now"], d.tasks.map { [$0.id, $0.before ?? "-", $0.after] }))
                return 0
            }
        },
        "review": Command(spec: CommandSpec(
            path: "coordctl replay review", summary: "After-action review figures (Markdown report with --format md).", arguments: "RESPONSE",
            options: [.init("until", value: "TIME", help: "Review up to this time (default: closure or now)."), formatOption],
            details: databaseHelp)) { args in
            try args.requirePositionals(1...1)
            let usage = "Usage: coordctl replay review RESPONSE [--until TIME] [--format text|json|csv|hxl|md]"
            let until = try time(args, "until", usage) ?? Date()
            let format = try oneOf(args.value("format") ?? "md", ["text", "json", "csv", "hxl", "md"], usage)
            return try await withReplay { replay in
                guard let r = try await replay.review(response: args.positionals[0], until: until) else { return notFound(args.positionals[0]) }
                switch format {
                case "json": print(ReplayOutput.reviewJSON(r))
                case "csv", "hxl": print(ReplayOutput.reviewCSV(r, hxl: format == "hxl"), terminator: "")
                default: print(ReplayOutput.reviewMarkdown(r))
                }
                return 0
            }
        },
    ])

    static func withReplay(_ body: (Replay) async throws -> Int32) async throws -> Int32 {
        try await DataCommands.withStore { try await body(Replay(store: $0)) }
    }

    static func notFound(_ id: String) -> Int32 {
        printError("Error: response \(id) not found")
        return 1
    }

    static func time(_ args: ParsedArguments, _ name: String, _ usage: String) throws -> Date? {
        guard let text = args.value(name) else { return nil }
        guard let t = Timestamp.parse(text) else { throw UsageError("--\(name) must be an RFC 3339 time such as 2026-11-10T00:00:00Z", usage: usage) }
        return t
    }

    static func oneOf(_ v: String, _ allowed: [String], _ usage: String) throws -> String {
        guard allowed.contains(v) else { throw UsageError("--format must be one of " + allowed.joined(separator: ", "), usage: usage) }
        return v
    }

    static func moment(_ text: String?, basis: String?, _ usage: String) throws -> Replay.Moment {
        let b = try basis.map { s -> Replay.Basis in
            guard let b = Replay.Basis(rawValue: s) else { throw UsageError("--basis must be occurred or recorded", usage: usage) }
            return b
        } ?? .occurred
        guard let text else { return .now }
        if let p = Int64(text), p >= 0 { return .position(p) }
        guard let t = Timestamp.parse(text) else { throw UsageError("a moment is an RFC 3339 time or a position", usage: usage) }
        return .time(t, b)
    }
}
