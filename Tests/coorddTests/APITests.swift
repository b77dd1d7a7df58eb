import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

@Suite("HTTP API")
struct APITests {
    func seeded() async throws -> TestDaemon {
        let d = try await TestDaemon()
        for body in [#"{"code":"MNL","name":"Manila hub","country":"PHL","kind":"global_hub"}"#,
                     #"{"code":"TAC","name":"Tacloban","country":"PHL","kind":"field","pcode":"PH0837"}"#] {
            #expect(try await d.call("POST", "/v1/warehouses", token: d.operatorToken, body: body).status == 201)
        }
        #expect(try await d.call("POST", "/v1/items", token: d.operatorToken, body: #"{"code":"HSHETARPW406","name":"Tarpaulin","unit":"piece"}"#).status == 201)
        #expect(try await d.call("POST", "/v1/responses", token: d.operatorToken,
                           body: #"{"id":"PHL-2026-TC-01","name":"Typhoon","country":"PHL","hazard":"typhoon","severity":"orange","declared_at":"2026-11-08T06:30:00Z"}"#).status == 201)
        // Until the projections have built their tables, reads answer 503 (tested elsewhere); these tests start after.
        try await d.settle()
        return d
    }

    @Test("auth: no token 401, unknown token 401, viewer writing 403, operator writing 201 with Location; the subject is the actor")
    func auth() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        #expect(try await d.call("GET", "/v1/stock").status == 401)
        #expect(try await d.call("GET", "/v1/stock", token: "coord_" + String(repeating: "0", count: 64)).status == 401)
        #expect(try await d.call("GET", "/v1/stock", token: d.viewer).status == 200)
        let body = #"{"id":"T-1","response":"PHL-2026-TC-01","cluster":"WSH","title":"Latrines","priority":"high"}"#
        let denied = try await d.call("POST", "/v1/tasks", token: d.viewer, body: body)
        #expect(denied.status == 403)
        #expect(denied.headers["content-type"]?.hasPrefix("application/problem+json") == true)
        let created = try await d.call("POST", "/v1/tasks", token: d.operatorToken, body: body)
        #expect(created.status == 201)
        #expect(created.headers["location"] == "/v1/tasks/T-1")
        #expect(created.json["position"] as? Int != nil)
        #expect(created.json["version"] as? Int == 1)
        let event = try await d.store.read(stream: "task-T-1")[0]
        #expect(event.decodedMetadata.actor == "officer-7")
        #expect(event.decodedMetadata.source == "api")
        #expect(try await d.call("POST", "/v1/projections/tasks/rebuild", token: d.operatorToken).status == 403)
        #expect(try await d.call("GET", "/healthz").status == 200)
    }

    @Test("problems: 404, 405, 409 with available, 415, 422 naming fields, 400 malformed JSON; no SQL in any body")
    func problems() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        #expect(try await d.call("GET", "/v1/nothing", token: t).status == 404)
        let m = try await d.call("DELETE", "/v1/tasks", token: t)
        #expect(m.status == 405)
        #expect(m.headers["allow"]?.contains("POST") == true)
        #expect(try await d.call("POST", "/v1/stock/receipts", token: t, body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":50,"source":"donation"}"#).status == 200)
        let refused = try await d.call("POST", "/v1/stock/dispatches", token: t, body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":60,"destination":"x"}"#)
        #expect(refused.status == 409)
        #expect((refused.json["type"] as? String)?.hasSuffix("insufficient-stock") == true)
        #expect(refused.json["available"] as? Int == 50)
        #expect(try await d.call("POST", "/v1/stock/dispatches", token: t, body: "{}", headers: ["Content-Type": "text/plain"]).status == 415)
        let invalid = try await d.call("POST", "/v1/stock/dispatches", token: t, body: #"{"warehouse":"MNL","item":"HSHETARPW406","quantity":"many","destination":"x","colour":"red"}"#)
        #expect(invalid.status == 422)
        #expect((invalid.json["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String } == ["colour"])
        #expect(try await d.call("POST", "/v1/stock/dispatches", token: t, body: "{not json").status == 400)
        #expect(try await d.call("POST", "/v1/stock/dispatches", token: t, body: "[1, 2]").status == 422)
        // Path parameters join the body; a body field naming one must agree with the path.
        let task = #"{"id":"T-9","response":"PHL-2026-TC-01","cluster":"WSH","title":"Latrines \"block B\"","priority":"high"}"#
        #expect(try await d.call("POST", "/v1/tasks", token: t, body: task).status == 201)
        let other = try await d.call("POST", "/v1/tasks/T-9/assign", token: t, body: #"{"id":"T-8","assignee":"WASH lead"}"#)
        #expect(other.status == 422)
        #expect((other.json["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String } == ["id"])
        let same = try await d.call("POST", "/v1/tasks/T-9/assign", token: t, body: #"{"id":"T-9","assignee":"WASH lead"}"#)
        #expect(same.status == 200)
        #expect(same.json["title"] as? String == "Latrines \"block B\"")
        let unknown = try await d.call("POST", "/v1/deployments/nope/confirm", token: t, body: "{}")
        #expect(unknown.status == 404)
        let sqlish = try await d.call("GET", "/v1/tasks/x'%3B%20DROP%20TABLE%20events%3B--", token: t)
        #expect(sqlish.status == 404)
        for r in [refused, invalid, unknown, sqlish] {
            #expect(!r.body.lowercased().contains("select") && !r.body.contains("SQLSTATE") && !r.body.contains("pq"))
        }
        #expect(try await d.call("GET", "/v1/stock?limit=5000", token: t).status == 422)
        #expect(try await d.call("GET", "/v1/stock?status=weird", token: t).status == 422)
    }

    @Test("Idempotency-Key: a retry returns the original outcome and writes nothing; another body with the key is 422")
    func idempotency() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        let body = #"{"warehouse":"TAC","item":"HSHETARPW406","quantity":10,"source":"internal"}"#
        let first = try await d.call("POST", "/v1/stock/receipts", token: t, body: body, headers: ["Idempotency-Key": "grn-1"])
        let head = try await d.store.headPosition()
        let retry = try await d.call("POST", "/v1/stock/receipts", token: t, body: body, headers: ["Idempotency-Key": "grn-1"])
        #expect(retry.status == first.status)
        #expect(retry.json["position"] as? Int == first.json["position"] as? Int)
        #expect(try await d.store.headPosition() == head)
        let other = try await d.call("POST", "/v1/stock/receipts", token: t, body: body.replacingOccurrences(of: "10", with: "11"), headers: ["Idempotency-Key": "grn-1"])
        #expect(other.status == 422)
    }

    @Test("ETag and If-Match: a stale version is 412, the current one passes")
    func ifMatch() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        _ = try await d.call("POST", "/v1/tasks", token: t, body: #"{"id":"T-9","response":"PHL-2026-TC-01","cluster":"SHL","title":"NFI","priority":"normal"}"#)
        let got = try await d.call("GET", "/v1/tasks/T-9", token: d.viewer)
        #expect(got.headers["etag"] == "\"1\"")
        #expect(try await d.call("POST", "/v1/tasks/T-9/start", token: t, body: "{}", headers: ["If-Match": "\"1\""]).status == 200)
        let stale = try await d.call("POST", "/v1/tasks/T-9/complete", token: t, body: "{}", headers: ["If-Match": "\"1\""])
        #expect(stale.status == 412)
        #expect(try await d.call("GET", "/v1/tasks/T-9", token: t, headers: ["If-None-Match": "\"2\""]).status == 304)
    }

    @Test("lists page with opaque cursors and render CSV and HXL")
    func listsAndFormats() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        for i in 0..<5 {
            _ = try await d.call("POST", "/v1/tasks", token: t, body: #"{"id":"T-\#(i)","response":"PHL-2026-TC-01","cluster":"WSH","title":"=cmd|x","priority":"low"}"#)
        }
        try await d.settle()
        var ids: [String] = []
        var next: String? = nil
        repeat {
            let page = try await d.call("GET", "/v1/tasks?limit=2" + (next.map { "&next=\($0)" } ?? ""), token: t)
            ids += (page.json["items"] as! [[String: Any]]).map { $0["id"] as! String }
            next = page.json["next"] as? String
        } while next != nil
        #expect(ids == ["T-0", "T-1", "T-2", "T-3", "T-4"])
        let hxl = try await d.call("GET", "/v1/tasks?format=hxl", token: t)
        let lines = hxl.body.components(separatedBy: "\r\n")
        #expect(hxl.headers["content-type"]?.hasPrefix("text/csv") == true)
        #expect(lines[1].contains("#meta+id") && lines[1].contains("#sector+cluster+code"))
        #expect(lines[2].contains("'=cmd|x"), "formula-looking cells are neutralised")
        #expect(try await d.call("GET", "/v1/tasks?next=@@@@", token: t).status == 422)
    }

    @Test("replay endpoints: timeline (JSON, HXL), state as of a time on both bases, review (JSON, Markdown)")
    func replay() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        let t = d.operatorToken
        _ = try await d.call("POST", "/v1/stock/receipts", token: t, body: #"{"warehouse":"TAC","item":"HSHETARPW406","quantity":100,"source":"donation","occurred_at":"2026-11-08T10:00:00Z"}"#)
        _ = try await d.call("POST", "/v1/stock/dispatches", token: t,
                             body: #"{"warehouse":"TAC","item":"HSHETARPW406","quantity":40,"destination":"Palo","response":"PHL-2026-TC-01","reference":"WB-0042","occurred_at":"2026-11-09T14:10:00Z"}"#)
        let timeline = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/timeline", token: d.viewer)
        #expect(timeline.status == 200)
        let items = timeline.json["items"] as! [[String: Any]]
        #expect(items.map { $0["type"] as! String } == ["response.declared", "stock.dispatched"])
        #expect((items[1]["text"] as! String).contains("Dispatched 40 x HSHETARPW406 tarpaulin from TAC to Palo (waybill WB-0042)"))
        let hxl = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/timeline?format=hxl", token: d.viewer)
        #expect(hxl.body.components(separatedBy: "\r\n")[1].hasPrefix("#meta+id,#date+occurred,#date+reported"))
        let before = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/state?as_of=2026-11-09T00:00:00Z&basis=occurred", token: d.viewer)
        let stockBefore = (before.json["stock"] as! [[String: Any]]).first { $0["warehouse"] as? String == "TAC" }
        #expect(stockBefore?["on_hand"] as? Int == 100)
        let after = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/state?as_of=2026-11-10T00:00:00Z", token: d.viewer)
        #expect((after.json["stock"] as! [[String: Any]]).first { $0["warehouse"] as? String == "TAC" }?["on_hand"] as? Int == 60)
        // On the recorded basis, as of a time before anything was recorded, nothing was known.
        let known = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/state?as_of=2026-11-10T00:00:00Z&basis=recorded", token: d.viewer)
        #expect(known.status == 404, "the response itself was not yet known then")
        let review = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/review", token: d.viewer)
        #expect(abs((review.json["hours_to_first_nfi_dispatch"] as? Double ?? 0) - 31.7) < 0.05)
        let md = try await d.call("GET", "/v1/responses/PHL-2026-TC-01/review?format=md", token: d.viewer)
        #expect(md.body.hasPrefix("# After-action review: Typhoon (PHL-2026-TC-01)"))
        #expect(try await d.call("GET", "/v1/responses/NOPE/review", token: d.viewer).status == 404)
        #expect(try await d.call("GET", "/v1/responses/PHL-2026-TC-01/state?as_of=yesterday", token: d.viewer).status == 422)
    }

    @Test("the OpenAPI document lists exactly the router's routes")
    func openAPI() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let doc = try await d.call("GET", "/v1/openapi.json").json
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = doc["paths"] as! [String: [String: Any]]
        var documented = Set<String>()
        for (path, methods) in paths { for m in methods.keys { documented.insert(m.uppercased() + " " + path) } }
        let served = Set(App.routes.filter { if case .page = $0.kind { false } else { true } }.map { r in
            r.method + " /" + r.pattern.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        })
        #expect(documented == served)
        #expect(served.count == App.routes.filter { if case .page = $0.kind { false } else { true } }.count, "no route is shadowed by another")
        let receipts = try #require(paths["/v1/stock/receipts"]?["post"] as? [String: Any])
        #expect(receipts["x-command"] as? String == "stock.receive")
        #expect(paths["/v1/tasks/{id}/start"] != nil)
    }

    @Test("the served OpenAPI document and the contract's hand-written route index (docs/API.md) name the same methods, paths and roles")
    func openAPIMatchesContract() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let doc = try await d.call("GET", "/v1/openapi.json").json
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var served = Set<String>()
        for (path, methods) in paths { for m in methods.keys { served.insert(m.uppercased() + " " + path) } }
        let contract = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/API.md"), encoding: .utf8)
        let index = try #require(contract.components(separatedBy: "## Route index").last?.components(separatedBy: "\n## ").first)
        var documented: [String: String] = [:]
        for line in index.split(separator: "\n") where line.hasPrefix("| GET") || line.hasPrefix("| POST") || line.hasPrefix("| PUT") || line.hasPrefix("| DELETE") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let key = cells[0] + " " + cells[1]
            #expect(documented[key] == nil, "\(key) is listed twice")
            documented[key] = cells[2]
        }
        #expect(Set(documented.keys) == served, "in the contract only: \(Set(documented.keys).subtracting(served).sorted()); served only: \(served.subtracting(documented.keys).sorted())")
        for route in App.routes {
            if case .page = route.kind { continue }  // the console's pages: docs/CONSOLE.md
            let key = route.method + " /" + route.pattern.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            #expect(documented[key] == (route.role.map { "\($0)" } ?? "none"), "\(key): the contract says \(documented[key] ?? "nothing")")
        }
    }

    @Test("/metrics passes promtool check metrics: every family with HELP and TYPE, counters named _total, families whole")
    func metricsPassPromtool() async throws {
        let d = try await seeded()
        defer { Task { await d.stop() } }
        _ = try await d.call("GET", "/v1/stock", token: d.viewer)
        _ = try await d.call("GET", "/v1/nope", token: d.viewer)
        let metrics = try await d.call("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        guard let promtool = OutsideTools.find("promtool") else { OutsideTools.missing("promtool (Debian prometheus)"); return }
        let file = NSTemporaryDirectory() + "metrics-\(UUID().uuidString).txt"
        try metrics.body.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let out = try await runBlocking { try Subprocess.run(["/bin/sh", "-c", "\"$0\" check metrics < \"$1\"", promtool, file]) }
        #expect(out.status == 0 && out.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(out.output)")
    }

    @Test("gzip when the client asks: a list answers Content-Encoding gzip that gzip(1) reads back to the plain answer; Vary always; never with an ETag or on the live feed")
    func gzipWhenAsked() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        let plain = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer)
        #expect(plain.status == 200 && plain.headers["content-encoding"] == nil && plain.headers["vary"] == "Accept-Encoding")
        let zipped = try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer, headers: ["Accept-Encoding": "br;q=1, gzip;q=0.5"])
        #expect(zipped.headers["content-encoding"] == "gzip")
        #expect(zipped.bytes.count < plain.bytes.count / 3, "\(zipped.bytes.count) of \(plain.bytes.count) bytes")
        let gunzipped = try await OutsideTools.gunzip(zipped.bytes)
        #expect(gunzipped.status == 0 && gunzipped.output == plain.body, "gzip -dc gives back the plain answer")
        #expect(try await d.call("GET", "/v1/stock?limit=1000", token: d.viewer, headers: ["Accept-Encoding": "gzip;q=0"]).headers["content-encoding"] == nil)
        let warehouse = try await d.call("GET", "/v1/warehouses/MNL", token: d.viewer, headers: ["Accept-Encoding": "gzip"])
        #expect(warehouse.headers["etag"] != nil && warehouse.headers["content-encoding"] == nil)
    }

    @Test("/readyz, /metrics and a 503 while the database is unreachable")
    func operations() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        try await d.settle()
        #expect(try await d.call("GET", "/readyz").status == 200)
        _ = try await d.call("GET", "/v1/stock", token: d.viewer)
        let metrics = try await d.call("GET", "/metrics").body
        #expect(metrics.contains("coord_http_requests_total{route=\"GET /v1/stock\",status=\"200\"}"))
        #expect(metrics.contains("coord_http_request_duration_seconds_bucket"))
        #expect(metrics.contains("coord_projection_lag_events{projection=\"stock\"}"))
        #expect(metrics.contains("coord_db_pool_connections"))
        #expect(!metrics.contains(d.viewer))
    }
}
