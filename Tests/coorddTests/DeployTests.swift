import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// Serialized: the role tests share the cluster's roles.
@Suite("Deployment", .serialized)
struct DeployTests {
    @Test("sd_notify: READY=1 reaches the socket named by NOTIFY_SOCKET; nothing is sent without it")
    func notify() throws {
        let path = "/tmp/coord-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        #expect(SystemdNotify.send("READY=1\nSTATUS=serving", environment: ["NOTIFY_SOCKET": path]))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(n > 0)
        #expect(String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "READY=1\nSTATUS=serving")
        #expect(!SystemdNotify.send("READY=1", environment: [:]))
    }

    @Test("least-privilege roles, set up as OPERATIONS.md says (psql roles.sql, then migrate with grants): the app role appends and projects only through the store's functions; read-only reads")
    func roles() async throws {
        let base = try TestDatabase.connectionString()
        let name = "roles_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        let admin = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: base))
        defer { admin.close() }
        // The database name is generated above, never input.
        try admin.execute(unsafe: "CREATE DATABASE \(name)")
        func url(_ user: String) -> String { base.replacingOccurrences(of: "dbname=coord", with: "dbname=\(name)") + " user=\(user)" }
        // 1. The roles, by psql as a superuser, with the app's password from a variable.
        let psql = try EmbeddedPostgres.binDirectory() + "/psql"
        let argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "app_password=s3cret'quote", "-d", url("coord"),
                    "-f", Self.repo + "/deploy/postgres/roles.sql"]
        let created = try await runBlocking { try Subprocess.run(argv) }
        #expect(created.status == 0, "\(created.output)")
        let superuser = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: url("coord")))
        defer { superuser.close() }
        #expect(try superuser.query("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'coord_app'").decode(0, 0, as: Bool.self),
                "COORD_APP_PASSWORD reached the role")
        // 2. Migrate as the owner; the grants follow the tables.
        let ownerPool = PostgresPool(configuration: try PostgresConfiguration(connectionString: url("coord_owner")))
        defer { ownerPool.close() }
        _ = try await Migrator.migrate(ownerPool, Coordination.migrationSets)
        let appPool = PostgresPool(configuration: try PostgresConfiguration(connectionString: url("coord_app")))
        defer { appPool.close() }
        #expect(try await Migrator.writeAccess(appPool) == .roleCannotWrite, "before the grants the app role cannot write, and /readyz says so")
        try await Migrator.grant(ownerPool, Coordination.migrationSets, app: "coord_app", readonly: "coord_readonly")
        #expect(try await Migrator.writeAccess(appPool) == .writable)

        let store = EventStore(pool: appPool)
        defer { store.close() }
        try await store.append(sampleEvents(3), to: "thing-1")
        let service = CoordinationService(store: store)
        let ctx = CommandContext(actor: "t", source: "test", idempotencyKey: "k-1")
        _ = try await service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx)
        #expect(try await service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx).duplicate)
        // The app builds and keeps its read models.
        let runner = ProjectionRunner(store: store, definitions: Coordination.projections, leaderPoll: 0.2)
        runner.start()
        var caughtUp = false
        for _ in 0..<200 where !caughtUp {
            caughtUp = try await runner.status().allSatisfy { $0.lagEvents == 0 && $0.status == "running" }
            try await Task.sleep(nanoseconds: 25_000_000)
        }
        await runner.stop()
        #expect(caughtUp)
        let app = try PostgresConnection(configuration: appPool.configuration)
        defer { app.close() }
        for statement in ["UPDATE events SET type = 'x' WHERE position = 1", "DELETE FROM events", "TRUNCATE events",
                          "INSERT INTO events SELECT position + 100, stream, version + 100, gen_random_uuid(), type, data, metadata, occurred_at, recorded_at, hash FROM events WHERE position = 1",
                          "UPDATE streams SET version = 1", "UPDATE event_head SET position = position", "DELETE FROM command_receipts",
                          "SELECT coord_append_staged()", "UPDATE api_tokens SET role = 'admin'"] {
            do {
                try app.execute(unsafe: statement)
                Issue.record("\(statement) was allowed")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42501", "\(statement): \(error.debugDescription)")
            }
        }
        let reader = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: url("coord_readonly")))
        defer { reader.close() }
        #expect(try reader.query("SELECT count(*) FROM rm_warehouses").decode(0, 0, as: Int.self) == 1)
        #expect(try reader.query("SELECT count(*) FROM events").decode(0, 0, as: Int.self) == 4)
        #expect(throws: PostgresError.self) { try reader.execute(unsafe: "INSERT INTO streams VALUES ('x', 1, 1, 1, now())") }
        #expect(try await store.verify().isSound)
    }

    @Test("the compose walk-through as far as this machine allows (no Docker engine): its initdb script makes the roles with their passwords, its migrate command grants them, and coordd as the app role answers the first POST 201 and is ready")
    func composeWalkThrough() async throws {
        let base = try TestDatabase.connectionString()
        let name = "compose_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        let admin = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: base))
        defer { admin.close() }
        try admin.execute(unsafe: "CREATE DATABASE \(name)")  // generated above, never input
        func url(_ user: String) -> String { base.replacingOccurrences(of: "dbname=coord", with: "dbname=\(name)") + " user=\(user)" }
        let words = Dictionary(uniqueKeysWithValues: base.split(separator: " ").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1); return (String(kv[0]), String(kv[1]))
        })
        // 1. The db service's first start: the initdb script, as the image runs it (its superuser, its database).
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = try EmbeddedPostgres.binDirectory() + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["PGHOST"] = words["host"]; env["PGPORT"] = words["port"]
        env["POSTGRES_USER"] = words["user"]; env["POSTGRES_DB"] = name
        env["COORD_APP_PASSWORD"] = "app-s3cret"; env["COORD_ROLES_SQL"] = Self.repo + "/deploy/postgres/roles.sql"
        let initdb = [Self.repo + "/deploy/docker/initdb-roles.sh"], initEnv = env
        let created = try await runBlocking { try Subprocess.run(initdb, environment: initEnv) }
        #expect(created.status == 0, "\(created.output)")
        let superuser = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: url(words["user"]!)))
        defer { superuser.close() }
        #expect(try superuser.query("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'coord_app'").decode(0, 0, as: Bool.self),
                "COORD_APP_PASSWORD reached the role")
        // 2. The migrate service, with the arguments compose.yaml gives it, as the owner.
        let compose = try String(contentsOfFile: Self.repo + "/deploy/docker/compose.yaml", encoding: .utf8)
        let migrate = try #require(compose.components(separatedBy: "\n  migrate:").last?.components(separatedBy: "\n  coordd:").first)
        let line = try #require(migrate.split(separator: "\n").first { $0.contains("entrypoint:") })
        let entrypoint = try #require(try JSONSerialization.jsonObject(with: Data(line.split(separator: ":", maxSplits: 1)[1].utf8)) as? [String])
        #expect(entrypoint.first == "/usr/local/bin/coordctl")
        var migrateEnv = ProcessInfo.processInfo.environment
        for key in Array(migrateEnv.keys) where key.hasPrefix("PG") || key == "COORD_SCHEMA" { migrateEnv[key] = nil }
        migrateEnv["DATABASE_URL"] = url("coord_owner")
        let argv = [OutsideTools.binary("coordctl")] + entrypoint.dropFirst(), menv = migrateEnv
        let migrated = try await runBlocking { try Subprocess.run(argv, environment: menv) }
        #expect(migrated.status == 0, "\(migrated.output)")
        // 3. The coordd service as the app role: ready, and the first POST succeeds.
        let ownerPool = PostgresPool(configuration: try PostgresConfiguration(connectionString: url("coord_owner")))
        defer { ownerPool.close() }
        let token = try await TokenStore(pool: ownerPool).create(subject: "ops", role: .operator).token
        let d = try ChildDaemon(schema: nil, port: Loopback.freePort(), databaseURL: url("coord_app"))
        defer { d.kill(SIGKILL) }
        try await runBlocking { try d.waitReady() }
        var ready = 0
        for _ in 0..<100 where ready != 200 {
            ready = try await runBlocking { try d.call("GET", "/readyz", token: nil).status }
            if ready != 200 { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(ready == 200)
        let post = try await runBlocking {
            try d.call("POST", "/v1/warehouses", token: token, body: #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#)
        }
        #expect(post.status == 201, "\(post.body)")
    }

    @Test("coordd and coordctl run under the systemd unit's own syscall filter (libseccomp): migrate, status, serve, write, read, metrics, and a clean exit on SIGTERM")
    func underTheUnitsSeccompFilter() async throws {
        let unit = Self.repo + "/deploy/systemd/coordd.service"
        let runner = Self.repo + "/scripts/seccomp-run.py"
        let probe = try await runBlocking { try Subprocess.run(["/usr/bin/python3", "-c", "import seccomp"]) }
        guard probe.status == 0, OutsideTools.find("systemd-analyze") != nil else {
            OutsideTools.missing("python3-seccomp or systemd-analyze (Debian)")
            return
        }
        let pool = try await TestDatabase.makePool(poolSize: 2, migrate: false)
        defer { pool.close() }
        let schema = pool.configuration.schema!
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = try TestDatabase.connectionString()
        env["COORD_SCHEMA"] = schema
        let environment = env
        // coordctl: the unit's ExecStartPre (migrate), then status.
        for args in [["--version"], ["migrate"], ["status"]] {
            let argv = ["/usr/bin/python3", runner, unit, "--", OutsideTools.binary("coordctl")] + args
            let out = try await runBlocking { try Subprocess.run(argv, environment: environment) }
            #expect(out.status == 0, "coordctl \(args.joined(separator: " ")) under the filter: status \(out.status) \(out.output.suffix(300))")
        }
        let token = try await TokenStore(pool: pool).create(subject: "officer", role: .operator).token
        let admin = try await TokenStore(pool: pool).create(subject: "admin", role: .admin).token
        let key = NSTemporaryDirectory() + "coord-seccomp-key-\(UUID().uuidString)"
        try SecretBox.createKeyFile(key)
        defer { try? FileManager.default.removeItem(atPath: key) }
        let receiver = try Receiver()
        defer { receiver.stop() }
        let d = try ChildDaemon(schema: schema, port: Loopback.freePort(), wrapper: ["/usr/bin/python3", runner, unit, "--"],
                                environment: ["COORD_SECRET_KEY_FILE": key, "COORD_WEBHOOK_ALLOW_PRIVATE": "1"])
        var stopped = false
        defer { if !stopped { d.kill(SIGKILL) } }
        try await runBlocking { try d.waitReady() }
        let created = try await runBlocking {
            try d.call("POST", "/v1/warehouses", token: token, body: #"{"code":"MNL","name":"Manila","country":"PHL","kind":"global_hub"}"#)
        }
        #expect(created.status == 201, "\(created.body)")
        var listed = 0
        for _ in 0..<100 where listed != 200 {
            listed = try await runBlocking { try d.call("GET", "/v1/warehouses", token: token).status }
            if listed != 200 { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(listed == 200)
        #expect(try await runBlocking { try d.call("GET", "/metrics", token: nil).status } == 200)
        // The binary a unit or an image runs carries the console (embedded at build time): nothing to copy beside it.
        #expect(try await runBlocking { try d.call("GET", "/console/", token: nil).status } == 200)
        #expect(try await runBlocking { try d.call("GET", "/console/assets/app.js", token: nil).body }.contains("EventSource"))
        // A webhook delivery (URLSession and libcurl in coordd's process) under the filter too.
        let hook = try await runBlocking { try d.call("POST", "/v1/webhooks", token: admin, body: #"{"url":"\#(receiver.url)"}"#) }
        #expect(hook.status == 201, "\(hook.body)")
        #expect(try await runBlocking { try d.call("POST", "/v1/webhooks/\(hook.json["id"] as? String ?? "")/test", token: admin, body: nil).status } == 202)
        let pings = try await receiver.wait(15) { $0.contains { $0.type == "ping" } }
        #expect(pings.contains { $0.type == "ping" }, "a ping delivered from under the filter")
        let status = try await runBlocking { d.terminate(SIGTERM) }
        stopped = true
        // WIFEXITED: the low 7 bits are the terminating signal (31 is SIGSYS, a call the filter forbids).
        #expect(status & 0x7f == 0, "coordd was killed by signal \(status & 0x7f)")
        #expect((status >> 8) & 0xff == 0, "coordd exited \((status >> 8) & 0xff)")
    }

    static var repo: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.path
    }
}
