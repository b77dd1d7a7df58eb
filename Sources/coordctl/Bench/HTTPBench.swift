import Coordination
import Events
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `coordctl bench http`: starts coordd on a scratch schema and loads it over real sockets.
enum HTTPBench {
    static let spec = CommandSpec(
        path: "coordctl bench http", summary: "coordd under load: commands/s and latency vs raw INSERT tps; GET p99; many connections; RSS.",
        options: [
            .init("connections", value: "N", help: "Concurrent keep-alive connections for the mixed workload (default 64)."),
            .init("duration", value: "S", help: "Seconds per phase (default 10)."),
            .init("idle", value: "N", help: "Idle keep-alive connections held open during the GET phase (default 500)."),
            .init("streams", value: "N", help: "Live feeds (GET /v1/events/live) held open during the GET phase (default 500)."),
            .init("pool", value: "N", help: "coordd's COORD_DB_POOL_SIZE (default: coordd's own, 4 per core from 4 to 16)."),
            .init("get-rate", value: "N", help: "GET /v1/stock requests per second in the GET phase (default 1000)."),
            .scratchSchema,
            .json,
        ],
        details: """
            Phases, one run:
              1. baselines: N connections of single-row INSERTs (one transaction each) through libpq, first
                 unnamed (parsed and planned at each call), then prepared once per connection
              2. mixed: N keep-alive HTTP connections, each looping POST /v1/stock/receipts, POST /v1/stock/dispatches
                 and GET /v1/stock (2 commands : 1 read)
              2b. receipts only: N connections posting POST /v1/stock/receipts spread over N stock cards (one
                 each), then all to ONE card (a surge drawing on one hub and item): the hot card's rate is given
                 as a ratio of the spread one
              3. GET /v1/stock at a fixed rate while --idle idle connections and --streams live feeds stay open and
                 one more connection posts a receipt every 20 ms; at the end every feed must have delivered every
                 event appended during the phase, once, in position order. Before the GETs start, coordd's CPU
                 over 4 quiet seconds with the feeds and idle connections open: what holding them costs;
                 and, from /metrics, how many of the phase's list answers coordd served again from memory
            coordd's RSS (from /proc) is sampled throughout. coordd is the binary beside this one.

            """ + databaseHelp)

    final class Collector: Sendable {
        let samples = Mutex<[Double]>([])
        let errors = Mutex(0)
        func add(_ s: Double) { samples.withLock { $0.append(s) } }
        func fail() { errors.withLock { $0 += 1 } }
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))] * 1000
    }

    static func run(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let connections = try args.int("connections", default: 64, range: 1...512)
        raiseFileDescriptorLimit()
        let duration = Double(try args.int("duration", default: 10, range: 1...600))
        let idle = try args.int("idle", default: 500, range: 0...5000)
        let feeds = try args.int("streams", default: 500, range: 0...5000)
        let getRate = try args.int("get-rate", default: 1000, range: 1...20_000)
        let session = try await ProjectionBench.scratch(args, usage: spec.usage, poolSize: connections + 4)
        defer { session.close() }
        let schema = args.value("schema") ?? "coord_bench"
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        let service = CoordinationService(store: store)
        let ctx = CommandContext(actor: "bench", source: "bench")
        for w in 0..<connections {
            _ = try await service.execute(RegisterWarehouse(code: "W\(w)", name: "Warehouse \(w)", country: "PHL", kind: "field"), ctx)
        }
        _ = try await service.execute(RegisterItem(code: "ITEM", name: "Tarpaulin", unit: "piece"), ctx)
        let token = try await TokenStore(pool: session.pool).create(subject: "bench", role: .operator).token

        // 1. Baseline.
        try await session.pool.withConnection { c in
            try c.execute(unsafe: "CREATE TABLE bench_raw (id bigserial PRIMARY KEY, stream text NOT NULL, data jsonb NOT NULL, at timestamptz NOT NULL)")
        }
        let pool = session.pool
        // Two baselines: unnamed statements (parsed and planned at each call, as every figure before the third
        // session of 2026-11-30) and statements prepared once per connection (as coordd's own are since).
        var baseRates: [Double] = []
        var baseCPU: [(client: Double, postgres: Double)] = []  // µs of CPU per INSERT
        for prepared in [false, true] {
            // Each measured phase starts after a CHECKPOINT, so none pays for writing out pages another dirtied
            // (and each pays the same full-page images after it).
            try? await pool.withConnection { c in _ = try c.execute(unsafe: "CHECKPOINT") }  // needs pg_checkpoint; skipped without
            let baseline = Collector()
            let cpu0 = await ProcessCPU.sample(pool: pool)
            let baseStart = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<connections {
                    group.addTask {
                        while Date().timeIntervalSince(baseStart) < duration {
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            try await pool.withConnection { c in
                                try c.query("INSERT INTO bench_raw (stream, data, at) VALUES (\("stock-W\(w)"), \(JSONText(#"{"quantity":10}"#))::jsonb, now())",
                                            prepared: prepared)
                            }
                            baseline.add(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                        }
                    }
                }
                try await group.waitForAll()
            }
            baseRates.append(Double(baseline.samples.withLock { $0.count }) / Date().timeIntervalSince(baseStart))
            let cpu1 = await ProcessCPU.sample(pool: pool), n = Double(max(1, baseline.samples.withLock { $0.count }))
            baseCPU.append((client: (cpu1.own - cpu0.own) / n * 1e6, postgres: cpu1.postgres(since: cpu0) / n * 1e6))
        }
        let baseRate = baseRates[0], preparedRate = baseRates[1]

        // Start coordd on the scratch schema.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("coordd").path
        var env = ProcessInfo.processInfo.environment
        env["COORD_SCHEMA"] = schema
        env["COORD_LOG_LEVEL"] = "warning"
        if args.value("pool") != nil { env["COORD_DB_POOL_SIZE"] = String(try args.int("pool", default: 16, range: 1...1000)) }
        if case .embedded = session.target { env["DATABASE_URL"] = pool.configuration.connectionString }
        let port = Loopback.freePort()  // a random port once collided with a client socket's
        let daemon = try Daemon(exe: exe, args: ["--listen", "127.0.0.1:\(port)", "--max-connections", String(idle + feeds + connections + 100)], env: env)
        defer { daemon.stop() }
        try daemon.waitReady(port: port)
        let rss = Collector()
        let sampling = Task { while !Task.isCancelled { rss.add(Double(daemon.rssKiB) / 1024 / 1000); try? await Task.sleep(nanoseconds: 200_000_000) } }

        FileHandle.standardError.write(Data("coordd ready; mixed workload...\n".utf8))
        try? await pool.withConnection { c in _ = try c.execute(unsafe: "CHECKPOINT") }  // needs pg_checkpoint; skipped without
        // coordd's group commits (`/metrics`), for the mean batch of each write phase.
        let writerMetrics = try BenchClient(port: port)
        func writerCounts() -> (batches: Double, events: Double) {
            let text = writerMetrics.text("/metrics") ?? ""
            return (BenchClient.metric("coord_append_batches_total", in: text) ?? 0, BenchClient.metric("coord_events_appended_total", in: text) ?? 0)
        }
        func meanBatch(since earlier: (batches: Double, events: Double)) -> Double {
            let now = writerCounts()
            return (now.events - earlier.events) / max(1, now.batches - earlier.batches)
        }
        // 2. Mixed workload.
        let commands = Collector(), reads = Collector()
        let mixWrites = writerCounts()
        let mixCPU0 = await ProcessCPU.sample(child: daemon.pid, pool: pool)
        let mixStart = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<connections {
                group.addTask {
                    try await runBlocking {
                        let c = try BenchClient(port: port)
                        var n = 0
                        while Date().timeIntervalSince(mixStart) < duration {
                            n += 1
                            let (path, body): (String, String?) = switch n % 3 {
                            case 0: ("/v1/stock?warehouse=W\(w)", nil)
                            case 1: ("/v1/stock/receipts", #"{"warehouse":"W\#(w)","item":"ITEM","quantity":10,"source":"donation"}"#)
                            default: ("/v1/stock/dispatches", #"{"warehouse":"W\#(w)","item":"ITEM","quantity":5,"destination":"site"}"#)
                            }
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            let status = c.request(body == nil ? "GET" : "POST", path, token: token, body: body)
                            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                            if status < 200 || status >= 300 { (body == nil ? reads : commands).fail() }
                            (body == nil ? reads : commands).add(seconds)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let mixSeconds = Date().timeIntervalSince(mixStart)
        let mixBatch = meanBatch(since: mixWrites)
        let commandRate = Double(commands.samples.withLock { $0.count }) / mixSeconds
        // CPU per command, each command's share of the GETs included: where the two cores went.
        let mixCPU1 = await ProcessCPU.sample(child: daemon.pid, pool: pool), perCommand = 1e6 / Double(max(1, commands.samples.withLock { $0.count }))
        let commandCPU = (coordd: (mixCPU1.child - mixCPU0.child) * perCommand, postgres: mixCPU1.postgres(since: mixCPU0) * perCommand,
                          client: (mixCPU1.own - mixCPU0.own) * perCommand)

        // 2b. Receipts spread over one card per connection, then all on one card.
        func receipts(hot: Bool) async throws -> (rate: Double, p50: Double, p99: Double, errors: Int) {
            try? await pool.withConnection { c in _ = try c.execute(unsafe: "CHECKPOINT") }
            let latency = Collector()
            let start = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<connections {
                    group.addTask {
                        try await runBlocking {
                            let c = try BenchClient(port: port)
                            let body = #"{"warehouse":"W\#(hot ? 0 : w)","item":"ITEM","quantity":1,"source":"donation"}"#
                            while Date().timeIntervalSince(start) < duration {
                                let t0 = DispatchTime.now().uptimeNanoseconds
                                let status = c.request("POST", "/v1/stock/receipts", token: token, body: body)
                                if status < 200 || status >= 300 { latency.fail() }
                                latency.add(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let xs = latency.samples.withLock { $0 }
            return (Double(xs.count) / Date().timeIntervalSince(start), percentile(xs, 0.5), percentile(xs, 0.99), latency.errors.withLock { $0 })
        }
        FileHandle.standardError.write(Data("receipts spread over \(connections) cards, then on one card...\n".utf8))
        let spreadWrites = writerCounts()
        let spread = try await receipts(hot: false)
        let spreadBatch = meanBatch(since: spreadWrites)
        let hotWrites = writerCounts()
        let hot = try await receipts(hot: true)
        let hotBatch = meanBatch(since: hotWrites)

        FileHandle.standardError.write(Data("GET phase with \(idle) idle connections and \(feeds) live feeds...\n".utf8))
        // 3. GETs at a fixed rate with many idle connections and live feeds held open, and a trickle of writes.
        let held = try await runBlocking { try (0..<idle).map { _ in SendableBox(try BenchClient(port: port)) } }
        let feedStart: Int64 = try await pool.withConnection { c in try c.query("SELECT position FROM event_head").decode(0, 0) }
        let liveFeeds = try await runBlocking {
            try (0..<feeds).map { _ in
                let c = try BenchClient(port: port)
                return SendableBox((c, c.openStream("/v1/events/live?after=\(feedStart)", token: token)))
            }
        }
        // What holding them costs while nothing happens: coordd's CPU over a few quiet seconds.
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let quiet0 = ProcessCPU.seconds(pid: daemon.pid), quietStart = Date()
        try await Task.sleep(nanoseconds: 4_000_000_000)
        let quietCPU = (ProcessCPU.seconds(pid: daemon.pid) - quiet0) / Date().timeIntervalSince(quietStart) * 1000
        let writer = Task {
            try await runBlocking {
                let c = try BenchClient(port: port)
                let start = Date()
                var n = 0
                while Date().timeIntervalSince(start) < duration {
                    n += 1
                    _ = c.request("POST", "/v1/stock/receipts", token: token, body: #"{"warehouse":"W0","item":"ITEM","quantity":1,"source":"donation"}"#)
                    let due = start.addingTimeInterval(Double(n) * 0.02)
                    if due.timeIntervalSinceNow > 0 { Thread.sleep(forTimeInterval: due.timeIntervalSinceNow) }
                }
            }
        }
        let getLatency = Collector()
        // coordd's list cache before and after the phase (`/metrics` is open on loopback).
        let metricsClient = try BenchClient(port: port)
        func cacheCounts() -> (hits: Double, misses: Double) {
            let text = metricsClient.text("/metrics") ?? ""
            return (BenchClient.metric("coord_list_cache_hits_total", in: text) ?? 0, BenchClient.metric("coord_list_cache_misses_total", in: text) ?? 0)
        }
        let cache0 = cacheCounts()
        let getCPU0 = ProcessCPU.seconds(pid: daemon.pid)
        let getStart = Date()
        let total = Int(Double(getRate) * duration)
        let workers = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<workers {
                group.addTask {
                    try await runBlocking {
                        let c = try BenchClient(port: port)
                        var i = w
                        while i < total {
                            let due = getStart.addingTimeInterval(Double(i) / Double(getRate))
                            let wait = due.timeIntervalSinceNow
                            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            if c.request("GET", "/v1/stock?limit=100", token: token, body: nil) != 200 { getLatency.fail() }
                            getLatency.add(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                            i += workers
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let getSeconds = Date().timeIntervalSince(getStart)
        let getCPU = (ProcessCPU.seconds(pid: daemon.pid) - getCPU0) / getSeconds * 1000
        let cache1 = cacheCounts()
        let (servedAgain, computed) = (cache1.hits - cache0.hits, cache1.misses - cache0.misses)
        try await writer.value
        let feedEnd: Int64 = try await pool.withConnection { c in try c.query("SELECT position FROM event_head").decode(0, 0) }
        let expected = Array((feedStart + 1)...max(feedStart + 1, feedEnd)).filter { $0 <= feedEnd }
        // Every feed: every event of the phase, once, in order (what is not read yet waits in the socket).
        let complete = try await withThrowingTaskGroup(of: Bool.self) { group in
            for feed in liveFeeds {
                group.addTask {
                    try await runBlocking {
                        let (client, status) = feed.value
                        return status == 200 && client.readEventIDs(count: expected.count, timeout: 10) == expected
                    }
                }
            }
            var n = 0
            for try await ok in group where ok { n += 1 }
            return n
        }
        let stillOpen = held.filter { $0.value.request("GET", "/healthz", token: nil, body: nil) == 200 }.count
        sampling.cancel()
        let maxRSS = (rss.samples.withLock { $0 }.max() ?? 0) * 1000
        let c = commands.samples.withLock { $0 }, r = reads.samples.withLock { $0 }, g = getLatency.samples.withLock { $0 }
        let result: [String: Any] = [
            "connections": connections, "baseline_insert_tps": baseRate.rounded(), "baseline_prepared_insert_tps": preparedRate.rounded(),
            "commands_per_second": commandRate.rounded(), "ratio": (commandRate / baseRate * 100).rounded() / 100,
            "ratio_prepared": (commandRate / preparedRate * 100).rounded() / 100, "command_p50_ms": percentile(c, 0.5), "command_p99_ms": percentile(c, 0.99),
            "mixed_get_p99_ms": percentile(r, 0.99), "errors": commands.errors.withLock { $0 } + reads.errors.withLock { $0 },
            "get_rate": (Double(g.count) / getSeconds).rounded(), "get_p50_ms": percentile(g, 0.5), "get_p99_ms": percentile(g, 0.99),
            "get_errors": getLatency.errors.withLock { $0 }, "idle_connections_held": stillOpen, "max_rss_mib": (maxRSS * 10).rounded() / 10,
            "live_feeds": feeds, "live_feeds_complete": complete, "live_feed_events": expected.count,
            "quiet_coordd_cpu_ms_per_second": (quietCPU * 10).rounded() / 10,
            "get_phase_coordd_cpu_ms_per_second": getCPU.rounded(),
            "get_phase_lists_served_again": servedAgain, "get_phase_lists_computed": computed,
            "cpu_us_per_insert_unnamed": ["client": baseCPU[0].client.rounded(), "postgres": baseCPU[0].postgres.rounded()],
            "cpu_us_per_insert_prepared": ["client": baseCPU[1].client.rounded(), "postgres": baseCPU[1].postgres.rounded()],
            "spread_receipts_per_second": spread.rate.rounded(), "spread_receipt_p99_ms": spread.p99,
            "hot_card_receipts_per_second": hot.rate.rounded(), "hot_card_receipt_p50_ms": hot.p50, "hot_card_receipt_p99_ms": hot.p99,
            "hot_card_ratio": (hot.rate / max(1, spread.rate) * 100).rounded() / 100, "receipt_errors": spread.errors + hot.errors,
            "mean_batch_events": ["mixed": (mixBatch * 10).rounded() / 10, "spread": (spreadBatch * 10).rounded() / 10, "hot_card": (hotBatch * 10).rounded() / 10],
            "cpu_us_per_command": ["coordd": commandCPU.coordd.rounded(), "postgres": commandCPU.postgres.rounded(),
                                   "client": commandCPU.client.rounded()],
        ]
        if args.flag("json") {
            print(Output.json(result))
        } else {
            print("coordctl bench http: \(connections) connections, \(Int(duration)) s per phase")
            print(Output.table(["measure", "value"], [
                ["raw single-row INSERT tps (libpq, \(connections) connections, unnamed)", String(format: "%.0f", baseRate)],
                ["raw single-row INSERT tps (libpq, \(connections) connections, prepared)", String(format: "%.0f", preparedRate)],
                ["POST commands/s (receipts + dispatches, mixed with GETs)", String(format: "%.0f", commandRate)],
                ["ratio commands/raw: unnamed, prepared", String(format: "%.2f, %.2f", commandRate / baseRate, commandRate / preparedRate)],
                ["command latency p50 / p99 ms", String(format: "%.1f / %.1f", percentile(c, 0.5), percentile(c, 0.99))],
                ["receipts/s spread over \(connections) cards, p50 / p99 ms", String(format: "%.0f, %.1f / %.1f", spread.rate, spread.p50, spread.p99)],
                ["receipts/s on ONE card, p50 / p99 ms", String(format: "%.0f, %.1f / %.1f", hot.rate, hot.p50, hot.p99)],
                ["ratio hot card / spread", String(format: "%.2f", hot.rate / max(1, spread.rate))],
                ["events per group commit: mixed / spread / one card", String(format: "%.1f / %.1f / %.1f", mixBatch, spreadBatch, hotBatch)],
                ["CPU µs per INSERT, unnamed: client + PostgreSQL", String(format: "%.0f + %.0f", baseCPU[0].client, baseCPU[0].postgres)],
                ["CPU µs per INSERT, prepared: client + PostgreSQL", String(format: "%.0f + %.0f", baseCPU[1].client, baseCPU[1].postgres)],
                ["CPU µs per command (GETs' share in): coordd + PostgreSQL + client",
                 String(format: "%.0f + %.0f + %.0f", commandCPU.coordd, commandCPU.postgres, commandCPU.client)],
                ["GET /v1/stock at \(getRate)/s: achieved, p50 / p99 ms", String(format: "%.0f/s, %.1f / %.1f", Double(g.count) / getSeconds, percentile(g, 0.5), percentile(g, 0.99))],
                ["coordd CPU ms per second in the GET phase (GETs, one receipt per 20 ms to every feed)", String(format: "%.0f", getCPU)],
                ["GET phase: list answers served again / computed (the rest went to the database during a commit)",
                 String(format: "%.0f / %.0f of %d", servedAgain, computed, g.count)],
                ["coordd CPU ms per second, \(feeds) feeds and \(idle) idle connections open, nothing happening", String(format: "%.1f", quietCPU)],
                ["idle connections held open (answering at the end)", "\(stillOpen)/\(idle)"],
                ["live feeds delivering all \(expected.count) events of the phase, in order", "\(complete)/\(feeds)"],
                ["coordd max RSS MiB", String(format: "%.1f", maxRSS)],
                ["non-2xx answers", "\(commands.errors.withLock { $0 } + reads.errors.withLock { $0 } + getLatency.errors.withLock { $0 } + spread.errors + hot.errors)"],
            ]))
        }
        return 0
    }
}
