import Coordination
import Events
import Foundation

/// `coordctl bench import`: NDJSON commands through `coordctl import`'s code path, against a COPY of as many
/// rows into a table shaped like `events`, in one run.
enum ImportBench {
    static let spec = CommandSpec(
        path: "coordctl bench import", summary: "Import throughput (commands and events/s) vs COPY of the same events into an events-shaped table.",
        options: [
            .init("commands", value: "N", help: "Commands to import (default 500000)."),
            .scratchSchema,
            .init("keep", help: "Keep the generated file and the scratch schema."),
            .json,
        ],
        details: """
            Generates N commands of a response's mix (stock receipts and dispatches against what is on hand, transfers
            and their receipt, tasks through their lifecycle, deployments of roster members without overlap) after
            the reference data, writes them to a file, then in the same run:
            1. baseline: COPY of N synthetic rows (a stock receipt's data, an import line's metadata, on 100
               streams) into a scratch table with the columns, keys and indexes of `events`;
            2. the import of the file exactly as `coordctl import FILE` runs it, into an empty store, and a
               verification of the hash chain;
            3. baseline: COPY of the very events the import wrote into another such table.
            Each COPY starts after a CHECKPOINT. The ratio is printed against both baselines.
            Build with -c release for meaningful figures.

            """ + databaseHelp)

    static func run(_ args: ParsedArguments) async throws -> Int32 {
        try args.requirePositionals(0...0)
        let count = try args.int("commands", default: 500_000, range: 1_000...5_000_000)
        let session = try await ProjectionBench.scratch(args, usage: spec.usage, poolSize: 4)
        defer { session.close() }
        let schema = session.pool.configuration.schema!
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("coord-bench-import-\(getpid()).ndjson").path
        let lines = generate(count)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        defer { if !args.flag("keep") { try? FileManager.default.removeItem(atPath: path) } }

        // 1. Baseline: COPY into an events-shaped table.
        Output.progress("baseline: COPY \(count) rows")
        let (copied, copySeconds) = try await timedCopy(into: "bench_copy", session) { AnySequence(copyRows(count)) }

        // 2. The import, as `coordctl import FILE` runs it.
        let store = EventStore(pool: session.pool)
        defer { store.close() }
        let importStart = Date()
        let fileLines = try DataCommands.lines(path)
        let report = try await CommandImporter(store: store, actor: "coordctl-import").run(fileLines, keepGoing: false) { done in
            Output.progress("import: line \(done)/\(fileLines.count)")
        }
        let importSeconds = Date().timeIntervalSince(importStart)
        Output.progressDone()
        let events = try await store.headPosition()
        let verified = try await store.verify()

        // 3. Second baseline: COPY of the very rows the import wrote, into an empty table of the same shape.
        //    The synthetic rows fall on 100 streams; the import's on tens of thousands, with larger payloads, and
        //    the unique indexes cost more when inserts spread over them.
        Output.progress("baseline: COPY the import's \(events) events")
        let own = try await session.pool.withConnection { c in try Self.exportedRows(c) }
        let (ownCopied, ownSeconds) = try await timedCopy(into: "bench_copy_events", session) { AnySequence(own) }

        let copyRate = Double(copied) / copySeconds
        let ownRate = Double(ownCopied) / ownSeconds
        let eventRate = Double(events) / importSeconds
        let ratio = eventRate / copyRate
        let ownRatio = eventRate / ownRate
        if args.flag("json") {
            print(Output.json([
                "commands": count, "copy_rows": copied, "copy_seconds": round2(copySeconds), "copy_rows_per_second": copyRate.rounded(),
                "copy_same_events_rows": ownCopied, "copy_same_events_seconds": round2(ownSeconds),
                "copy_same_events_rows_per_second": ownRate.rounded(), "ratio_same_events": round2(ownRatio),
                "imported": report.imported, "failed": report.failures.count, "events": events, "import_seconds": round2(importSeconds),
                "commands_per_second": (Double(report.imported) / importSeconds).rounded(), "events_per_second": eventRate.rounded(),
                "ratio": round2(ratio), "batches": report.batches, "seconds_waiting_for_writes": round2(report.secondsWaitingForWrites), "chain_sound": verified.isSound,
            ]))
        } else {
            print("coordctl bench import: \(count) commands (\(report.imported) imported, \(report.failures.count) refused) -> \(events) events")
            print(Output.table(["phase", "rows/events", "seconds", "per second"], [
                ["COPY synthetic rows into events-shaped table", "\(copied)", String(format: "%.2f", copySeconds), String(format: "%.0f", copyRate)],
                ["COPY the import's own events, same shape", "\(ownCopied)", String(format: "%.2f", ownSeconds), String(format: "%.0f", ownRate)],
                ["coordctl import (events)", "\(events)", String(format: "%.2f", importSeconds), String(format: "%.0f", eventRate)],
                ["coordctl import (commands)", "\(report.imported)", String(format: "%.2f", importSeconds),
                 String(format: "%.0f", Double(report.imported) / importSeconds)],
            ]))
            print(String(format: "ratio import events/s / COPY rows/s: %.2f against the synthetic rows, %.2f against the same events",
                         ratio, ownRatio))
            print(String(format: "(%d transactions, %.2f s waiting for them; chain %@)",
                         report.batches, report.secondsWaitingForWrites, verified.isSound ? "verified" : "BROKEN"))
            for f in report.failures.prefix(5) { printError("line \(f.line): \(f.reason)") }
        }
        if !args.flag("keep") {
            try await session.pool.withConnection { c in try c.execute(unsafe: "DROP SCHEMA IF EXISTS \(schema) CASCADE") }
        }
        return verified.isSound && report.failures.isEmpty ? 0 : 1
    }

    static func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }

    /// Creates `table` with the columns, keys and indexes of `events`, then times one COPY of `rows()` into it
    /// (made lazily, as the COPY sends them).
    static func timedCopy(into table: String, _ session: Session, rows: @escaping @Sendable () -> AnySequence<String>) async throws -> (rows: Int, seconds: Double) {
        try await session.pool.withConnection { c in
            try c.execute(unsafe: """
                CREATE TABLE \(table) (
                    position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, id uuid NOT NULL UNIQUE,
                    type text NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL, occurred_at timestamptz NOT NULL,
                    recorded_at timestamptz NOT NULL, hash bytea NOT NULL,
                    category text GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED, UNIQUE (stream, version));
                CREATE INDEX ON \(table) (type, position);
                CREATE INDEX ON \(table) (category, position);
                CREATE INDEX ON \(table) (recorded_at, position);
                """)
            // Start from clean buffers, so one baseline does not pay for writing out what ran before it (the
            // import's pages); needs superuser or pg_checkpoint, and is skipped without.
            _ = try? c.execute(unsafe: "CHECKPOINT")
            let start = Date()
            let copied = try c.copyIn(SQL(unsafe: "COPY \(table) (position, stream, version, id, type, data, metadata, occurred_at, recorded_at, hash) FROM STDIN"),
                                      rows: rows())
            return (copied, Date().timeIntervalSince(start))
        }
    }

    /// Every stored event as a COPY text line, read 50,000 at a time (jsonb text has no raw tabs or newlines;
    /// its backslashes are doubled for COPY).
    static func exportedRows(_ c: PostgresConnection) throws -> [String] {
        var rows: [String] = []
        var after: Int64 = 0
        while true {
            let r = try c.query("""
                SELECT position, concat_ws(E'\\t', position, stream, version, id, type, replace(data::text, E'\\\\', E'\\\\\\\\'),
                                           replace(metadata::text, E'\\\\', E'\\\\\\\\'), occurred_at, recorded_at, E'\\\\\\\\x' || encode(hash, 'hex'))
                FROM events WHERE position > \(after) ORDER BY position LIMIT 50000
                """)
            if r.count == 0 { return rows }
            for i in 0..<r.count { rows.append(try r.decode(i, 1)) }
            after = try r.decode(r.count - 1, 0)
        }
    }

    /// Rows shaped and sized like the import's events (a stock movement's data, an import line's metadata).
    static func copyRows(_ count: Int) -> some Sequence<String> {
        let recorded = Timestamp.format(Date())
        return (1...count).lazy.map { i -> String in
            let w = i % 50, item = i % 20
            let data = #"{"item": "ITEM\#(item)", "quantity": \#(10 + i % 990), "reference": "GRN-\#(i)", "source": "donation", "warehouse": "W\#(w)"}"#
            let meta = #"{"actor": "coordctl-import", "source": "import", "request_hash": "0123456789abcdef0123456789abcdef", "correlation_id": "import-line-\#(i)", "idempotency_key": "import:\#(i):9c2e4f1a7b3d5e60"}"#
            let fields = [String(i), "stock-W\(w):ITEM\(item)", String((i - 1) / 100 + 1), UUID.random().lowercasedString, "stock.received",
                          data, meta, recorded, recorded, "\\\\x" + String(repeating: "ab", count: 32)]
            return fields.joined(separator: "\t")
        }
    }

    /// A deterministic command mix: reference data first, then operations that are all valid in order.
    static func generate(_ count: Int) -> [String] {
        var rng = SplitMix(seed: 2026)
        var out: [String] = []
        out.reserveCapacity(count)
        let response = "PHL-2026-TC-99"
        let warehouses = (1...50).map { String(format: "W%03d", $0) }
        let items = (1...20).map { String(format: "ITEM%02d", $0) }
        let people = (1...200).map { String(format: "SURGE-%04d", $0) }
        out.append(#"{"command":"response.declare","id":"\#(response)","name":"Benchmark typhoon","country":"PHL","hazard":"typhoon","severity":"orange","declared_at":"2026-11-08T08:30:00Z"}"#)
        for (i, w) in warehouses.enumerated() {
            out.append(#"{"command":"warehouse.register","code":"\#(w)","name":"Warehouse \#(i + 1)","country":"PHL","kind":"field","lat":11.2,"lon":125.0,"pcode":"PH0837"}"#)
        }
        for (i, item) in items.enumerated() {
            out.append(#"{"command":"item.register","code":"\#(item)","name":"Item \#(i + 1)","category":"shelter","unit":"piece"}"#)
        }
        for (i, p) in people.enumerated() {
            out.append(#"{"command":"person.register","id":"\#(p)","name":"Roster member \#(i + 1)","home_country":"PHL","profiles":["SHELTER_NFI"]}"#)
        }
        var onHand: [String: Int] = [:]
        var transfers: [(id: String, quantity: Int)] = []
        var tasks: [(id: String, step: Int)] = []
        var nextStart = [Int](repeating: 0, count: people.count)
        var serial = 0
        while out.count < count {
            serial += 1
            let w = warehouses[rng.next(warehouses.count)], item = items[rng.next(items.count)]
            let key = w + ":" + item
            let r = rng.next(100)
            if r < 30, let have = onHand[key], have >= 10 {
                let q = 1 + rng.next(have / 2)
                onHand[key] = have - q
                out.append(#"{"command":"stock.dispatch","warehouse":"\#(w)","item":"\#(item)","quantity":\#(q),"reference":"WB-\#(serial)","destination":"Evacuation centre \#(rng.next(40))","transport":"truck","response":"\#(response)"}"#)
            } else if r < 34, let have = onHand[key], have >= 10 {
                let to = warehouses[(warehouses.firstIndex(of: w)! + 1 + rng.next(warehouses.count - 1)) % warehouses.count]
                let q = 1 + rng.next(have / 2)
                onHand[key] = have - q
                transfers.append(("TR-\(serial)", q))
                out.append(#"{"command":"stock.transfer","id":"TR-\#(serial)","from":"\#(w)","to":"\#(to)","item":"\#(item)","quantity":\#(q),"reference":"WB-\#(serial)","transport":"truck","response":"\#(response)"}"#)
            } else if r < 38, !transfers.isEmpty {
                let t = transfers.removeFirst()
                out.append(#"{"command":"stock.transfer.receive","id":"\#(t.id)","quantity":\#(t.quantity)}"#)
            } else if r < 50 {
                tasks.append(("TASK-\(serial)", 0))
                out.append(#"{"command":"task.create","id":"TASK-\#(serial)","response":"\#(response)","cluster":"SHL","title":"Distribute shelter kits, site \#(serial)","priority":"normal","due":"2026-12-20","lead_org":"IFRC","pcode":"PH0837"}"#)
            } else if r < 60, !tasks.isEmpty {
                let k = rng.next(min(tasks.count, 50))
                let t = tasks[k]
                let step = ["task.assign", "task.start", "task.complete"][t.step]
                let extra = t.step == 0 ? #","assignee":"SHL cluster coordinator""# : ""
                out.append(#"{"command":"\#(step)","id":"\#(t.id)"\#(extra)}"#)
                if t.step == 2 { tasks.remove(at: k) } else { tasks[k].step += 1 }
            } else if r < 62 {
                let p = rng.next(people.count)
                let start = nextStart[p]
                nextStart[p] += 8
                let day = { (d: Int) in Timestamp.format(Date(timeIntervalSince1970: 1_798_761_600 + Double(d) * 86_400)).prefix(10) }
                out.append(#"{"command":"deployment.request","id":"DEP-\#(serial)","person":"\#(people[p])","response":"\#(response)","profile":"SHELTER_NFI","cluster":"SHL","duty_station":"Tacloban","start":"\#(day(start))","end":"\#(day(start + 6))"}"#)
            } else {
                let q = 100 + rng.next(900)
                onHand[key, default: 0] += q
                out.append(#"{"command":"stock.receive","warehouse":"\#(w)","item":"\#(item)","quantity":\#(q),"reference":"GRN-\#(serial)","source":"donation"}"#)
            }
        }
        return out
    }
}
