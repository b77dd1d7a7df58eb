import Coordination
import Events
import Foundation
import Synchronization

enum BenchCommands {
    static let group = Group(name: "bench", summary: "Benchmarks that print their own baseline from the same run.", commands: [
        "append": Command(spec: appendSpec, run: runAppend),
        "rebuild": Command(spec: ProjectionBench.rebuildSpec, run: ProjectionBench.runRebuild),
        "lag": Command(spec: ProjectionBench.lagSpec, run: ProjectionBench.runLag),
        "http": Command(spec: HTTPBench.spec, run: HTTPBench.run),
        "replay": Command(spec: ReplayBench.spec, run: ReplayBench.run),
        "import": Command(spec: ImportBench.spec, run: ImportBench.run),
    ])

    static let appendSpec = CommandSpec(
        path: "coordctl bench append", summary: "Appends/s with group commit vs raw single-row INSERTs.",
        options: [
            .init("writers", value: "N", help: "Concurrent writers (default 32)."),
            .init("events", value: "M", help: "Events in total per phase (default 20000)."),
            .scratchSchema,
            .json,
        ],
        details: """
            Phase 1 (baselines): N writers each run single-row INSERTs (one transaction each) into a scratch table
            shaped like the events table, through the same client and pool: first unnamed (parsed and planned at
            each call), then prepared once per connection.
            Phase 2: N writers each append single events to their own stream with an exact expected-version check,
            through the event store (group commit, hash chain, gapless positions).
            Build with -c release for meaningful figures. Uses a scratch schema; never touches the real log.

            """ + databaseHelp)

    struct PhaseResult {
        let name: String
        let events: Int
        let seconds: Double
        let latencies: [Double]
        var rate: Double { Double(events) / seconds }
        func percentile(_ p: Double) -> Double {
            let sorted = latencies.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000
        }
    }

    static func runAppend(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let writers = try args.int("writers", default: 32, range: 1...256)
        let total = try args.int("events", default: 20_000, range: 1...10_000_000)
        let session = try await ProjectionBench.scratch(args, usage: appendSpec.usage, poolSize: writers + 2)
        defer { session.close() }
        let schema = session.pool.configuration.schema!
        try await session.pool.withConnection { c in
            try c.execute(unsafe: """
                CREATE TABLE bench_raw (
                    position bigserial PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL UNIQUE,
                    type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, occurred_at timestamptz NOT NULL,
                    recorded_at timestamptz NOT NULL, hash bytea NOT NULL, UNIQUE (stream, version))
                """)
        }
        let perWriter = max(1, total / writers)
        let payload = JSONText(#"{"warehouse":"MNL","item":"HSHETARPW406","quantity":500,"reference":"WB-0042"}"#)
        let metadata = EventMetadata(actor: "bench", correlationID: UUID.random().uuidString, source: "bench")
        let pool = session.pool

        // Two baselines: statements parsed and planned at each call (as every figure before the third session
        // of 2026-11-30), and prepared once per connection (as coord's own queries are since).
        var baselines: [PhaseResult] = []
        for prepared in [false, true] {
            baselines.append(try await phase(prepared ? "raw INSERT, prepared" : "raw INSERT, unnamed", writers: writers, perWriter: perWriter) { writer, i in
                let stream = "bench-\(writer)"
                let id = UUID.random()
                let now = Date()
                try await pool.withConnection { c in
                    try c.query("""
                        INSERT INTO bench_raw (stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
                        VALUES (\(stream), \(prepared ? perWriter + i + 1 : i + 1), \(id), 'bench.appended', \(payload)::jsonb, \(JSONText(metadata.json))::jsonb,
                                \(now), clock_timestamp(), sha256(convert_to(\(payload.text), 'UTF8')))
                        """, prepared: prepared)
                }
            })
        }
        let baseline = baselines[0], preparedBaseline = baselines[1]

        let store = EventStore(pool: pool)
        defer { store.close() }
        let appended = try await phase("event store append", writers: writers, perWriter: perWriter) { writer, i in
            let event = EventData(type: "bench.appended", data: payload, metadata: metadata)
            try await store.append([event], to: "bench-\(writer)", expected: .exact(Int64(i)))
        }
        let report = try await store.verify()
        let stats = store.writerStats
        let ratio = appended.rate / baseline.rate, preparedRatio = appended.rate / preparedBaseline.rate
        if args.flag("json") {
            func dict(_ r: PhaseResult) -> [String: Any] {
                ["events": r.events, "seconds": r.seconds, "events_per_second": r.rate.rounded(),
                 "p50_ms": r.percentile(0.5), "p99_ms": r.percentile(0.99)]
            }
            print(Output.json(["writers": writers, "baseline": dict(baseline), "baseline_prepared": dict(preparedBaseline),
                               "append": dict(appended), "ratio": (ratio * 100).rounded() / 100,
                               "ratio_prepared": (preparedRatio * 100).rounded() / 100, "batches": stats.batches,
                               "mean_batch": stats.batches == 0 ? 0 : Double(stats.events) / Double(stats.batches),
                               "chain_sound": report.isSound]))
        } else {
            let rows = [baseline, preparedBaseline, appended].map { r in
                [r.name, "\(r.events)", String(format: "%.2f", r.seconds), String(format: "%.0f", r.rate),
                 String(format: "%.2f", r.percentile(0.5)), String(format: "%.2f", r.percentile(0.99))]
            }
            print("coordctl bench append: \(writers) writers, \(perWriter * writers) single-event appends per phase")
            print(Output.table(["phase", "events", "seconds", "events/s", "p50 ms", "p99 ms"], rows))
            print(String(format: "ratio append/baseline: %.2f unnamed, %.2f prepared   (mean batch %.1f events over %d transactions; chain %@)",
                         ratio, preparedRatio, stats.batches == 0 ? 0 : Double(stats.events) / Double(stats.batches), stats.batches,
                         report.isSound ? "verified" : "BROKEN"))
        }
        try await session.pool.withConnection { c in try c.execute(unsafe: "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        return report.isSound ? 0 : 1
    }

    /// Runs `writers` concurrent loops of `perWriter` operations and times them.
    static func phase(_ name: String, writers: Int, perWriter: Int,
                      _ operation: @escaping @Sendable (Int, Int) async throws -> Void) async throws -> PhaseResult {
        let started = Date()
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var own: [Double] = []
                    own.reserveCapacity(perWriter)
                    for i in 0..<perWriter {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        try await operation(w, i)
                        own.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    }
                    return own
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        return PhaseResult(name: name, events: writers * perWriter, seconds: Date().timeIntervalSince(started), latencies: latencies)
    }
}
