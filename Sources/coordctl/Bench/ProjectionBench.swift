import Coordination
import Events
import Foundation
import Synchronization

/// `coordctl bench rebuild` and `coordctl bench lag`.
enum ProjectionBench {
    static let rebuildSpec = CommandSpec(
        path: "coordctl bench rebuild", summary: "Full rebuild of all projections (events/s) vs a server-side scan of the log.",
        options: [
            .init("events", value: "N", help: "Domain events to generate (default 1000000)."),
            .init("profile", value: "NAME", help: "mixed (default) or stock-heavy: what the log holds."),
            .scratchSchema,
            .json,
        ],
        details: """
            Generates N realistic domain events into a scratch schema. Profile mixed: stock movements and transfers
            across 50 warehouses and 20 items, tasks, deployments, responses. Profile stock-heavy: after the same
            reference data, only receipts and dispatches at one warehouse over its 20 items (a hub's ledger, as an
            import of it leaves the log). Then times:
              baseline   SELECT count(*), sum(length(data::text)) FROM events (the server reads every event)
              rebuild    every projection rebuilt from scratch, as `coordctl projections rebuild --all` does
                         (one read and decode of the log folded into every projection at once, then each one's
                         COPY into shadow tables, index builds and swap, concurrently);
                         twice: first on the log as the load left it, without planner statistics (the hard case:
                         a log just bulk-loaded, before autovacuum or anything analysed it; autovacuum is held
                         off the scratch log until then), then after VACUUM (ANALYZE), which `coordctl import`
                         and `import --events` now run when they finish.
            Build with -c release.

            """ + databaseHelp)

    static let lagSpec = CommandSpec(
        path: "coordctl bench lag", summary: "Projection lag (append ack to read model) at a steady append rate.",
        options: [
            .init("rate", value: "N", help: "Events per second to append (default 1000)."),
            .init("seconds", value: "S", help: "How long to append (default 10)."),
            .scratchSchema,
            .json,
        ],
        details: "Appends task events at the given rate while a projection runner runs live, and measures for each append the\n"
            + "time until the tasks projection's checkpoint covers it. Prints p50, p99 and max.\n\n" + databaseHelp)

    static func scratch(_ args: ParsedArguments, usage: String, poolSize: Int) async throws -> Session {
        let schema = args.value("schema") ?? "coord_bench"
        guard schema.contains("bench"), PostgresConfiguration.isPlainIdentifier(schema) else {
            throw UsageError("--schema must be a plain identifier containing 'bench' (it is dropped)", usage: usage)
        }
        let session = try Session.open(schema: schema, poolSize: poolSize)
        try await session.pool.withConnection { c in try c.execute(unsafe: "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        _ = try await Migrator.migrate(session.pool, Coordination.migrationSets)
        return session
    }

    // MARK: Rebuild

    static func runRebuild(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let count = try args.int("events", default: 1_000_000, range: 1000...20_000_000)
        guard let profile = SyntheticEvents.Profile(rawValue: args.value("profile") ?? "mixed") else {
            throw UsageError("--profile must be one of: " + SyntheticEvents.Profile.allCases.map(\.rawValue).joined(separator: ", "),
                             usage: rebuildSpec.usage)
        }
        let session = try await scratch(args, usage: rebuildSpec.usage, poolSize: 8)
        defer { session.close() }
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        try await session.pool.withConnection { c in
            try c.execute(unsafe: "ALTER TABLE events SET (autovacuum_enabled = false)")
            try c.execute(unsafe: "ALTER TABLE streams SET (autovacuum_enabled = false)")
        }
        let genStart = Date()
        try await SyntheticEvents.generate(store, count: count, profile: profile) { Output.progress("generated \($0) events") }
        Output.progressDone()
        let generated = try await store.headPosition()
        let genSeconds = Date().timeIntervalSince(genStart)

        // Baseline: the server reads every event's data once.
        let scanStart = Date()
        try await session.pool.withConnection { c in try c.query("SELECT count(*), sum(length(data::text)) FROM events") }
        let scanSeconds = Date().timeIntervalSince(scanStart)

        // Seconds per projection and phase, of the last rebuildAll.
        let phases = PhaseTally()
        func rebuildAll() async throws -> Double {
            let start = Date()
            phases.reset()
            _ = try await ProjectionRunner.rebuild(Coordination.projections, store: store, decode: EventCodec.decode, batchSize: 10_000,
                                                   phases: { name, phase, seconds in phases.add(name, phase, seconds) })
            return Date().timeIntervalSince(start)
        }
        let unanalysedSeconds = try await rebuildAll()
        let unanalysedPhases = phases.seconds
        try await store.refreshStatistics()
        try await session.pool.withConnection { c in
            try c.execute(unsafe: "ALTER TABLE events RESET (autovacuum_enabled)")
            try c.execute(unsafe: "ALTER TABLE streams RESET (autovacuum_enabled)")
        }
        let rebuildSeconds = try await rebuildAll()
        let counts = try await session.pool.withConnection { c -> [String: Int] in
            var out: [String: Int] = [:]
            for table in ["rm_stock", "rm_stock_ledger", "rm_transfers", "rm_tasks", "rm_deployments"] {
                out[table] = try c.query(SQL(unsafe: "SELECT count(*) FROM \(table)")).decode(0, 0)
            }
            return out
        }
        let scanRate = Double(generated) / scanSeconds
        let rebuildRate = Double(generated) / rebuildSeconds
        let unanalysedRate = Double(generated) / unanalysedSeconds
        if args.flag("json") {
            print(Output.json(["events": generated, "profile": profile.rawValue, "generate_seconds": genSeconds, "baseline_scan_seconds": scanSeconds,
                               "baseline_events_per_second": scanRate.rounded(),
                               "rebuild_unanalysed_seconds": unanalysedSeconds, "rebuild_unanalysed_events_per_second": unanalysedRate.rounded(),
                               "rebuild_seconds": rebuildSeconds, "rebuild_events_per_second": rebuildRate.rounded(), "rows": counts,
                               "phase_seconds": phases.seconds.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) },
                               "phase_seconds_unanalysed": unanalysedPhases.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) }]))
        } else {
            print("coordctl bench rebuild: \(generated) events, profile \(profile.rawValue) (generated in \(String(format: "%.1f", genSeconds)) s)")
            print(Output.table(["phase", "seconds", "events/s", "x baseline"], [
                ["baseline: server-side scan of events", String(format: "%.2f", scanSeconds), String(format: "%.0f", scanRate), "1.00"],
                ["rebuild, log just loaded (no statistics)", String(format: "%.2f", unanalysedSeconds), String(format: "%.0f", unanalysedRate),
                 String(format: "%.3f", unanalysedRate / scanRate)],
                ["rebuild, after VACUUM ANALYZE (as import leaves it)", String(format: "%.2f", rebuildSeconds), String(format: "%.0f", rebuildRate),
                 String(format: "%.3f", rebuildRate / scanRate)],
            ]))
            let all = ProjectionRunner.RebuildPhase.allCases
            for (title, byPhase) in [("no statistics", unanalysedPhases), ("after VACUUM ANALYZE", phases.seconds)] {
                print("\(title), seconds by projection and phase (the fold is shared; the other phases run at once across rows):")
                print(Output.table(["projection"] + all.map(\.rawValue), Coordination.projections.map { def in
                    [def.name] + all.map { String(format: "%.2f", byPhase[def.name]?[$0] ?? 0) }
                }))
            }
            print("read-model rows: " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return 0
    }

    // MARK: Lag

    static func runLag(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let rate = try args.int("rate", default: 1000, range: 1...50_000)
        let seconds = try args.int("seconds", default: 10, range: 1...600)
        let session = try await scratch(args, usage: lagSpec.usage, poolSize: 12)
        defer { session.close() }
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        let runner = ProjectionRunner(store: store, definitions: Coordination.projections, batchSize: 5000)
        runner.start()
        try await store.append([try SyntheticEvents.response("R1")], to: Streams.response("R1"))
        // Wait until the runner leads and is caught up.
        while try await runner.status().contains(where: { $0.lagEvents > 0 || !$0.leader }) { try await Task.sleep(nanoseconds: 50_000_000) }

        let acked = Samples()  // (position, ack time)
        let applied = Samples()  // (checkpoint, observed time)
        let stop = Samples()
        // Observer: watches the tasks projection's checkpoint.
        let observer = Task {
            var last: Int64 = 0
            while stop.values.isEmpty {
                let cp = try await session.pool.withConnection { c in
                    try c.query("SELECT position FROM projection_checkpoints WHERE name = 'tasks'").decode(0, 0, as: Int64.self)
                }
                if cp > last {
                    last = cp
                    let now = DispatchTime.now().uptimeNanoseconds
                    applied.add(cp, now)
                }
                try await Task.sleep(nanoseconds: 2_000_000)
            }
        }
        let total = rate * seconds
        let interval = 1.0 / Double(rate)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<total {
                let due = t0 + UInt64(Double(n) * interval * 1e9)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { try await Task.sleep(nanoseconds: due - now) }
                group.addTask {
                    let id = "L\(n)"
                    let event = try SyntheticEvents.task(id, response: "R1")
                    let r = try await store.append([event], to: Streams.task(id), expected: .noStream)
                    let at = DispatchTime.now().uptimeNanoseconds
                    acked.add(r.position, at)
                }
            }
            try await group.waitForAll()
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let head = try await store.headPosition()
        while (applied.values.last?.0 ?? 0) < head { try await Task.sleep(nanoseconds: 5_000_000) }
        stop.add(1, 0)
        try await observer.value
        await runner.stop()
        // Lag of each append: first observation of a checkpoint >= its position, minus its ack time.
        let checkpoints = applied.values
        var lags: [Double] = []
        for (position, ackAt) in acked.values {
            var lo = 0, hi = checkpoints.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if checkpoints[mid].0 >= position { hi = mid } else { lo = mid + 1 } }
            lags.append(max(0, Double(Int64(checkpoints[lo].1) - Int64(ackAt)) / 1e6))
        }
        lags.sort()
        func pct(_ p: Double) -> Double { lags[min(lags.count - 1, Int(Double(lags.count) * p))] }
        let achieved = Double(total) / elapsed
        if args.flag("json") {
            print(Output.json(["target_rate": rate, "achieved_rate": achieved.rounded(), "events": total, "lag_ms_p50": pct(0.5),
                               "lag_ms_p99": pct(0.99), "lag_ms_max": lags.last ?? 0]))
        } else {
            print("coordctl bench lag: \(total) appends at \(String(format: "%.0f", achieved))/s (target \(rate)/s) with the runner live")
            print(String(format: "projection lag (append ack -> tasks checkpoint covers it, 2 ms sampling): p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                         pct(0.5), pct(0.99), lags.last ?? 0))
        }
        return 0
    }
}

/// Timestamped samples shared between tasks.
final class Samples: Sendable {
    private let storage = Mutex<[(Int64, UInt64)]>([])
    func add(_ a: Int64, _ b: UInt64) { storage.withLock { $0.append((a, b)) } }
    var values: [(Int64, UInt64)] { storage.withLock { $0 } }
}

/// `coordctl bench replay`: state as of a time for a response with N events.
enum ReplayBench {
    static let spec = CommandSpec(
        path: "coordctl bench replay", summary: "State as of a moment for a response with N events, vs a server-side scan.",
        options: [
            .init("events", value: "N", help: "Events of the response to generate (default 100000)."),
            .scratchSchema,
            .json,
        ],
        details: "Times Replay.state (fold in memory, as `coordctl replay state` and GET /v1/responses/{id}/state do) on the\n"
            + "occurred and recorded bases, beside the server reading every event once.\n\n" + databaseHelp)

    static func run(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let count = try args.int("events", default: 100_000, range: 1000...10_000_000)
        let session = try await ProjectionBench.scratch(args, usage: spec.usage, poolSize: 4)
        defer { session.close() }
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        try await SyntheticEvents.generate(store, count: count) { Output.progress("generated \($0) events") }
        Output.progressDone()
        let head = try await store.headPosition()
        let scanStart = Date()
        try await session.pool.withConnection { c in try c.query("SELECT count(*), sum(length(data::text)) FROM events") }
        let scan = Date().timeIntervalSince(scanStart)
        let replay = Replay(store: store)
        let t1 = Date()
        let occurred = try await replay.state(response: "R1", at: .time(Date(), .occurred))
        let occurredSeconds = Date().timeIntervalSince(t1)
        let t2 = Date()
        let recorded = try await replay.state(response: "R1", at: .time(Date(), .recorded))
        let recordedSeconds = Date().timeIntervalSince(t2)
        if args.flag("json") {
            print(Output.json(["events": head, "baseline_scan_seconds": scan, "state_occurred_seconds": occurredSeconds,
                               "state_recorded_seconds": recordedSeconds, "deployments": occurred.deployments.count, "tasks": occurred.tasks.count]))
        } else {
            print("coordctl bench replay: response R1 with \(head) events")
            print(Output.table(["measure", "seconds"], [
                ["baseline: server-side scan of events", String(format: "%.3f", scan)],
                ["state as of now, occurred basis (\(occurred.eventsApplied) events folded)", String(format: "%.3f", occurredSeconds)],
                ["state as of now, recorded basis (\(recorded.eventsApplied) events folded)", String(format: "%.3f", recordedSeconds)],
            ]))
        }
        return 0
    }
}

/// Seconds of each rebuild phase, by projection.
final class PhaseTally: Sendable {
    private let state = Mutex<[String: [ProjectionRunner.RebuildPhase: Double]]>([:])
    var seconds: [String: [ProjectionRunner.RebuildPhase: Double]] { state.withLock { $0 } }
    func reset() { state.withLock { $0 = [:] } }
    func add(_ name: String, _ phase: ProjectionRunner.RebuildPhase, _ seconds: Double) {
        state.withLock { $0[name, default: [:]][phase, default: 0] += seconds }
    }
}
