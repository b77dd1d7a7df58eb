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
            .init("rounds", value: "R", help: "Rounds the phases are interleaved in (default 5; 1 runs each phase once, in one piece)."),
            .scratchSchema,
            .json,
        ],
        details: """
            Phase 1 (baselines): N writers each run single-row INSERTs (one transaction each) into a scratch table
            shaped like the events table, through the same client and pool: first unnamed (parsed and planned at
            each call), then prepared once per connection.
            Phase 2: N writers each append single events to their own stream with an exact expected-version check,
            through the event store (group commit, hash chain, gapless positions).
            The three phases run interleaved in R rounds of M/R events each, every round in a rotated order, so a
            host whose speed drifts over the run (a shared VM) moves the baselines and the appends alike. The
            table sums the rounds; the per-round ratios (lowest, median, highest) show how much the host moved.
            Build with -c release for meaningful figures. Uses a scratch schema; never touches the real log.

            """ + databaseHelp)

    struct PhaseResult {
        let name: String
        let events: Int
        let seconds: Double
        let latencies: [Double]
        var rate: Double { Double(events) / seconds }
        init(name: String, events: Int, seconds: Double, latencies: [Double]) {
            (self.name, self.events, self.seconds, self.latencies) = (name, events, seconds, latencies)
        }
        /// The rounds of one phase as if run in one piece.
        init(summing rounds: [PhaseResult]) {
            self.init(name: rounds[0].name, events: rounds.map(\.events).reduce(0, +), seconds: rounds.map(\.seconds).reduce(0, +),
                      latencies: rounds.flatMap(\.latencies))
        }
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
        let rounds = try args.int("rounds", default: 5, range: 1...100)
        let perRound = max(1, total / writers / rounds)
        let perWriter = perRound * rounds
        let payload = JSONText(#"{"warehouse":"MNL","item":"HSHETARPW406","quantity":500,"reference":"WB-0042"}"#)
        let metadata = EventMetadata(actor: "bench", correlationID: UUID.random().uuidString, source: "bench")
        let pool = session.pool
        let store = EventStore(pool: pool)
        defer { store.close() }

        // Two baselines: statements parsed and planned at each call (as every figure before the third session
        // of 2026-11-30), and prepared once per connection (as coord's own queries are since).
        func insert(prepared: Bool, round: Int) async throws -> PhaseResult {
            try await phase(prepared ? "raw INSERT, prepared" : "raw INSERT, unnamed", writers: writers, perWriter: perRound) { writer, i in
                let stream = "bench-\(writer)"
                let id = UUID.random()
                let now = Date()
                let version = (prepared ? perWriter : 0) + round * perRound + i + 1
                try await pool.withConnection { c in
                    try c.query("""
                        INSERT INTO bench_raw (stream, version, id, type, data, metadata, occurred_at, recorded_at, hash)
                        VALUES (\(stream), \(version), \(id), 'bench.appended', \(payload)::jsonb, \(JSONText(metadata.json))::jsonb,
                                \(now), clock_timestamp(), sha256(convert_to(\(payload.text), 'UTF8')))
                        """, prepared: prepared)
                }
            }
        }
        func append(round: Int) async throws -> PhaseResult {
            try await phase("event store append", writers: writers, perWriter: perRound) { writer, i in
                let event = EventData(type: "bench.appended", data: payload, metadata: metadata)
                try await store.append([event], to: "bench-\(writer)", expected: .exact(Int64(round * perRound + i)))
            }
        }
        var results: [[PhaseResult]] = [[], [], []]  // unnamed, prepared, append; one per round
        for round in 0..<rounds {
            for k in 0..<3 {
                let which = (round + k) % 3
                let result = which == 2 ? try await append(round: round) : try await insert(prepared: which == 1, round: round)
                results[which].append(result)
            }
        }
        let baseline = PhaseResult(summing: results[0]), preparedBaseline = PhaseResult(summing: results[1])
        let appended = PhaseResult(summing: results[2])
        let roundRatios = (unnamed: (0..<rounds).map { results[2][$0].rate / results[0][$0].rate }.sorted(),
                           prepared: (0..<rounds).map { results[2][$0].rate / results[1][$0].rate }.sorted())
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
                               "ratio_prepared": (preparedRatio * 100).rounded() / 100, "rounds": rounds,
                               "round_ratios": roundRatios.unnamed.map { ($0 * 100).rounded() / 100 },
                               "round_ratios_prepared": roundRatios.prepared.map { ($0 * 100).rounded() / 100 },
                               "batches": stats.batches,
                               "mean_batch": stats.batches == 0 ? 0 : Double(stats.events) / Double(stats.batches),
                               "chain_sound": report.isSound]))
        } else {
            let rows = [baseline, preparedBaseline, appended].map { r in
                [r.name, "\(r.events)", String(format: "%.2f", r.seconds), String(format: "%.0f", r.rate),
                 String(format: "%.2f", r.percentile(0.5)), String(format: "%.2f", r.percentile(0.99))]
            }
            print("coordctl bench append: \(writers) writers, \(perWriter * writers) single-event appends per phase, in \(rounds) interleaved rounds")
            print(Output.table(["phase", "events", "seconds", "events/s", "p50 ms", "p99 ms"], rows))
            print(String(format: "ratio append/baseline: %.2f unnamed, %.2f prepared   (mean batch %.1f events over %d transactions; chain %@)",
                         ratio, preparedRatio, stats.batches == 0 ? 0 : Double(stats.events) / Double(stats.batches), stats.batches,
                         report.isSound ? "verified" : "BROKEN"))
            if rounds > 1 {
                func spread(_ xs: [Double]) -> String { String(format: "%.2f / %.2f / %.2f", xs[0], xs[xs.count / 2], xs[xs.count - 1]) }
                print("per round, lowest / median / highest: \(spread(roundRatios.unnamed)) unnamed, \(spread(roundRatios.prepared)) prepared")
            }
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
