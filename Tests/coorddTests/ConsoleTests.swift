import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// Browser sessions and the console's pages and assets, over HTTP (no browser).
@Suite("Sessions and the console's files")
struct SessionTests {
    /// Signs in with `token`: the cookie's value and the CSRF value.
    static func signIn(_ d: TestDaemon, _ token: String, headers: [String: String] = [:]) async throws -> (cookie: String, csrf: String, setCookie: String) {
        let r = try await d.call("POST", "/v1/session", body: "{\"token\":\"\(token)\"}", headers: headers)
        #expect(r.status == 200, "\(r.body)")
        let setCookie = try #require(r.headers["set-cookie"])
        let value = try #require(setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init))
        return (value, try #require(r.json["csrf"] as? String), setCookie)
    }

    @Test("a token becomes a session cookie (HttpOnly, SameSite=Strict, Secure behind TLS); the cookie reads; a write needs the CSRF header, else 403 and nothing is written")
    func cookieAndCSRF() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        let s = try await Self.signIn(d, d.operatorToken)
        #expect(s.setCookie.contains("HttpOnly") && s.setCookie.contains("SameSite=Strict") && s.setCookie.contains("Path=/"))
        #expect(!s.setCookie.contains("Secure"), "plain HTTP on loopback: a Secure cookie would never come back")
        #expect(s.cookie.hasPrefix("s_") && s.cookie.count == 66)
        let behindTLS = try await Self.signIn(d, d.operatorToken, headers: ["X-Forwarded-Proto": "https"])
        #expect(behindTLS.setCookie.contains("; Secure"))

        let me = try await d.call("GET", "/v1/session", headers: ["Cookie": "coord_session=\(s.cookie)"])
        #expect(me.status == 200 && me.json["role"] as? String == "operator" && me.json["subject"] as? String == "officer-7")
        #expect(me.json["csrf"] as? String == s.csrf)
        #expect(try await d.call("GET", "/v1/stock?limit=1", headers: ["Cookie": "theme=dark; coord_session=\(s.cookie)"]).status == 200)

        let head = try await d.store.headPosition()
        let body = #"{"warehouse":"TAC","item":"KRELSHEK02","quantity":3,"source":"donation"}"#
        let noHeader = try await d.call("POST", "/v1/stock/receipts", body: body, headers: ["Cookie": "coord_session=\(s.cookie)"])
        #expect(noHeader.status == 403 && (noHeader.json["type"] as? String)?.hasSuffix("/csrf") == true)
        let wrong = try await d.call("POST", "/v1/stock/receipts", body: body, headers: ["Cookie": "coord_session=\(s.cookie)", "X-CSRF-Token": String(s.csrf.reversed())])
        #expect(wrong.status == 403)
        let after = try await d.store.headPosition()
        #expect(after == head, "a refused write wrote nothing")
        let ok = try await d.call("POST", "/v1/stock/receipts", body: body, headers: ["Cookie": "coord_session=\(s.cookie)", "X-CSRF-Token": s.csrf])
        #expect(ok.status == 200, "\(ok.body)")
        let events = try await d.call("GET", "/v1/events?after=\(head)", token: d.admin).json["events"] as? [[String: Any]]
        #expect((events?.first?["metadata"] as? [String: Any])?["actor"] as? String == "officer-7", "the session writes as its token's subject")

        // A viewer's session reads and cannot write, CSRF or not.
        let v = try await Self.signIn(d, d.viewer)
        #expect(try await d.call("POST", "/v1/stock/receipts", body: body, headers: ["Cookie": "coord_session=\(v.cookie)", "X-CSRF-Token": v.csrf]).status == 403)
    }

    @Test("sign-in refuses a bad token, a body that is not {token}, and sign-out or revoking the token ends the session")
    func signInAndOut() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let bad = try await d.call("POST", "/v1/session", body: #"{"token":"cd_nope"}"#)
        #expect(bad.status == 401 && bad.headers["set-cookie"] == nil)
        #expect(try await d.call("POST", "/v1/session", body: #"{"token":"x","remember":true}"#).status == 422)
        #expect(try await d.call("POST", "/v1/session", body: #"{}"#).status == 422)
        #expect(try await d.call("POST", "/v1/session", body: #"["x"]"#).status == 400)
        #expect(try await d.call("POST", "/v1/session", body: "token=x", headers: ["Content-Type": "application/x-www-form-urlencoded"]).status == 415)
        #expect(try await d.call("GET", "/v1/session").status == 401)
        #expect(try await d.call("GET", "/v1/stock", headers: ["Cookie": "coord_session=s_" + String(repeating: "0", count: 64)]).status == 401)

        let s = try await Self.signIn(d, d.viewer)
        let out = try await d.call("DELETE", "/v1/session", headers: ["Cookie": "coord_session=\(s.cookie)"])
        #expect(out.status == 204 && out.headers["set-cookie"]?.contains("Max-Age=0") == true)
        #expect(try await d.call("GET", "/v1/events?limit=1", headers: ["Cookie": "coord_session=\(s.cookie)"]).status == 401)

        let issued = try await d.app.tokens.create(subject: "short-lived", role: .viewer)
        let t = try await Self.signIn(d, issued.token)
        #expect(try await d.call("GET", "/v1/events?limit=1", headers: ["Cookie": "coord_session=\(t.cookie)"]).status == 200)
        #expect(try await d.app.tokens.revoke(id: issued.id))
        var status = 200
        for _ in 0..<80 where status == 200 {  // another process's cache holds a session up to 5 s; this one too
            try await Task.sleep(nanoseconds: 100_000_000)
            status = try await d.call("GET", "/v1/events?limit=1", headers: ["Cookie": "coord_session=\(t.cookie)"]).status
        }
        #expect(status == 401, "a revoked token's session ends")
    }

    @Test("the live feed is authenticated by the session cookie, as a browser's EventSource sends it")
    func liveFeedByCookie() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        let s = try await Self.signIn(d, d.viewer)
        let port = d.port
        let cookie = s.cookie
        let text = try await runBlocking { () -> String in
            let c = try HTTPClient(port: port, receiveTimeout: 5)
            c.send("GET /v1/events/live?after=0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: coord_session=\(cookie)\r\n\r\n")
            return c.read(until: "id: 3\n")
        }
        #expect(text.hasPrefix("HTTP/1.1 200") && text.contains("text/event-stream") && text.contains("id: 1\n"), "\(text.prefix(300))")
        let refused = try await d.call("GET", "/v1/events/live", headers: ["Cookie": "coord_session=s_" + String(repeating: "1", count: 64)])
        #expect(refused.status == 401)
    }

    @Test("/ sends the browser to /console/; each page is the shell with a strict CSP; assets carry ETags, answer 304 and gzip")
    func pagesAndAssets() async throws {
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let root = try await d.call("GET", "/")
        #expect(root.status == 302 && root.headers["location"] == "/console/")
        for page in ["/console/", "/console/overview?response=X", "/console/surge", "/console/stock", "/console/tasks", "/console/replay", "/console/signin"] {
            let r = try await d.call("GET", page)
            #expect(r.status == 200 && r.headers["content-type"] == "text/html; charset=utf-8", "\(page)")
            let csp = r.headers["content-security-policy"] ?? ""
            #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"))
            #expect(r.body.contains("data-testid=\"response-select\"") && r.body.contains("/console/assets/app.js"))
            #expect(!r.body.contains("http://") && !r.body.contains("https://"), "no other host named")
        }
        #expect(try await d.call("GET", "/console/admin").status == 404)
        #expect(try await d.call("GET", "/console/assets/nope.js").status == 404)
        #expect(try await d.call("GET", "/console/assets/..%2fapp.js").status == 404)

        let js = try await d.call("GET", "/console/assets/app.js")
        #expect(js.status == 200 && js.headers["content-type"] == "text/javascript; charset=utf-8")
        let etag = try #require(js.headers["etag"])
        #expect(try await d.call("GET", "/console/assets/app.js", headers: ["If-None-Match": etag]).status == 304)
        let zipped = try await d.call("GET", "/console/assets/app.js", headers: ["Accept-Encoding": "gzip"])
        #expect(zipped.headers["content-encoding"] == "gzip" && zipped.headers["etag"] != etag && zipped.bytes.count < js.bytes.count / 2)
        let gunzipped = try await OutsideTools.gunzip(zipped.bytes)
        #expect(gunzipped.status == 0 && gunzipped.output == js.body, "gzip -dc gives back the script")

        // Every file in the assets folder is served, and nothing else.
        let folder = URL(fileURLWithPath: OutsideTools.repo + "/Sources/coordd/Console/assets")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files == ConsoleAssets.all.map(\.name).sorted())
        for name in files {
            let r = try await d.call("GET", "/console/assets/\(name)")
            let onDisk = Array(try Data(contentsOf: folder.appendingPathComponent(name)))
            #expect(r.status == 200 && r.bytes == onDisk, "\(name)")
        }
        // What the forms and the feed know of the API is derived from the server's own declarations.
        let schema = try await d.call("GET", "/console/assets/schema.json")
        #expect(schema.status == 200 && schema.bytes.count < 20_000, "\(schema.bytes.count) bytes")
        #expect(schema.json["event_types"] as? [String] == EventCodec.eventTypes)
        let enums = schema.json["enums"] as? [String: [String: [String]]]
        #expect(enums?["POST /v1/stock/adjustments"]?["reason"] == ["lost", "found", "damaged", "expired", "count_correction"])
        #expect(enums?["POST /v1/deployments"]?["profile"]?.contains("WASH") == true)
        // The scripts fetch only from this origin: no absolute URL in any of them.
        for name in files where name.hasSuffix(".js") || name.hasSuffix(".css") {
            // (SVG's namespace is a name, not a request.)
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8).replacingOccurrences(of: "'http://www.w3.org/2000/svg'", with: "")
            #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "\(name) names no other host")
            #expect(!text.contains("localStorage") && !text.contains("sessionStorage"), "\(name) keeps nothing in the browser's storage")
            #expect(!text.contains(".innerHTML ="), "\(name) builds elements, never HTML from text")
        }
    }
}
