import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// List answers served again from memory (docs/HTTP.md, "List answers served again"): never older than a state a
/// reader has already seen, never one caller's answer for another who may see less or more.
@Suite("List answers served again")
struct ListCacheTests {
    static func onHand(_ r: RawResponse) -> Int? {
        ((r.json["items"] as? [[String: Any]])?.first?["on_hand"] as? NSNumber)?.intValue
    }

    /// A daemon with one warehouse and one item, its read models caught up.
    static func manila() async throws -> TestDaemon {
        let d = try await TestDaemon()
        let ctx = CommandContext(actor: "setup", source: "test")
        _ = try await d.service.execute(RegisterWarehouse(code: "MNL", name: "Manila", country: "PHL", kind: "global_hub"), ctx)
        _ = try await d.service.execute(RegisterItem(code: "KIT", name: "Hygiene kit", unit: "kit"), ctx)
        try await d.settle()
        return d
    }

    static func receive(_ d: TestDaemon, _ warehouse: String, key: String) async throws -> Int {
        let w = try await d.call("POST", "/v1/stock/receipts", token: d.operatorToken,
                                 body: #"{"warehouse":"\#(warehouse)","item":"KIT","quantity":1,"source":"procurement"}"#,
                                 headers: ["Idempotency-Key": key])
        #expect(w.status == 200, "\(w.body)")
        return w.json["position"] as? Int ?? 0
    }

    @Test("a list served again is the same answer until a batch commits into its read model; a reader who saw a write never sees the list without it")
    func followsEveryCommit() async throws {
        let d = try await Self.manila()
        defer { Task { await d.stop() } }
        let cache = try #require(d.app.listCache)
        let path = "/v1/stock?warehouse=MNL&item=KIT"
        for i in 1...25 {
            let before = try await d.call("GET", path, token: d.viewer)
            let again = try await d.call("GET", path, token: d.viewer)
            #expect(before.body == again.body)
            let position = try await Self.receive(d, "MNL", key: "r\(i)")
            // The read that waits for the write sees it; every read after it, without the header, sees it too:
            // the answer kept from before the batch committed is never served once the batch is visible.
            var seen = try await d.call("GET", path, token: d.viewer, headers: ["Coord-Min-Position": String(position)])
            for _ in 0..<3 where seen.status == 503 {
                seen = try await d.call("GET", path, token: d.viewer, headers: ["Coord-Min-Position": String(position)])
            }
            #expect(Self.onHand(seen) == i)
            for _ in 0..<3 {
                let after = try await d.call("GET", path, token: d.viewer)
                #expect(Self.onHand(after) == i, "receipt \(i): a read after one that saw it answered \(after.body)")
            }
        }
        let figures = cache.figures
        #expect(figures.hits >= 25, "the second read of each round was served again: \(figures)")
        let metrics = try await d.call("GET", "/metrics").body
        #expect(metrics.contains("coord_list_cache_hits_total \(cache.figures.hits)"))
    }

    @Test("what the caller may see is part of the answer: names only with personal-data access (each such read recorded), rows only in scope")
    func callersSeeTheirOwnAnswer() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        func names(_ r: RawResponse) -> [String] {
            (r.json["items"] as? [[String: Any]] ?? []).compactMap { $0["person_name"] as? String }
        }
        func reads() async throws -> Int {
            try await d.store.pool.withConnection { c in try c.query("SELECT count(*)::int FROM personal_data_reads").decode(0, 0, as: Int.self) }
        }
        let recorded = try await reads()
        for round in 0..<3 {
            let viewer = try await d.call("GET", "/v1/deployments", token: d.viewer)
            let admin = try await d.call("GET", "/v1/deployments", token: d.admin)
            #expect(viewer.status == 200 && admin.status == 200)
            #expect(names(viewer).isEmpty, "round \(round): a viewer without personal-data access saw names")
            #expect(!names(admin).isEmpty, "round \(round): the admin's answer lost its names")
        }
        #expect(try await reads() == recorded + 3, "every read of names is recorded, none served from memory unrecorded")

        let stock = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer)
        let all = Set((stock.json["items"] as? [[String: Any]] ?? []).compactMap { $0["warehouse"] as? String })
        #expect(all.count > 1, "the demo stocks several warehouses: \(all)")
        let one = try #require(all.sorted().first)
        let scoped = try await TokenStore(pool: d.store.pool).create(subject: "hub", role: .viewer, scope: Scope(warehouses: [one])).token
        for _ in 0..<2 {
            let wide = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer)
            let narrow = try await d.call("GET", "/v1/stock?limit=1000", token: scoped)
            #expect(wide.body == stock.body)
            #expect(Set((narrow.json["items"] as? [[String: Any]] ?? []).compactMap { $0["warehouse"] as? String }) == [one])
        }
    }

    @Test("a list's weak ETag: If-None-Match with it is a 304 while the list's projections are unchanged (an event of another one changes nothing), a 200 with a new tag once a batch commits, and never another caller's")
    func notModified() async throws {
        let d = try await Self.manila()
        defer { Task { await d.stop() } }
        let path = "/v1/stock?warehouse=MNL"
        _ = try await Self.receive(d, "MNL", key: "e1")
        try await d.settle()
        let first = try await d.call("GET", path, token: d.viewer)
        let tag = try #require(first.headers["etag"])
        #expect(tag.hasPrefix("W/\""), "\(tag)")
        let again = try await d.call("GET", path, token: d.viewer, headers: ["If-None-Match": tag])
        #expect(again.status == 304 && again.body.isEmpty && again.headers["etag"] == tag)
        #expect(try await d.call("GET", path, token: d.viewer, headers: ["If-None-Match": "W/\"other\", " + tag]).status == 304)
        #expect(try await d.call("GET", path, token: d.viewer, headers: ["If-None-Match": "W/\"other\""]).status == 200)
        // Another caller, who may see more or less, never takes the viewer's tag for their own answer.
        #expect(try await d.call("GET", path, token: d.admin, headers: ["If-None-Match": tag]).status == 200)
        // An event of another projection (a response declared): the stock list is still the one the client holds.
        let ctx = CommandContext(actor: "setup", source: "test")
        _ = try await d.service.execute(DeclareResponse(id: "PHL-TY-1", name: "Typhoon", country: "PHL", hazard: "typhoon", severity: "orange",
                                                        declaredAt: Date()), ctx)
        try await d.settle()
        #expect(try await d.call("GET", path, token: d.viewer, headers: ["If-None-Match": tag]).status == 304)
        // A receipt: a new answer, with a new tag.
        _ = try await Self.receive(d, "MNL", key: "e2")
        try await d.settle()
        let changed = try await d.call("GET", path, token: d.viewer, headers: ["If-None-Match": tag])
        #expect(changed.status == 200 && Self.onHand(changed) == 2)
        #expect(changed.headers["etag"] != nil && changed.headers["etag"] != tag)
        // Lists that are never kept carry no tag.
        #expect(try await d.call("GET", "/v1/events", token: d.viewer).headers["etag"] == nil)
    }

    @Test("a kept answer's gzip is made once and served again: the same bytes each time, which gzip(1) reads back to the plain answer")
    func gzipKept() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        let plain = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer)
        let first = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer, headers: ["Accept-Encoding": "gzip"])
        let second = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer, headers: ["Accept-Encoding": "gzip"])
        #expect(plain.headers["content-encoding"] == nil && plain.headers["vary"] == "Accept-Encoding")
        #expect(first.headers["content-encoding"] == "gzip" && first.headers["vary"] == "Accept-Encoding")
        #expect(first.bytes == second.bytes && first.bytes.count < plain.bytes.count / 3)
        let gunzipped = try await OutsideTools.gunzip(second.bytes)
        #expect(gunzipped.status == 0 && gunzipped.output == plain.body, "gzip -dc gives back the plain answer")
        let figures = try #require(d.app.listCache).figures
        #expect(figures.hits >= 2 && figures.bytes >= plain.bytes.count + first.bytes.count, "\(figures)")
    }

    @Test("change marks: none while another process leads or while a batch commits; they move with every batch, rebuild and leadership")
    func changeMarks() async throws {
        let d = try await Self.manila()
        defer { Task { await d.stop() } }
        let first = try #require(d.runner.changeMarks(["stock"]))
        #expect(first[0] % 2 == 0)
        #expect(d.runner.changeMarks(["stock", "no-such-projection"]) == nil)
        // A runner that leads nothing (another coordd leads) vouches for nothing.
        let other = ProjectionRunner(store: d.store, definitions: Coordination.projections)
        #expect(other.changeMarks(["stock"]) == nil)

        _ = try await Self.receive(d, "MNL", key: "m1")
        try await d.settle()
        let second = try #require(d.runner.changeMarks(["stock"]))
        #expect(second[0] > first[0])
        let tasks = try #require(d.runner.changeMarks(["tasks"]))

        let before = try await d.call("GET", "/v1/stock", token: d.viewer)
        try await d.runner.requestRebuild("stock")
        var rebuilt: [UInt64]?
        for _ in 0..<200 {
            try await Task.sleep(nanoseconds: 25_000_000)
            if let m = d.runner.changeMarks(["stock"]), m[0] > second[0] { rebuilt = m; break }
        }
        #expect(rebuilt != nil, "a rebuild moves the mark")
        #expect(d.runner.changeMarks(["tasks"]) == tasks, "a stock batch leaves the tasks lists' answers standing")
        try await d.settle()
        let after = try await d.call("GET", "/v1/stock", token: d.viewer)
        #expect(Self.onHand(after) == Self.onHand(before))
    }
}
