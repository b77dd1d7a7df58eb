import Foundation
import Testing
@testable import Events
import TestSupport

@Suite("PostgreSQL client")
struct PostgresClientTests {
    @Test("interpolated values are binds, never query text")
    func bindsNotText() throws {
        let hostile = "x'; DROP TABLE events; --"
        let n = 5
        let sql: SQL = "SELECT \(hostile), \(n), \(nil as String?)"
        #expect(sql.text == "SELECT $1, $2, $3")
        #expect(sql.binds == [hostile, "5", nil])
        let combined: SQL = "SELECT * FROM t WHERE a = \(1)" + " AND b = \(2)"
        #expect(combined.text == "SELECT * FROM t WHERE a = $1 AND b = $2")
        let nested: SQL = "WITH x AS (\(combined)) SELECT \(3)"
        #expect(nested.text == "WITH x AS (SELECT * FROM t WHERE a = $1 AND b = $2) SELECT $3")
        #expect(["a\"b", "c\\d"].postgresText == #"{"a\"b","c\\d"}"#)
    }

    @Test("values round-trip through the server with their types")
    func typedDecoding() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_762_583_400.25)
        let hostile = "O'Brien \"; DROP TABLE x; -- 東京"
        let row = try await pool.withConnection { c in
            try c.query("SELECT \(hostile)::text, \(Int64.max)::bigint, \(true)::bool, \(id)::uuid, \(date)::timestamptz, \(2.5)::float8, NULL::text, '\\x00ff'::bytea")
        }
        #expect(try row.decode(0, 0, as: String.self) == hostile)
        #expect(try row.decode(0, 1, as: Int64.self) == .max)
        #expect(try row.decode(0, 2, as: Bool.self))
        #expect(try row.decode(0, 3, as: UUID.self) == id)
        #expect(try row.decode(0, 4, as: Date.self) == date)
        #expect(try row.decode(0, 5, as: Double.self) == 2.5)
        #expect(try row.decodeOptional(0, 6, as: String.self) == nil)
        #expect(try row.decode(0, 7, as: ByteA.self).bytes == [0, 255])
        #expect(throws: PostgresError.self) { try row.decode(0, 0, as: Int64.self) }
    }

    @Test("a NUL character is refused before it reaches the server; huge text is fine")
    func nulAndHuge() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { c in try c.query("SELECT \("a\u{0}b")::text") }
        }
        let huge = String(repeating: "é", count: 4_000_000)
        let length = try await pool.withConnection { c in try c.query("SELECT length(\(huge))").decode(0, 0, as: Int.self) }
        #expect(length == 4_000_000)
    }

    @Test("server errors carry SQLSTATE and constraint; their description quotes no values")
    func errors() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let secret = "person-secret@example.org"
        do {
            try await pool.withConnection { c in
                try c.execute(unsafe: "CREATE TABLE people (email text CONSTRAINT people_email_key UNIQUE)")
                try c.query("INSERT INTO people VALUES (\(secret))")
                try c.query("INSERT INTO people VALUES (\(secret))")
            }
            Issue.record("expected a unique violation")
        } catch let error as PostgresError {
            #expect(error.sqlState == PostgresError.uniqueViolation)
            #expect(error.constraint == "people_email_key")
            #expect(!error.description.contains(secret))
            #expect(error.description.contains("unique_violation"))
            #expect(error.debugDescription.contains("duplicate key"))
        }
        do {
            try await pool.withConnection { c in try c.query("SELECT \("not-a-uuid")::uuid") }
        } catch let error as PostgresError {
            #expect(error.sqlState == "22P02")
            #expect(!error.description.contains("not-a-uuid"))
        }
    }

    @Test("statements are prepared once per connection and survive a rollback, a redefined table and search_path")
    func preparedStatements() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let c = try TestDatabase.connection(like: pool)
        defer { c.close() }
        func named() throws -> Int64 {
            try c.query("SELECT count(*)::bigint FROM pg_prepared_statements").decode(0, 0, as: Int64.self)
        }
        try c.execute(unsafe: "CREATE TABLE p (k int PRIMARY KEY, v text)")
        // First prepared inside a transaction that rolls back: the statement stays, and still works.
        #expect(throws: PostgresError.self) {
            try c.transaction { c in
                try c.query("INSERT INTO p (k, v) VALUES (\(1), \("a"))")
                throw PostgresError(kind: .server, serverMessage: "abort")
            }
        }
        for k in 1...20 { try c.query("INSERT INTO p (k, v) VALUES (\(k), \("v\(k)"))") }
        let select: SQL = "SELECT v FROM p WHERE k = \(7)"
        #expect(try c.query(select).decode(0, 0, as: String.self) == "v7")
        let afterFirst = try named()
        for _ in 0..<5 { _ = try c.query(select) }
        #expect(try named() == afterFirst, "a repeated text reuses its statement")
        // A table redefined under the statement: at most one call fails, then it is prepared afresh.
        try c.execute(unsafe: "DROP TABLE p; CREATE TABLE p (k int PRIMARY KEY, v int)")
        let insert: SQL = "INSERT INTO p (k, v) VALUES (\(7), \(70))"  // the text prepared above, with v text then
        if (try? c.query(insert)) == nil { try c.query(insert) }
        if (try? c.query(select)) == nil {
            #expect(try c.query(select).decode(0, 0, as: Int64.self) == 70)
        }
        #expect(try c.query(select).decode(0, 0, as: Int64.self) == 70)
        // Same text under another search_path reads the other schema's table.
        try c.execute(unsafe: "CREATE SCHEMA IF NOT EXISTS prep_other; CREATE TABLE prep_other.p (k int, v int); INSERT INTO prep_other.p VALUES (7, 700)")
        defer { _ = try? c.execute(unsafe: "DROP SCHEMA prep_other CASCADE") }
        let schema = try c.query("SELECT current_schema()").decode(0, 0, as: String.self)
        try c.execute(unsafe: "SET search_path = prep_other")
        #expect(try c.query(select).decode(0, 0, as: Int64.self) == 700)
        try c.execute(unsafe: "SET search_path = \(schema)")
        #expect(try c.query(select).decode(0, 0, as: Int64.self) == 70)
        // Unnamed when asked: nothing more is prepared.
        let before = try named()
        c.preparesStatements = false
        #expect(try c.query("SELECT v FROM p WHERE k > \(0)").decode(0, 0, as: Int64.self) == 70)
        c.preparesStatements = true
        #expect(try named() == before)
        #expect(PostgresConnection.isPlannable("  with x AS (SELECT 1) SELECT * FROM x"))
        #expect(!PostgresConnection.isPlannable("COPY p FROM STDIN") && !PostgresConnection.isPlannable("BEGIN"))
    }

    @Test("a transaction rolls back when its body throws, and the connection stays usable")
    func transactions() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 1, migrate: false)
        defer { pool.close() }
        try await pool.withConnection { c in try c.execute(unsafe: "CREATE TABLE tx (n int)") }
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await pool.transaction { c in
                try c.query("INSERT INTO tx VALUES (\(1))")
                throw Boom()
            }
        }
        try await pool.transaction { c in try c.query("INSERT INTO tx VALUES (\(2))") }
        let values = try await pool.withConnection { c in try c.query("SELECT n FROM tx").rows.map { try $0.decode(0, as: Int.self) } }
        #expect(values == [2])
    }

    @Test("COPY FROM STDIN loads rows with escaped fields")
    func copyIn() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let copied = try await pool.withConnection { c in
            try c.execute(unsafe: "CREATE TABLE bulk (n int, note text)")
            return try c.copyIn("COPY bulk (n, note) FROM STDIN", rows: (1...10_000).lazy.map { i in
                "\(i)\t" + CopyText.escape(i == 7 ? "tab\there\nnewline \\ back" : (i == 8 ? nil : "row \(i)"))
            })
        }
        #expect(copied == 10_000)
        let r = try await pool.withConnection { c in
            try c.query("SELECT count(*), (SELECT note FROM bulk WHERE n = 7), (SELECT note IS NULL FROM bulk WHERE n = 8) FROM bulk")
        }
        #expect(try r.decode(0, 0, as: Int.self) == 10_000)
        #expect(try r.decode(0, 1, as: String.self) == "tab\there\nnewline \\ back")
        #expect(try r.decode(0, 2, as: Bool.self))
        // A malformed row fails the whole COPY and leaves the connection usable.
        await #expect(throws: PostgresError.self) {
            try await pool.withConnection { c in try c.copyIn("COPY bulk (n, note) FROM STDIN", rows: ["1\tok", "not-a-number\tx"]) }
        }
        let count = try await pool.withConnection { c in try c.query("SELECT count(*) FROM bulk").decode(0, 0, as: Int.self) }
        #expect(count == 10_000)
    }

    @Test("LISTEN/NOTIFY delivers notifications")
    func listenNotify() async throws {
        let pool = try await TestDatabase.makePool(migrate: false)
        defer { pool.close() }
        let listener = try TestDatabase.connection(like: pool)
        defer { listener.close() }
        try listener.listen("coord_test_channel")
        #expect(try listener.waitForNotifications(timeout: 0.05).isEmpty)
        try await pool.withConnection { c in try c.query("SELECT pg_notify('coord_test_channel', \("hello"))") }
        var got: [PostgresConnection.Notification] = []
        for _ in 0..<20 where got.isEmpty { got = try listener.waitForNotifications(timeout: 0.25) }
        #expect(got == [.init(channel: "coord_test_channel", payload: "hello")])
    }

    @Test("a broken connection is replaced; reads retry transparently")
    func brokenConnectionReplaced() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 2, migrate: false)
        defer { pool.close() }
        let pid = try await pool.withConnection { c in c.backendPID }
        let admin = try TestDatabase.connection(like: pool)
        defer { admin.close() }
        try admin.query("SELECT pg_terminate_backend(\(Int(pid)))")
        try await Task.sleep(nanoseconds: 100_000_000)
        // Without retry, the first use of the dead connection fails with a connection error...
        do {
            try await pool.withConnection { c in try c.query("SELECT 1") }
        } catch let error as PostgresError {
            #expect(error.isConnectionFailure)
        }
        // ...and the pool has dropped it: the next borrower gets a working connection.
        let one = try await pool.withConnection { c in try c.query("SELECT 1").decode(0, 0, as: Int.self) }
        #expect(one == 1)
        let pid2 = try await pool.withConnection { c in c.backendPID }
        try admin.query("SELECT pg_terminate_backend(\(Int(pid2)))")
        try await Task.sleep(nanoseconds: 100_000_000)
        let retried = try await pool.withConnection(retryOnConnectionFailure: true) { c in try c.query("SELECT 2").decode(0, 0, as: Int.self) }
        #expect(retried == 2)
    }

    @Test("an exhausted pool times out instead of queueing forever")
    func poolTimeout() async throws {
        let configuration = try PostgresConfiguration(connectionString: try TestDatabase.connectionString(), poolSize: 1)
        let pool = PostgresPool(configuration: configuration, acquireTimeout: 0.3)
        defer { pool.close() }
        let holder = Task { try await pool.withConnection { c in try c.query("SELECT pg_sleep(1.5)") } }
        try await Task.sleep(nanoseconds: 200_000_000)
        do {
            try await pool.withConnection { c in try c.query("SELECT 1") }
            Issue.record("expected a pool timeout")
        } catch let error as PostgresError {
            #expect(error.kind == .pool)
        }
        _ = try await holder.value
        #expect(pool.usage.inUse == 0)
    }

    @Test("an unreachable server fails fast with a connection error")
    func unreachable() async throws {
        let configuration = try PostgresConfiguration(connectionString: "host=/nonexistent-dir port=5432 dbname=x", poolSize: 1)
        let pool = PostgresPool(configuration: configuration)
        defer { pool.close() }
        let started = Date()
        do {
            try await pool.withConnection { c in try c.query("SELECT 1") }
            Issue.record("expected a connection error")
        } catch let error as PostgresError {
            #expect(error.kind == .connection)
        }
        // Fast: not libpq's connect timeout or a retry loop without end (a loaded CI machine took 5.9 s; 15 s holds).
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(pool.usage.open == 0)
    }

    @Test("what DATABASE_URL sets wins: its read-only options make writes fail, its application_name and connect_timeout are kept (URI and key=value alike)")
    func userSettingsWin() async throws {
        let pool = try await TestDatabase.makePool(poolSize: 1)
        defer { pool.close() }
        try await pool.withConnection { c in try c.query("CREATE TABLE scratch (n int)") }
        let base = try TestDatabase.connectionString()
        let schema = pool.configuration.schema
        // The same server as key=value and as a URI (host as a socket directory, percent-encoded).
        let words = Dictionary(uniqueKeysWithValues: base.split(separator: " ").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1); return (String(kv[0]), String(kv[1]))
        })
        let host = words["host"]!.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let uri = "postgresql://\(words["user"]!)@/\(words["dbname"]!)?host=\(host)&port=\(words["port"]!)"
            + "&options=-c%20default_transaction_read_only%3Don&application_name=field-hub-7&connect_timeout=3"
        let keyValue = base + " options='-c default_transaction_read_only=on' application_name=field-hub-7 connect_timeout=3"
        for connectionString in [uri, keyValue] {
            let c = try PostgresConnection(configuration: try PostgresConfiguration(connectionString: connectionString, schema: schema))
            defer { c.close() }
            #expect(try c.query("SHOW default_transaction_read_only").decode(0, 0, as: String.self) == "on")
            #expect(try c.query("SHOW application_name").decode(0, 0, as: String.self) == "field-hub-7")
            #expect(try c.query("SHOW TimeZone").decode(0, 0, as: String.self) == "UTC", "coord's own settings still apply")
            do {
                try c.query("INSERT INTO scratch VALUES (1)")
                Issue.record("a write went through a read-only DATABASE_URL")
            } catch let error as PostgresError {
                #expect(error.sqlState == "25006", "read_only_sql_transaction")
            }
            let keys = PostgresConnection.parameters(try PostgresConfiguration(connectionString: connectionString), environment: [:]).keys
            #expect(!keys.contains("connect_timeout") && !keys.contains("application_name"), "the user's connect_timeout and name are not overridden")
        }
        // Without them, coord's defaults apply.
        let plain = PostgresConnection.parameters(try PostgresConfiguration(connectionString: base, applicationName: "coord-x"), environment: [:])
        #expect(plain.keys.contains("connect_timeout") && plain.values.contains("coord-x"))
        #expect(!PostgresConnection.parameters(try PostgresConfiguration(connectionString: base), environment: ["PGCONNECT_TIMEOUT": "9"]).keys.contains("connect_timeout"))
    }

    @Test("any libpq variable that says how to connect (PGSSLMODE or PGPASSFILE alone) means libpq's defaults, not the embedded cluster")
    func libpqVariablesChooseTheServer() {
        for variable in ["PGSSLMODE", "PGPASSFILE", "PGHOST", "PGSERVICE", "PGTARGETSESSIONATTRS"] {
            if case .environment = DatabaseLocator.resolve(environment: [variable: "x"]) {} else { Issue.record("\(variable) alone chose another target") }
        }
        if case .url = DatabaseLocator.resolve(environment: ["DATABASE_URL": "postgres://h/db", "PGSSLMODE": "require"]) {} else { Issue.record("DATABASE_URL first") }
        if case .embedded = DatabaseLocator.resolve(environment: ["HOME": "/root"]) {} else { Issue.record("nothing set: the embedded cluster") }
    }
}
