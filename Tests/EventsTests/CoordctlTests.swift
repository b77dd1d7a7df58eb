import Foundation
import Testing
@testable import Events
import Coordination
import TestSupport

/// Runs the built `coordctl` binary, as an operator would.
enum Coordctl {
    static var path: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // Swift Testing runs from `<build>/debug/coordPackageTests.xctest`; the executables sit beside it.
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("coordctl").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return dir.appendingPathComponent("coordctl").path
    }

    /// Runs coordctl and waits for it off the cooperative pool (a test waiting on a process must not hold one of
    /// the few threads every other test's tasks need).
    static func run(_ args: [String], env extra: [String: String] = [:]) async throws -> Subprocess.Output {
        var env = ProcessInfo.processInfo.environment
        for key in Array(env.keys) where key.hasPrefix("PG") || key == "DATABASE_URL" || key == "COORD_SCHEMA" { env[key] = nil }
        env["NO_COLOR"] = "1"
        env.merge(extra) { _, new in new }
        let argv = [path] + args, environment = env
        return try await runBlocking { try Subprocess.run(argv, environment: environment) }
    }
}

@Suite("coordctl")
struct CoordctlTests {
    @Test("help at every level exits 0; usage errors exit 64 with Error: and the usage line")
    func helpAndUsage() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Coordctl.path), "build coordctl before the tests")
        let help = try await Coordctl.run(["--help"])
        #expect(help.status == 0)
        for word in ["migrate", "status", "verify", "bench append", "db start"] { #expect(help.output.contains(word)) }
        #expect(try await Coordctl.run(["--version"]).output.hasPrefix("coordctl "))
        let sub = try await Coordctl.run(["verify", "--help"])
        #expect(sub.status == 0)
        #expect(sub.output.contains("--from POSITION"))
        #expect(try await Coordctl.run(["help", "bench"]).status == 0)
        #expect(try await Coordctl.run(["db", "-h"]).status == 0)
        for bad in [["frobnicate"], ["verify", "--bogus"], ["verify", "--from", "abc"], ["verify", "--from"],
                    ["bench"], ["bench", "nope"], ["status", "extra"], []] {
            let out = try await Coordctl.run(bad)
            #expect(out.status == 64, "\(bad)")
            if !bad.isEmpty {
                #expect(out.output.contains("Error: "), "\(bad)")
                #expect(out.output.contains("Usage: "), "\(bad)")
            }
        }
    }

    @Test("bench append interleaves its phases in rounds: every round of every phase ran, and the chain verifies")
    func benchAppendRounds() async throws {
        let schema = "bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let out = try await Coordctl.run(["bench", "append", "--writers", "2", "--events", "1000", "--rounds", "3", "--schema", String(schema), "--json"],
                                         env: ["DATABASE_URL": try TestDatabase.connectionString()])
        #expect(out.status == 0, "\(out.output)")
        let text = try #require(out.output.firstIndex(of: "{").map { out.output[$0...] })  // after any progress lines
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["rounds"] as? Int == 3)
        #expect((json["round_ratios_prepared"] as? [Double])?.count == 3)
        #expect(json["chain_sound"] as? Bool == true)
        // 1000 / 2 writers / 3 rounds = 166 a writer a round: 996 events in each phase, in the log too.
        #expect((json["append"] as? [String: Any])?["events"] as? Int == 996)
        #expect((json["baseline_prepared"] as? [String: Any])?["events"] as? Int == 996)
        let bad = try await Coordctl.run(["bench", "append", "--rounds", "0"], env: ["DATABASE_URL": try TestDatabase.connectionString()])
        #expect(bad.status == 64)
    }

    @Test("migrate, status and verify against DATABASE_URL; verify exits 2 on a tampered log")
    func migrateStatusVerify() async throws {
        let schema = "cli_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let env = ["DATABASE_URL": try TestDatabase.connectionString(), "COORD_SCHEMA": String(schema)]
        let migrated = try await Coordctl.run(["migrate"], env: env)
        #expect(migrated.status == 0, "\(migrated.output)")
        #expect(migrated.output.contains("Applied events v1"))
        #expect(try await Coordctl.run(["migrate"], env: env).output.contains("Schema is current"))

        let pool = PostgresPool(configuration: try PostgresConfiguration(connectionString: env["DATABASE_URL"]!, schema: String(schema)))
        defer { pool.close() }
        let store = EventStore(pool: pool)
        defer { store.close() }
        for i in 0..<4 { try await store.append(sampleEvents(5), to: "cli-\(i)") }

        let status = try await Coordctl.run(["status", "--json"], env: env)
        #expect(status.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
        #expect(json?["head_position"] as? Int == 20)
        #expect(json?["streams"] as? Int == 4)
        #expect((json?["chain"] as? [String: Any])?["sound"] as? Bool == true)

        let sound = try await Coordctl.run(["verify"], env: env)
        #expect(sound.status == 0)
        #expect(sound.output.contains("20 events checked"))

        let admin = try PostgresConnection(configuration: pool.configuration)
        defer { admin.close() }
        try admin.execute(unsafe: "SET session_replication_role = replica")
        try admin.execute(unsafe: #"UPDATE events SET data = '{"n": -1}' WHERE position = 13"#)
        let broken = try await Coordctl.run(["verify"], env: env)
        #expect(broken.status == 2)
        #expect(broken.output.contains("BROKEN at position 13"))
        #expect(try await Coordctl.run(["verify", "--from", "14"], env: env).status == 0)
        #expect(try await Coordctl.run(["status"], env: env).status == 2)
    }

    @Test("completion (bash, zsh) and the man page come from the same specs as --help; -V prints the version")
    func shellIntegration() async throws {
        #expect(try await Coordctl.run(["-V"]).output.hasPrefix("coordctl "))
        let bash = try await Coordctl.run(["completion", "bash"])
        #expect(bash.status == 0)
        let file = NSTemporaryDirectory() + "coordctl-completion-\(UUID().uuidString).bash"
        try bash.output.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        func complete(_ words: [String]) async throws -> [String] {
            let script = "source '\(file)'; COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " "))); COMP_CWORD=\(words.count - 1); _coordctl; printf '%s\\n' \"${COMPREPLY[@]}\""
            let out = try await runBlocking { try Subprocess.run(["/bin/bash", "-c", script]) }
            return out.output.split(separator: "\n").map(String.init)
        }
        #expect(try await complete(["coordctl", "mi"]) == ["migrate"])
        #expect(try await complete(["coordctl", "db", "st"]).sorted() == ["start", "status", "stop"])
        #expect(try await complete(["coordctl", "verify", "--anch"]).sorted() == ["--anchor-key-file", "--anchors"])
        #expect(try await complete(["coordctl", "tokens", "create", "--ro"]) == ["--role"])
        let zsh = try await Coordctl.run(["completion", "zsh"])
        #expect(zsh.status == 0 && zsh.output.hasPrefix("#compdef coordctl") && zsh.output.contains("'db start'"))
        #expect(try await Coordctl.run(["completion", "fish"]).status == 64)
        let man = try await Coordctl.run(["man"])
        #expect(man.status == 0 && man.output.hasPrefix(".TH COORDCTL 1"))
        for path in ["coordctl migrate", "coordctl db start", "coordctl tokens create"] { #expect(man.output.contains(".SS \(path.replacingOccurrences(of: "-", with: "\\-"))")) }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            let manFile = NSTemporaryDirectory() + "coordctl-\(UUID().uuidString).1"
            try man.output.write(toFile: manFile, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: manFile) }
            let lint = try await runBlocking { try Subprocess.run(["/usr/bin/groff", "-man", "-Tutf8", "-ww", "-z", manFile]) }
            #expect(lint.status == 0 && lint.output.isEmpty, "groff: \(lint.output)")
        }
    }

    @Test("an unreachable DATABASE_URL fails with exit 1 and a clear message, without a password")
    func unreachable() async throws {
        let out = try await Coordctl.run(["status"], env: ["DATABASE_URL": "postgres://coord:hunter2@127.0.0.1:1/coord?connect_timeout=2"])
        #expect(out.status == 1)
        #expect(out.output.contains("Error: database connection failed"))
        #expect(!out.output.contains("hunter2"))
    }
}

@Suite("coordctl import and export")
struct CoordctlImportTests {
    @Test("progress lines use escape codes on a terminal, never with TERM=dumb or NO_COLOR")
    func dumbTerminal() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { return }
        var env = ProcessInfo.processInfo.environment
        for key in Array(env.keys) where key.hasPrefix("PG") || key == "NO_COLOR" { env[key] = nil }
        env.merge(try await freshSchema()) { _, new in new }
        let base = env
        func onTerminal(_ term: String) async throws -> String {
            // script(1) gives coordctl a pseudo-terminal for stdout and stderr.
            var e = base
            e["TERM"] = term
            let argv = ["/usr/bin/script", "-qec", Coordctl.path + " demo load", "/dev/null"], environment = e
            return try await runBlocking { try Subprocess.run(argv, environment: environment) }.output
        }
        #expect(try await onTerminal("xterm").contains("\u{1B}["), "a real terminal gets the progress line")
        let dumb = try await onTerminal("dumb")
        #expect(!dumb.contains("\u{1B}"), "TERM=dumb: no escape codes")
        #expect(dumb.contains("Demo scenario:"), "\(dumb.suffix(200))")
    }


    func freshSchema() async throws -> [String: String] {
        let schema = "cli_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let env = ["DATABASE_URL": try TestDatabase.connectionString(), "COORD_SCHEMA": String(schema)]
        #expect(try await Coordctl.run(["migrate"], env: env).status == 0)
        return env
    }

    func write(_ lines: [String]) throws -> String {
        let path = "/tmp/coord-import-\(UUID().uuidString).ndjson"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("people erase on a log written before redaction existed: verify exits 0, no table holds the data, the erasure is in the log")
    func eraseOldLog() async throws {
        // A schema at events v5 (before redaction) with the person's events written by the service, as coord did then.
        let pool = try await TestDatabase.makePool(migrate: false)
        let before = MigrationSet(component: "events", migrations: Array(EventStoreSchema.migrations.migrations.prefix(5)))
        _ = try await Migrator.migrate(pool, [before])
        let service = CoordinationService(store: EventStore(pool: pool))
        let ctx = CommandContext(actor: "officer-7", source: "test")
        _ = try await service.execute(name: "person.register", json: Data(#"{"id":"P-7","name":"Siosaia Tupou","email":"s.tupou@example.org","profiles":["LOGISTICS"]}"#.utf8), ctx)
        _ = try await service.execute(name: "person.unavailability", json: Data(#"{"id":"P-7","from":"2027-02-01","to":"2027-02-03","reason":"jury service"}"#.utf8), ctx)
        _ = try await service.execute(name: "person.register", json: Data(#"{"id":"P-8","name":"Keep Me","profiles":["LOGISTICS"]}"#.utf8), ctx)
        let env = ["DATABASE_URL": try TestDatabase.connectionString(), "COORD_SCHEMA": pool.configuration.schema!]
        #expect(try await Coordctl.run(["migrate"], env: env).status == 0)
        #expect(try await Coordctl.run(["people", "erase", "P-7"], env: env).status == 64, "--reason is required")
        #expect(try await Coordctl.run(["people", "erase", "P-404", "--reason", "x"], env: env).status == 1)
        let erased = try await Coordctl.run(["people", "erase", "P-7", "--reason", "request 2026-41", "--actor", "dpo", "--full", "--json"], env: env)
        #expect(erased.status == 0, "\(erased.output)")
        #expect(erased.output.contains("\"redacted_events\" : 2") || erased.output.contains("\"redacted_events\":2"), "\(erased.output)")
        let verify = try await Coordctl.run(["verify"], env: env)
        #expect(verify.status == 0, "\(verify.output)")
        let counts: [Int] = try await pool.withConnection { c in
            try ["Siosaia", "s.tupou", "jury service", "Keep Me"].map { v in
                try c.query("SELECT count(*)::int FROM events WHERE data::text LIKE '%' || \(v) || '%'").decode(0, 0)
            }
        }
        #expect(counts == [0, 0, 0, 1], "\(counts)")
        let stream = try await Coordctl.run(["streams", "show", "person-P-7"], env: env)
        #expect(stream.output.contains("person.erased") && stream.output.contains("dpo"), "\(stream.output)")
        // An export taken after the erasure restores, and verifies, without the data.
        let exported = try await Coordctl.run(["export", "events"], env: env).output
        #expect(!exported.contains("Siosaia") && exported.contains("[erased]"))
        let file = try write(exported.split(separator: "\n").map(String.init))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let target = try await freshSchema()
        let restored = try await Coordctl.run(["import", "--events", file], env: target)
        #expect(restored.status == 0, "\(restored.output)")
        #expect(try await Coordctl.run(["verify"], env: target).status == 0)
        // A changed redacted event is caught like any other change.
        try await pool.withConnection { c in
            try c.query("SET session_replication_role = replica")
            try c.query("UPDATE events SET data = jsonb_set(data, '{name}', '\"Siosaia Tupou\"') WHERE stream = 'person-P-7' AND version = 1")
            try c.query("SET session_replication_role = origin")
        }
        #expect(try await Coordctl.run(["verify"], env: env).status == 2)
    }

    @Test("a bad line in the middle: reported with its number, nothing from it written; --continue goes past it; a re-run writes nothing")
    func importBadLine() async throws {
        let env = try await freshSchema()
        let file = try write([
            #"{"command":"warehouse.register","code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#,
            #"{"command":"item.register","code":"HSHETARPW406","name":"Tarpaulin","unit":"piece"}"#,
            #"{"command":"stock.receive","warehouse":"MNL","item":"HSHETARPW406","quantity":"lots","source":"donation"}"#,
            #"{"command":"stock.receive","warehouse":"MNL","item":"HSHETARPW406","quantity":100,"source":"donation"}"#,
        ])
        defer { try? FileManager.default.removeItem(atPath: file) }
        let stopped = try await Coordctl.run(["import", file], env: env)
        #expect(stopped.status == 1)
        #expect(stopped.output.contains("line 3: "))
        #expect(stopped.output.contains("quantity"))
        #expect(stopped.output.contains("Imported 2, already present 0, failed 1"))
        let resumed = try await Coordctl.run(["import", "--continue", file], env: env)
        #expect(resumed.status == 1)
        #expect(resumed.output.contains("Imported 1, already present 2, failed 1"))
        let again = try await Coordctl.run(["import", "--continue", "--json", file], env: env)
        #expect(again.output.contains("\"imported\" : 0"))
        let events = try await Coordctl.run(["events", "read"], env: env).output.split(separator: "\n")
        #expect(events.count == 3, "two registrations and one receipt; nothing from line 3")
    }

    @Test("an import leaves the log analysed, and a rebuild its new tables: the next reads are planned for the rows they now hold")
    func importAnalyses() async throws {
        let env = try await freshSchema()
        let schema = env["COORD_SCHEMA"]!
        let file = try write([
            #"{"command":"warehouse.register","code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#,
            #"{"command":"item.register","code":"HSHETARPW406","name":"Tarpaulin","unit":"piece"}"#,
        ] + (1...300).map { #"{"command":"stock.receive","warehouse":"MNL","item":"HSHETARPW406","quantity":\#($0),"source":"donation"}"# })
        defer { try? FileManager.default.removeItem(atPath: file) }
        let statistics = { (table: String) async throws -> Int in
            let sql = "SELECT count(*) FROM pg_stats WHERE schemaname = '\(schema)' AND tablename = '\(table)'"
            let out = try await Coordctl.run(["db", "psql", "--", "-tAc", sql], env: env)
            return Int(out.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        #expect(try await statistics("events") == 0, "a fresh log has no statistics")
        #expect(try await Coordctl.run(["import", file], env: env).status == 0)
        #expect(try await statistics("events") > 0, "the import analysed the log")
        #expect(try await Coordctl.run(["projections", "rebuild", "--all"], env: env).status == 0)
        #expect(try await statistics("rm_stock_ledger") > 0, "the rebuilt table was analysed before it was swapped in")
    }

    @Test("tokens create --personal-data and --expires: a viewer never has personal-data access; a bad duration is a usage error; list shows both")
    func tokenOptions() async throws {
        let env = try await freshSchema()
        let viewer = try await Coordctl.run(["tokens", "create", "--role", "viewer", "--subject", "donor", "--personal-data"], env: env)
        #expect(viewer.status == 64 && viewer.output.contains("never"), "\(viewer.output)")
        let bad = try await Coordctl.run(["tokens", "create", "--role", "operator", "--subject", "x", "--expires", "soon"], env: env)
        #expect(bad.status == 64 && bad.output.contains("--expires"))
        let made = try await Coordctl.run(["tokens", "create", "--role", "operator", "--subject", "surge-desk", "--personal-data", "--expires", "30d"], env: env)
        #expect(made.status == 0 && made.output.contains("coord_"), "\(made.output)")
        let list = try await Coordctl.run(["tokens", "list", "--json"], env: env)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]])
        let row = try #require(rows.first { $0["subject"] as? String == "surge-desk" })
        #expect(row["personal_data"] as? Bool == true)
        let expires = try #require((row["expires_at"] as? String).flatMap(Timestamp.parse))
        #expect(abs(expires.timeIntervalSinceNow - 30 * 86_400) < 600)
        // Scopes: repeatable, checked, never on an admin token; listed.
        let scoped = try await Coordctl.run(["tokens", "create", "--role", "operator", "--subject", "manila-desk", "--country", "PHL",
                                             "--warehouse", "KTM", "--warehouse=DAC", "--response", "PHL-2026-TC-01"], env: env)
        #expect(scoped.status == 0, "\(scoped.output)")
        let admin = try await Coordctl.run(["tokens", "create", "--role", "admin", "--subject", "a", "--country", "PHL"], env: env)
        #expect(admin.status == 64 && admin.output.contains("unscoped"), "\(admin.output)")
        let unknown = try await Coordctl.run(["tokens", "create", "--role", "viewer", "--subject", "a", "--country", "XYZ"], env: env)
        #expect(unknown.status == 64 && unknown.output.contains("country"), "\(unknown.output)")
        let table = try await Coordctl.run(["tokens", "list"], env: env)
        #expect(table.output.contains("countries PHL; responses PHL-2026-TC-01; warehouses DAC,KTM"), "\(table.output)")
        let json = try JSONSerialization.jsonObject(with: Data(try await Coordctl.run(["tokens", "list", "--json"], env: env).output.utf8)) as? [[String: Any]]
        let scope = json?.first { $0["subject"] as? String == "manila-desk" }?["scope"] as? [String: [String]]
        #expect(scope?["warehouses"] == ["DAC", "KTM"] && scope?["countries"] == ["PHL"])
    }

    @Test("webhooks add|list|test|deliveries|remove and alerts: the secret printed once, private addresses refused unless allowed, no key no subscription")
    func webhooksAndAlerts() async throws {
        var env = try await freshSchema()
        let noKey = try await Coordctl.run(["webhooks", "add", "https://8.8.8.8/hooks"], env: env)
        #expect(noKey.status == 1 && noKey.output.contains("COORD_SECRET_KEY_FILE"), "\(noKey.output)")
        let key = NSTemporaryDirectory() + "coord-key-\(UUID().uuidString)"
        try SecretBox.createKeyFile(key)
        defer { try? FileManager.default.removeItem(atPath: key) }
        env["COORD_SECRET_KEY_FILE"] = key
        let refused = try await Coordctl.run(["webhooks", "add", "http://127.0.0.1:9/hooks"], env: env)
        #expect(refused.status == 1 && refused.output.contains("private"), "\(refused.output)")
        let added = try await Coordctl.run(["webhooks", "add", "http://127.0.0.1:9/hooks", "--allow-private", "--kinds", "stock.below_minimum",
                                            "--description", "duty phone", "--json"], env: env)
        #expect(added.status == 0, "\(added.output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(added.output.utf8)) as? [String: Any])
        let id = try #require(object["id"] as? String)
        #expect((object["secret"] as? String)?.hasPrefix("whsec_") == true)
        let list = try await Coordctl.run(["webhooks", "list"], env: env)
        #expect(list.status == 0 && list.output.contains(id) && list.output.contains("stock.below_minimum") && !list.output.contains("whsec_"))
        let ping = try await Coordctl.run(["webhooks", "test", id], env: env)
        #expect(ping.status == 0 && ping.output.hasPrefix("msg_"))
        let deliveries = try await Coordctl.run(["webhooks", "deliveries", id], env: env)
        #expect(deliveries.status == 0 && deliveries.output.contains("ping") && deliveries.output.contains("pending"))
        #expect(try await Coordctl.run(["webhooks", "test", "wh_nope"], env: env).status == 1)
        #expect(try await Coordctl.run(["webhooks", "remove", id], env: env).status == 0)
        #expect(try await Coordctl.run(["webhooks", "remove", id], env: env).status == 1)
        // Alerts: levels over an empty card raise stock.below_minimum once the projections have run.
        let file = try write([
            #"{"command":"warehouse.register","code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#,
            #"{"command":"item.register","code":"HSHETARPW406","name":"Tarpaulin","unit":"piece"}"#,
            #"{"command":"levels.set","code":"MNL","item":"HSHETARPW406","minimum":100,"target":200}"#,
        ])
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try await Coordctl.run(["import", file], env: env).status == 0)
        #expect(try await Coordctl.run(["projections", "rebuild", "alerts"], env: env).status == 0)
        let alerts = try await Coordctl.run(["alerts"], env: env)
        #expect(alerts.status == 0 && alerts.output.contains("stock.below_minimum") && alerts.output.contains("MNL:HSHETARPW406"), "\(alerts.output)")
        let cleared = try await Coordctl.run(["alerts", "--status", "cleared"], env: env)
        #expect(cleared.status == 0 && !cleared.output.contains("MNL:HSHETARPW406"))
    }

    @Test("export events, restore them into an empty store: the same events, hashes and recorded times at the same positions; a tampered file is refused naming its line")
    func exportImport() async throws {
        let source = try await freshSchema()
        let commands = try write(DemoScenario.lines.prefix(60).map(\.json))
        defer { try? FileManager.default.removeItem(atPath: commands) }
        #expect(try await Coordctl.run(["import", commands], env: source).status == 0)
        let exported = try await Coordctl.run(["export", "events"], env: source).output
        let file = try write(exported.split(separator: "\n").map(String.init))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let target = try await freshSchema()
        let imported = try await Coordctl.run(["import", "--events", file], env: target)
        #expect(imported.status == 0, "\(imported.output)")
        #expect(try await Coordctl.run(["verify"], env: target).status == 0)
        func content(_ env: [String: String]) async throws -> [String] {
            try await Coordctl.run(["events", "read"], env: env).output.split(separator: "\n").map { line in
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return "\(o["position"]!)|\(o["stream"]!)|\(o["version"]!)|\(o["id"]!)|\(o["type"]!)|\(o["occurred_at"]!)|\(o["recorded_at"]!)|\(o["hash"]!)|"
                    + String(decoding: try JSONSerialization.data(withJSONObject: o["data"]!, options: .sortedKeys), as: UTF8.self)
            }
        }
        let (restored, original) = (try await content(target), try await content(source))
        #expect(restored == original, "positions, hashes and recorded times kept")
        // A re-run writes nothing.
        #expect(try await Coordctl.run(["import", "--events", file], env: target).output.contains("Imported 0"))

        // One prepositioning target raised to 9000: the chain breaks at that line, and nothing is written.
        var lines = exported.split(separator: "\n").map(String.init)
        let index = try #require(lines.lastIndex { $0.contains("\"stock.levels_set\"") })
        lines[index] = lines[index].replacing(#/"target": ?\d+/#, with: "\"target\": 9000")
        let tampered = try write(lines)
        defer { try? FileManager.default.removeItem(atPath: tampered) }
        let empty = try await freshSchema()
        let refused = try await Coordctl.run(["import", "--events", tampered], env: empty)
        #expect(refused.status == 1)
        #expect(refused.output.contains("line \(index + 1)") && refused.output.contains("nothing was written"), "\(refused.output)")
        #expect(try await Coordctl.run(["events", "read"], env: empty).output.isEmpty)
        // The file of another log does not continue this one.
        let other = try await freshSchema()
        #expect(try await Coordctl.run(["import", try write(Array(DemoScenario.lines.prefix(3).map(\.json)))], env: other).status == 0)
        #expect(try await Coordctl.run(["import", "--events", file], env: other).output.contains("does not continue this log"))
        // An event export given as commands: coordctl says what to run.
        let misused = try await Coordctl.run(["import", file], env: freshSchema())
        #expect(misused.status == 64 && misused.output.contains("coordctl import --events"), "\(misused.output)")
    }
}
