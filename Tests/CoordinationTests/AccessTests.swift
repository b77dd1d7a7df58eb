import Coordination
import Events
import Foundation
import Testing
import TestSupport

@Suite("Tokens")
struct AccessTests {
    @Test("a token reaches PostgreSQL only as its digest; an unknown token is remembered, not looked up again")
    func digestsAndNegativeCache() async throws {
        let pool = try await TestDatabase.makePool(sets: Coordination.migrationSets)
        let tokens = TokenStore(pool: pool)
        let (_, token) = try await tokens.create(subject: "logistics-officer", role: .operator)
        let stored = try await pool.withConnection { c in try c.query("SELECT digest FROM api_tokens").decode(0, 0, as: String.self) }
        #expect(stored == TokenStore.digest(token))
        // Logged statements hold the digest, never the token (when the test cluster's log can be read).
        let log = TestDatabase.makeCluster(at: TestDatabase.clusterDirectory).logFile
        let logging = try PostgresConnection(configuration: pool.configuration)
        defer { logging.close() }
        if ProcessInfo.processInfo.environment["COORD_TEST_DATABASE_URL"] == nil, FileManager.default.isReadableFile(atPath: log) {
            try logging.execute(unsafe: "ALTER ROLE CURRENT_USER SET log_statement = 'all'")
            let fresh = TokenStore(pool: PostgresPool(configuration: pool.configuration))
            #expect(try await fresh.authenticate(token)?.subject == "logistics-officer")
            try logging.execute(unsafe: "ALTER ROLE CURRENT_USER RESET log_statement")
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(text.contains(TokenStore.digest(token)), "the lookup was logged")
            #expect(!text.contains(token), "the clear token never reached the server")
        } else {
            print("NOTE: the database log is not readable here; the token-logging check ran without it")
        }
        // An unknown token: looked up once, then answered from memory (the pool is closed: a lookup would throw).
        let unknown = "coord_" + String(repeating: "ab", count: 32)
        #expect(try await tokens.authenticate(unknown) == nil)
        pool.close()
        for _ in 0..<1000 { #expect(try await tokens.authenticate(unknown) == nil) }
        #expect(try await tokens.authenticate("not-a-token") == nil)
    }
}
