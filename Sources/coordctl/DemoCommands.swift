import Coordination
import Events
import Foundation

enum DemoCommands {
    static let group = Group(name: "demo", summary: "The shipped demo scenario (Typhoon Halong, Philippines, November 2026).", commands: [
        "load": Command(spec: CommandSpec(
            path: "coordctl demo load", summary: "Load the demo scenario (idempotent: a second load writes nothing).",
            options: [.init("json", help: "Machine-readable summary.")],
            details: databaseHelp)) { args in
            try args.requirePositionals(0...0)
            let session = try Session.open()
            defer { session.close() }
            try await Migrator.requireCurrent(session.pool, Coordination.migrationSets)
            let store = EventStore(pool: session.pool)
            defer { store.close() }
            let started = Date()
            let (run, duplicates) = try await DemoScenario.load(into: CoordinationService(store: store)) { done, total in
                if done % 50 == 0 || done == total { Output.progress("demo: \(done)/\(total) commands") }
            }
            Output.progressDone()
            let seconds = Date().timeIntervalSince(started)
            let head = try await store.headPosition()
            if args.flag("json") {
                print(Output.json(["commands": run, "already_loaded": duplicates, "head_position": head, "seconds": (seconds * 100).rounded() / 100]))
            } else {
                print("Demo scenario: \(run) commands, \(run - duplicates) new, \(duplicates) already loaded; head position \(head) (\(String(format: "%.1f", seconds)) s).")
            }
            return 0
        },
        "print": Command(spec: CommandSpec(path: "coordctl demo print", summary: "Print the demo scenario as NDJSON commands (the import format).")) { args in
            try args.requirePositionals(0...0)
            for line in DemoScenario.lines { print(line.json) }
            return 0
        },
    ])
}
